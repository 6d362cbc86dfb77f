"""What `make demo` prints: lines that fit 80 columns, times in the agreement's zone, and a first
install that says what it is doing."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import pytest

from devtools import install_progress
from devtools.demo import banner
from devtools.demo_accounts import DemoAccount
from server.simulator.config import SimulationConfig
from server.simulator.pay import local_time, statement_lines
from server.simulator.stats import CityStats, wrap_parts

TOKEN = "x" * 43  # a token's length


def _lines(blocks: list[str]) -> list[str]:
    return [line for block in blocks for line in block.split("\n")]


def test_the_summary_fits_80_columns_even_in_a_big_busy_city() -> None:
    stats = CityStats(drivers_total=5000, drivers_online=4987, drivers_on_trip=3120)
    stats.offers_received, stats.offers_accepted = 123456, 120001
    stats.offers_declined, stats.offers_missed = 3210, 245
    stats.http_errors, stats.location_refusals = 12, 3456
    stats.terminal.update(completed=98765, cancelled=4321, unfulfilled=123)
    for driver in range(4000):
        stats.statement_read(str(driver), pay_total=Decimal("123.45"), top_up=Decimal("0"))
    summary = stats.summary_line(elapsed_s=3 * 3600 + 125)
    lines = summary.split("\n")
    assert lines[0].startswith("[182:05] drivers online 4987/5000 | ")
    assert 2 <= len(lines) <= 5
    assert all(len(line) <= 80 for line in lines), lines
    assert all(line.startswith("        ") for line in lines[1:])
    assert "trips completed 98765, cancelled 4321, unfulfilled 123" in summary
    assert "pay on open statements 493800.00 (4000 drivers)" in summary


def test_wrapping_never_splits_a_part_and_keeps_an_overlong_one_whole() -> None:
    assert wrap_parts(["a", "b"], first="> ") == ["> a | b"]
    assert wrap_parts(["x" * 50, "y" * 50], first="[00:01] ") == [
        "[00:01] " + "x" * 50,
        "        " + "y" * 50,
    ]
    long = "z" * 120
    assert wrap_parts(["a", long, "b"]) == ["a", "        " + long, "        b"]


STATEMENT = {
    "period_start": "2026-12-07",
    "status": "open",
    "timezone": "America/Toronto",
    "currency": "CAD",
    "lines": [
        {
            "kind": "trip",
            "ended_at": "2026-12-07T17:04:05.123456+00:00",
            "engaged_seconds": 1234,
            "distance_m": 12345,
            "fare_total": "123.45",
            "commission": "12.34",
            "driver_earnings": "111.11",
            "cancellation_fee": "0.00",
            "agreement_version": 12,
        },
        {
            "kind": "cancellation_fee",
            "ended_at": "2026-12-07T04:59:59+00:00",
            "engaged_seconds": 60,
            "distance_m": None,
            "fare_total": "0.00",
            "commission": "0.00",
            "driver_earnings": "0.00",
            "cancellation_fee": "5.00",
            "agreement_version": 12,
        },
    ],
    "trips": 1,
    "fares_total": "123.45",
    "commission_total": "12.34",
    "earnings_total": "111.11",
    "cancellation_fees_total": "5.00",
    "engaged_seconds": 1294,
    "floor_due": "7.19",
    "engaged_floor_per_hour": "20.00",
    "top_up": "0.00",
    "pay_total": "116.11",
}


def test_the_pay_statement_fits_80_columns_with_times_in_the_agreements_zone() -> None:
    lines = statement_lines(STATEMENT, 7)
    assert lines[0] == "pay statement of simulated driver 7, period from 2026-12-07"
    assert "times in America/Toronto" in lines[1]
    assert all(len(line) <= 80 for line in lines), lines
    text = "\n".join(lines)
    # 17:04 UTC is 12:04 in Montréal in December; 04:59 UTC the evening before.
    assert "ended 12:04:05" in text and "17:04:05" not in text
    assert "ended 23:59:59" in text
    assert "pay 116.11" in text and any(line.startswith("  totals: ") for line in lines)
    assert local_time("2026-07-01T16:00:00+00:00", "America/Toronto") == "12:00:00"
    assert local_time("2026-07-01T16:00:00+00:00", "Not/AZone") == "16:00:00"


def test_the_banner_fits_80_columns_with_every_token_whole() -> None:
    accounts = [
        DemoAccount("admin", "the co-op's operator", "test-admin-token-0123456789abcdef"),
        DemoAccount("committee member", "Nadia Tremblay", TOKEN),
        DemoAccount("driver-member", "Jean-François Roy", TOKEN),
    ]
    lines = banner(
        "http://127.0.0.1:8000",
        accounts,
        SimulationConfig(drivers=50, rate_per_min=30, speedup=8),
        Path("/work/coop/.var/demo-service.log"),
    )
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    assert f"    {TOKEN}" in lines
    assert "  driver-member: Jean-François Roy" in lines
    assert any(line.startswith("  /ops ") for line in lines)


def test_the_first_install_says_what_it_does_while_pip_is_silent(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(install_progress, "HEARTBEAT_S", 0.2)
    script = (
        "import time\n"
        "for i in range(50): print(f'Collecting p{i}==1.0 (from -r requirements.lock)')\n"
        "print('Installing collected packages: ' + ', '.join(f'p{i}' for i in range(50)))\n"
        "time.sleep(1.0)\n"
        "print('Successfully installed everything')\n"
    )
    assert install_progress.run([sys.executable, "-c", script], total=50) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == [
        "  25 of 50 packages fetched",
        "  50 of 50 packages fetched",
        "  unpacking 50 packages (the longest step)",
    ]
    # Never more than a heartbeat without a line while pip unpacks.
    assert sum(line.startswith("  still installing (") for line in out) >= 3
    assert out[-1].startswith("  installed in ")
    assert "Successfully" not in "\n".join(out)


def test_a_failed_install_shows_pips_own_words(capsys: pytest.CaptureFixture[str]) -> None:
    script = "import sys; print('ERROR: THESE PACKAGES DO NOT MATCH THE HASHES'); sys.exit(1)"
    assert install_progress.run([sys.executable, "-c", script]) == 1
    out = capsys.readouterr().out
    assert "DO NOT MATCH THE HASHES" in out and "the install failed (exit 1)" in out


def test_the_lock_counts_its_packages() -> None:
    lock = Path(__file__).resolve().parents[2] / "requirements.lock"
    with lock.open(encoding="utf-8") as lines:
        count = install_progress.locked_packages(lines)
    assert 50 < count < 500
    assert (
        install_progress.locked_packages(["a==1 \\", "    --hash=sha256:x", "# b==2", "c==3"]) == 2
    )
