"""HTTP routes of a proposal's impact replay: ask for one (the committee), read the latest (anyone
who may read the proposal). Adapters over `bargaining.impact_replay`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict

from bargaining import impact_replay
from bargaining.dependencies import Now
from coop.dependencies import SessionDep
from drivers.dependencies import CommitteeMember

router = APIRouter(tags=["bargaining"])

SAMPLE_LABEL = "New York sample days (the co-op's own history is too short)"


class FigureOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    figure: str
    current: float
    proposed: float
    difference: float
    spread: float
    within_spread: bool


class ImpactReplayOut(BaseModel):
    """A replay of the proposal's terms against the terms in force on recent days."""

    id: uuid.UUID
    proposal_id: uuid.UUID
    status: Literal["queued", "running", "done", "over_budget", "failed"]
    progress_done: int
    progress_total: int
    budget_s: int
    source: Literal["coop", "sample"] | None
    source_label: str | None
    days: list[str]
    note: str | None
    figures: list[FigureOut]
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def replay_out(job: impact_replay.ImpactReplay) -> ImpactReplayOut:
    result = job.result or {}
    label = None
    if job.source == "coop":
        label = "the co-op's own last days"
    elif job.source == "sample":
        label = SAMPLE_LABEL
    return ImpactReplayOut(
        id=job.id,
        proposal_id=job.proposal_id,
        status=job.status.value,
        progress_done=job.progress_done,
        progress_total=job.progress_total,
        budget_s=job.budget_s,
        source=job.source,
        source_label=label,
        days=list(result.get("days", [])),
        note=result.get("note"),
        figures=[FigureOut.model_validate(f) for f in result.get("figures", [])],
        requested_at=job.requested_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


@router.post(
    "/v1/proposals/{proposal_id}/impact-replay",
    response_model=ImpactReplayOut,
    status_code=202,
    responses={200: {"model": ImpactReplayOut, "description": "One is already queued or running"}},
)
async def request_replay(
    proposal_id: uuid.UUID,
    member: CommitteeMember,
    session: SessionDep,
    now: Now,
    response: Response,
) -> ImpactReplayOut:
    """Queues a replay of the proposal on the co-op's last 7 days (202); while one is queued or
    running, answers it (200). The figures come later: read them with GET."""
    job, created = await impact_replay.request(session=session, proposal_id=proposal_id, now=now)
    if not created:
        response.status_code = 200
    return replay_out(job)


@router.get("/v1/proposals/{proposal_id}/impact-replay", response_model=ImpactReplayOut)
async def read_replay(proposal_id: uuid.UUID, session: SessionDep, now: Now) -> ImpactReplayOut:
    """The proposal's latest replay: its progress while it runs, its figures once done."""
    return replay_out(await impact_replay.latest(session=session, proposal_id=proposal_id, now=now))
