"""The impact replay on a proposal's page: its latest figures (or progress), and the committee's
button that queues one. Adapters over `bargaining.impact_replay` and its read model."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import impact_replay
from bargaining.impact_routes import ImpactReplayOut, replay_out
from coop.clock import Now
from coop.dependencies import SessionDep
from coop.messages import N_
from drivers.dependencies import get_committee_member
from server.web.pages.common import ViewerDep, check_csrf, driver_of, page_router

router = page_router()

# How each figure reads on the page: its label and how it is written (the template's `kinds`).
FIGURE_LABELS = {
    "requests": (N_("Requests"), "count"),
    "served_share": (N_("Riders served"), "share"),
    "pickup_eta_mean_s": (N_("Pickup time, mean (s)"), "count"),
    "pickup_eta_p90_s": (N_("Pickup time, 90th percentile (s)"), "count"),
    "earnings_gini": (N_("Earnings per online hour, Gini"), "gini"),
    "earnings_p10_per_h": (N_("Earnings per online hour, 10th percentile"), "money"),
    "earnings_median_per_h": (N_("Earnings per online hour, median"), "money"),
    "pay_gini": (N_("Pay per online hour after the floor, Gini"), "gini"),
    "pay_p10_per_h": (N_("Pay per online hour after the floor, 10th percentile"), "money"),
    "pay_median_per_h": (N_("Pay per online hour after the floor, median"), "money"),
    "floor_top_ups": (N_("The floor's top-ups (all days)"), "money"),
    "commission": (N_("The co-op's commission (all days)"), "money"),
    "fairness_share": (N_("Offers fairness gave to a farther driver"), "share"),
    "fairness_extra_max_m": (N_("Largest extra pickup distance fairness caused (m)"), "count"),
}


async def latest_replay(
    *, session: AsyncSession, proposal_id: uuid.UUID, now: datetime
) -> ImpactReplayOut | None:
    """The proposal's latest replay for its page, or None when it has none."""
    try:
        job = await impact_replay.latest(session=session, proposal_id=proposal_id, now=now)
    except impact_replay.ReplayNotFound:
        return None
    return replay_out(job)


@router.post("/proposals/{proposal_id}/impact-replay", response_class=HTMLResponse)
async def ask_replay(
    proposal_id: uuid.UUID,
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    now: Now,
    csrf: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    check_csrf(request, csrf)
    await get_committee_member(await driver_of(viewer, session))
    await impact_replay.request(session=session, proposal_id=proposal_id, now=now)
    return RedirectResponse(f"/proposals/{proposal_id}#impact-replay", status_code=303)
