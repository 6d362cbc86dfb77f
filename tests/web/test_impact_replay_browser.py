"""The impact replay on a proposal's page, in Chromium at phone size, in English and French: the
committee asks, the step runs it through the matcher's planner, the figures show with their
differences and whether each is beyond the days' spread; a member sees them, with no button."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from playwright.async_api import expect
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import impact_replay
from bargaining.impact_replay import Progress, ReplayOutcome
from bargaining.terms import Terms
from dispatch.matching import replay
from tests.bargaining.strategies import founding_wire
from tests.dispatch.helpers import small_day
from tests.web.conftest import PHONE, Visit, Web


async def small_days_run(
    session: AsyncSession,
    now: datetime,
    current: Terms,
    proposed: Terms,
    budget_s: float,
    progress: Progress,
) -> ReplayOutcome:
    """The real replay on three small days (a week of history would take the suite minutes)."""
    days = [small_day(seed) for seed in (1, 2, 3)]
    figures = replay.replay(days, current, proposed, budget_s=budget_s, progress=progress)
    return ReplayOutcome(
        source="coop", days=[d.label for d in days], figures=[f.to_wire() for f in figures]
    )


async def test_the_committee_replays_a_proposal_and_members_read_it_in_both_languages(
    web: Web, visit: Callable[..., Any]
) -> None:
    terms = founding_wire()
    terms["dispatch"].update(
        fairness_weight="0.4",
        earnings_credit_max_s=5500,
        earnings_credit_fare_scale_max="2",
        earnings_penalty_above_median=True,
        candidates_per_request=0,
    )
    terms["dispatch"].pop("fairness_credit_max_s")
    terms["pay"]["engaged_floor_per_hour"] = "30.00"
    created = await web.http.post(
        "/v1/proposals",
        json={
            "title": "Fairness without a bound",
            "rationale": "A third less inequality, for a little more pickup time.",
            "terms": terms,
            "effective_from": None,
            "voting_closes_at": (web.clock() + timedelta(days=7)).isoformat(),
        },
        headers=web.headers("committee"),
    )
    assert created.status_code == 201, created.text
    proposal_id = created.json()["id"]
    path = f"/proposals/{proposal_id}"

    committee: Visit = await visit(viewport=PHONE)
    await committee.sign_in(web.accounts["committee"].token, next_path=path)
    page = committee.page
    await expect(page.locator("#replay-status")).to_have_text("Not replayed yet.")
    await page.get_by_role("button", name="Replay the last 7 days").click()
    await expect(page.locator("#replay-status")).to_contain_text("Waiting to start")
    await expect(page.get_by_role("button", name="Replay the last 7 days")).to_have_count(0)

    # The background step (not running in the suite's app): the real planner on small days.
    run = await impact_replay.run_next(
        sessionmaker=web.app.state.sessionmaker, run=small_days_run, clock=web.app.state.clock
    )
    assert run is not None
    await page.reload(wait_until="load")
    await expect(page.locator("#replay-status")).to_contain_text(
        "Replayed on the co-op's own days, test day 1 to test day 3."
    )
    await expect(page.locator("#replay-table tbody tr")).to_have_count(len(replay.FIGURES))
    await expect(page.locator("#replay-served_share th")).to_have_text("Riders served")
    await expect(page.locator("#replay-fairness_share td").nth(2)).to_contain_text(
        "beyond the days' spread"
    )
    await expect(page.locator("#replay-requests .beyond")).to_have_count(0)
    await committee.axe("/proposals/{id} with its replay")
    await page.locator("#impact-replay").scroll_into_view_if_needed()
    await committee.shot("proposal-impact-replay-en")
    committee.check_clean()

    member: Visit = await visit(language="fr", viewport=PHONE)
    await member.sign_in(web.accounts["amira"].token, next_path=path)
    french = member.page
    await expect(french.locator("#replay-title")).to_have_text("Répartition et paie, rejouées")
    await expect(french.locator("#replay-served_share th")).to_have_text(
        "Personnes passagères servies"
    )
    await expect(french.locator("#replay-fairness_share td").nth(2)).to_contain_text(
        "au-delà de l'écart entre les jours"
    )
    await expect(french.get_by_role("button", name="Rejouer les 7 derniers jours")).to_have_count(0)
    await member.axe("/proposals/{id} with its replay (fr)")
    await member.shot("proposal-impact-replay-fr")
    member.check_clean()
