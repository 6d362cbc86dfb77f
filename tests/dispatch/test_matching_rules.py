"""Rules said once: a driver's shift is counted by one SQL fragment in both statements that renew
presence, which driver can take which request is one set of fragments in both directions of the
search, and the matcher reads the service's clock."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

import pytest
from fastapi import FastAPI

from bargaining.service import FOUNDING_EFFECTIVE_FROM
from dispatch.locations import flush, service
from dispatch.locations.shifts import shift_accounting
from dispatch.matching import candidates
from dispatch.matching.matcher import Matcher


def _words(sql: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"--[^\n]*", "", sql)).strip()


def test_both_statements_that_renew_presence_count_the_shift_with_one_fragment() -> None:
    flushed = _words(flush._FLUSH.text)
    assert _words(shift_accounting(on_duty="p.available")) in flushed
    assert _words(shift_accounting(on_duty="EXCLUDED.available")) in _words(
        service._SET_AVAILABILITY.text
    )
    # No second copy of the rule anywhere else in either statement.
    for statement in (flushed, _words(service._SET_AVAILABILITY.text)):
        assert statement.count("shift_online_s =") == 1


@pytest.mark.parametrize("search", ["_CANDIDATES", "_CANDIDATES_BY_DRIVER"])
def test_both_directions_of_the_search_use_the_one_suitability_rule(search: str) -> None:
    sql = _words(getattr(candidates, search))
    for fragment in (
        candidates._ACTIVE_WITH_VEHICLE,
        candidates._DRIVER_FREE,
        candidates._DRIVER_FITS,
    ):
        assert _words(fragment) in sql
    assert sql.count("wheelchair_accessible") == 2  # the request's and the vehicle's, once


async def test_the_matcher_reads_the_clock_it_is_given(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    before = FOUNDING_EFFECTIVE_FROM - timedelta(days=1)

    def clock() -> datetime:
        return before

    matcher = Matcher(
        engine=app.state.engine,
        sessionmaker=app.state.sessionmaker,
        redis=app.state.redis,
        settings=app.state.settings,
        clock=clock,
    )
    with caplog.at_level(logging.WARNING, logger="coop.matcher"):
        report = await matcher.run_batch()
    # At the clock's time no agreement was in force yet: nothing is priced.
    assert report.interval_ms is None
    assert "no agreement in force" in caplog.text
