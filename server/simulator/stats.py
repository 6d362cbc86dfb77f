"""What the simulated city has seen so far, and the summary printed every few seconds.

Pure bookkeeping: the agents report events with the time they happened (monotonic seconds), so
the numbers can be checked without a clock.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

from dispatch.states import DRIVER_OPEN, TERMINAL

# The statuses as the wire spells them (the frames carry plain strings).
ON_TRIP_STATUSES = frozenset(status.value for status in DRIVER_OPEN)
TERMINAL_STATUSES = frozenset(status.value for status in TERMINAL)
LATENCY_SAMPLES = 500  # the median is over the most recent offers, so it follows the city's state
# A terminal's width: the summary is wrapped to it, never cut.
COLUMNS = 80
CONTINUATION = " " * len("[00:00] ")


def wrap_parts(parts: list[str], *, first: str = "", width: int = COLUMNS) -> list[str]:
    """`parts` joined by " | " into lines of at most `width` columns: the first line starts with
    `first`, the next ones with `CONTINUATION`; a part is never split (one longer than a line
    stands alone on its own)."""
    lines: list[str] = []
    line, fresh = first, True  # fresh: nothing on the line yet but its prefix
    for part in parts:
        candidate = line + part if fresh else f"{line} | {part}"
        if fresh or len(candidate) <= width:
            line, fresh = candidate, False
            continue
        lines.append(line)
        line = CONTINUATION + part
    lines.append(line)
    return lines


@dataclass
class CityStats:
    """Counters of a simulation run; trip statuses are reported by the trip's rider only."""

    drivers_total: int = 0
    drivers_online: int = 0
    drivers_on_trip: int = 0  # drivers with an accepted trip: on the way, waiting or driving
    requests_sent: int = 0
    requests_failed: int = 0
    offers_received: int = 0
    offers_accepted: int = 0
    offers_declined: int = 0
    offers_missed: int = 0  # accepted too late: expired or withdrawn (409)
    cancels_sent: int = 0
    ratings_sent: int = 0
    location_frames: int = 0
    driver_location_frames: int = 0
    error_frames: int = 0
    # Positions the service did not take (rate_limited, implausible_position): a loaded machine
    # can bunch a simulated app's reports together; they are the service's checks at work, not
    # errors of the simulation.
    location_refusals: int = 0
    http_errors: int = 0
    statuses: dict[str, str] = field(default_factory=dict)
    terminal: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(sorted(TERMINAL_STATUSES), 0)
    )
    requested_at: dict[str, float] = field(default_factory=dict)
    first_offer_at: dict[str, float] = field(default_factory=dict)
    offer_latencies_s: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))
    # The open pay statement of each driver last read: driver id -> (pay_total, top_up).
    statements: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    statements_read: int = 0
    # The PIN at pickup: riders who asked for one, and rides started with the rider's PIN.
    pin_riders: int = 0
    pins_given: int = 0
    # Trips shared by their riders, and links their contact opened (docs/safety.md).
    trips_shared: int = 0
    shares_opened: int = 0

    def statement_read(self, driver_id: str, *, pay_total: Decimal, top_up: Decimal) -> None:
        self.statements[driver_id] = (pay_total, top_up)
        self.statements_read += 1

    @property
    def pay_on_statements(self) -> Decimal:
        return sum((pay for pay, _ in self.statements.values()), Decimal("0.00"))

    def trip_requested(self, trip_id: str, at: float) -> None:
        """The rider's POST /v1/trips answered with this trip."""
        self.requested_at.setdefault(trip_id, at)
        self.statuses.setdefault(trip_id, "requested")
        self._measure(trip_id)

    def offer_received(self, trip_id: str, at: float) -> None:
        """A driver got an offer frame for this trip."""
        self.offers_received += 1
        self.first_offer_at.setdefault(trip_id, at)
        self._measure(trip_id)

    def _measure(self, trip_id: str) -> None:
        # The offer may reach its driver before the rider has read the POST's answer; the
        # latency is taken once both times are known, whichever came first.
        if trip_id in self.requested_at and trip_id in self.first_offer_at:
            latency = self.first_offer_at[trip_id] - self.requested_at.pop(trip_id)
            self.offer_latencies_s.append(max(0.0, latency))

    def trip_status(self, trip_id: str, status: str) -> None:
        """The rider saw its trip in `status`; a terminal status counts once, and stays."""
        previous = self.statuses.get(trip_id)
        if previous in TERMINAL_STATUSES:
            return
        self.statuses[trip_id] = status
        if status in TERMINAL_STATUSES:
            self.terminal[status] += 1
            self.requested_at.pop(trip_id, None)
            self.first_offer_at.pop(trip_id, None)

    @property
    def open_requests(self) -> int:
        return sum(1 for status in self.statuses.values() if status == "requested")

    @property
    def on_trip(self) -> int:
        return sum(1 for status in self.statuses.values() if status in ON_TRIP_STATUSES)

    @property
    def completed(self) -> int:
        return self.terminal["completed"]

    @property
    def cancelled(self) -> int:
        return self.terminal["cancelled"]

    @property
    def unfulfilled(self) -> int:
        return self.terminal["unfulfilled"]

    @property
    def finished(self) -> int:
        return sum(self.terminal.values())

    def median_offer_latency_s(self) -> float | None:
        if not self.offer_latencies_s:
            return None
        return statistics.median(self.offer_latencies_s)

    def summary_line(self, elapsed_s: float) -> str:
        """The city's state at a glance, for the terminal: its parts wrapped into lines of at
        most `COLUMNS` columns (a few lines, the first starting with the elapsed time)."""
        latency = self.median_offer_latency_s()
        latency_text = "-" if latency is None else f"{latency:.1f} s"
        minutes, seconds = divmod(int(elapsed_s), 60)
        # In this order a city of the demo's size takes four lines.
        parts = [
            f"drivers online {self.drivers_online}/{self.drivers_total}",
            f"on trip {self.drivers_on_trip}",
            f"open requests {self.open_requests}",
            f"errors {self.http_errors + self.error_frames}",
            f"trips completed {self.completed}, cancelled {self.cancelled}, "
            f"unfulfilled {self.unfulfilled}",
            f"positions refused {self.location_refusals}",
            f"offers {self.offers_received} (accepted {self.offers_accepted}, "
            f"declined {self.offers_declined}, missed {self.offers_missed})",
            f"median offer latency {latency_text}",
            f"pay on open statements {self.pay_on_statements:.2f} ({len(self.statements)} drivers)",
        ]
        if self.pin_riders:  # said only where some riders ask for a PIN
            parts.append(f"PINs {self.pins_given} given ({self.pin_riders} riders ask)")
        if self.trips_shared:
            parts.append(f"trips shared {self.trips_shared} ({self.shares_opened} opened)")
        return "\n".join(wrap_parts(parts, first=f"[{minutes:02d}:{seconds:02d}] "))
