"""A proposal's impact replayed on recent days over HTTP: queued by the committee, run by the
background step through the matcher's planner, kept with the proposal; the sample days when the
co-op's history is too short; a job past its budget; who may ask."""

from __future__ import annotations

import functools
from datetime import datetime

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import impact_replay
from bargaining.impact_replay import ImpactReplay, Progress, ReplayOutcome
from bargaining.terms import Terms
from dispatch.matching import replay, replay_job
from tests.bargaining.conftest import Clock, open_proposal, proposal_body
from tests.builders import Account, make_driver
from tests.dispatch.helpers import small_day

UNBOUNDED = {
    "dispatch.fairness_weight": "0.4",
    "dispatch.earnings_credit_max_s": 5500,
    "dispatch.earnings_credit_fare_scale_max": "2",
    "dispatch.earnings_penalty_above_median": True,
    "dispatch.candidates_per_request": 0,
    "dispatch.fairness_credit_max_s": None,
    "pay.engaged_floor_per_hour": "30.00",
}


async def small_days_run(
    session: AsyncSession,
    now: datetime,
    current: Terms,
    proposed: Terms,
    budget_s: float,
    progress: Progress,
) -> ReplayOutcome:
    """The real replay (the matcher's planner and solver) on three small synthetic days, in
    place of a week of history that would take the suite minutes."""
    days = [small_day(seed) for seed in (1, 2, 3)]
    figures = replay.replay(days, current, proposed, budget_s=budget_s, progress=progress)
    return ReplayOutcome(
        source="coop", days=[d.label for d in days], figures=[f.to_wire() for f in figures]
    )


async def _run_next(app: FastAPI, run: impact_replay.ReplayRun) -> object:
    return await impact_replay.run_next(
        sessionmaker=app.state.sessionmaker, run=run, clock=app.state.clock
    )


async def test_the_committee_asks_the_step_runs_and_the_figures_stay_with_the_proposal(
    app: FastAPI, client: AsyncClient, committee: Account, clock: Clock
) -> None:
    proposal = await open_proposal(client, committee, proposal_body(clock, changes=UNBOUNDED))
    url = f"/v1/proposals/{proposal['id']}/impact-replay"
    missing = await client.get(url)
    assert missing.status_code == 404
    assert missing.json()["type"] == "impact_replay_not_found"

    asked = await client.post(url, headers=committee.headers)
    assert asked.status_code == 202, asked.text
    job = asked.json()
    assert (job["status"], job["figures"], job["budget_s"]) == ("queued", [], 600)
    again = await client.post(url, headers=committee.headers)
    assert again.status_code == 200
    assert again.json()["id"] == job["id"]  # one at a time per proposal

    assert await _run_next(app, small_days_run) is not None
    assert await _run_next(app, small_days_run) is None  # nothing queued any more
    done = (await client.get(url)).json()
    assert done["status"] == "done"
    assert (done["progress_done"], done["progress_total"]) == (6, 6)
    assert done["source"] == "coop" and done["days"] == ["test day 1", "test day 2", "test day 3"]
    figures = {f["figure"]: f for f in done["figures"]}
    assert set(figures) == set(replay.FIGURES)
    # A higher floor costs top-ups; the unbounded policy lets fairness choose more often.
    assert figures["floor_top_ups"]["proposed"] > figures["floor_top_ups"]["current"]
    assert figures["fairness_share"]["difference"] > 0
    for f in figures.values():
        assert f["within_spread"] == (abs(f["difference"]) <= f["spread"])

    # Asked again: a new job, and the same history under the same terms gives the same figures.
    assert (await client.post(url, headers=committee.headers)).status_code == 202
    await _run_next(app, small_days_run)
    second = (await client.get(url)).json()
    assert second["id"] != done["id"]
    assert second["figures"] == done["figures"]


async def test_too_little_history_replays_the_sample_days_and_a_job_past_its_budget_says_so(
    app: FastAPI, client: AsyncClient, committee: Account, clock: Clock, session: AsyncSession
) -> None:
    proposal = await open_proposal(client, committee, proposal_body(clock, changes=UNBOUNDED))
    url = f"/v1/proposals/{proposal['id']}/impact-replay"
    job_id = (await client.post(url, headers=committee.headers)).json()["id"]
    # A budget no replay fits in: the real run (the co-op's history, here none) stops at once.
    job = await session.get(ImpactReplay, job_id)
    assert job is not None
    job.budget_s = 0
    await session.commit()
    run = functools.partial(replay_job.run, region="montreal")
    await _run_next(app, run)
    stopped = (await client.get(url)).json()
    assert stopped["status"] == "over_budget"
    assert stopped["figures"] == []
    assert stopped["source"] == "sample"
    assert stopped["source_label"].startswith("New York sample days")
    assert stopped["days"][0] == "New York sample day 14" and len(stopped["days"]) == 7
    assert "0 day(s) of the co-op's own history" in stopped["note"]
    assert stopped["finished_at"] is not None


async def test_only_the_committee_asks_and_only_for_a_proposal_that_exists(
    client: AsyncClient, committee: Account, clock: Clock, admin_headers: dict[str, str]
) -> None:
    proposal = await open_proposal(client, committee, proposal_body(clock, changes=UNBOUNDED))
    member = await make_driver(client, admin_headers, name="A member")
    url = f"/v1/proposals/{proposal['id']}/impact-replay"
    assert (await client.post(url, headers=member.headers)).status_code == 403
    assert (await client.post(url)).status_code == 401
    stranger = "/v1/proposals/00000000-0000-4000-8000-000000000000/impact-replay"
    response = await client.post(stranger, headers=committee.headers)
    assert response.status_code == 404
    assert response.json()["type"] == "proposal_not_found"
    assert (await client.get(stranger)).json()["type"] == "proposal_not_found"
    assert (await client.get(url)).status_code == 404
