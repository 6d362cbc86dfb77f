"""A proposal's impact on dispatch and pay, replayed on the co-op's recent days: the job, its
table, and the background step that runs it (docs/fairness.md, "A proposal's impact").

The replay itself needs the trips and the matcher, which dispatch owns; bargaining cannot import
dispatch (the layers point the other way), so the composition root installs a `ReplayRun`
(`app.state.impact_replay_run`) and this module only queues, runs and keeps. A job never runs in
a request: a route queues it, a background step (`run_next`) takes the oldest queued job, runs it
off the event loop within its budget of seconds and keeps its figures with the proposal.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Enum,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from bargaining import proposals
from bargaining import service as bargaining_service
from bargaining.exceptions import ProposalNotFound
from bargaining.models import Proposal
from bargaining.terms import Terms
from coop.db import Base
from coop.errors import Conflict, NotFound
from coop.tasks import TaskRunner

# A week of a city the size of the New York sample (about 4,700 requests and 400 drivers a day)
# takes about 100 s under both sets of terms on a loaded 2-core machine (docs/fairness.md): the
# budget leaves room for a bigger or busier city and stops anything past it.
REPLAY_BUDGET_S = 600
# How often the step looks for a queued job, and how often a running job's progress is written.
POLL_INTERVAL_S = 2.0
PROGRESS_EVERY_S = 1.0
# A running job this long past its budget was left by a worker that stopped: it runs again.
ABANDONED_AFTER_S = 120


class ReplayStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    over_budget = "over_budget"  # stopped at its budget: no figures
    failed = "failed"  # a bug: the runner logged it


UNFINISHED = (ReplayStatus.queued, ReplayStatus.running)


class ImpactReplay(Base):
    """One replay of a proposal's terms against the terms in force, and what it found."""

    __tablename__ = "bargaining_impact_replay"
    __table_args__ = (
        # One queued or running replay per proposal: asking again while one runs returns it.
        Index(
            "uq_bargaining_impact_replay_unfinished",
            "proposal_id",
            unique=True,
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
        Index("ix_bargaining_impact_replay_proposal_seq", "proposal_id", "seq"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # The order jobs were asked in, even when two are asked within one tick of the clock.
    seq: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True)
    proposal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bargaining_proposal.id"))
    status: Mapped[ReplayStatus] = mapped_column(
        Enum(ReplayStatus, name="impact_replay_status"), default=ReplayStatus.queued
    )
    budget_s: Mapped[int] = mapped_column(Integer)
    # Days replayed so far (under each set of terms) out of all of them.
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    # "coop": the co-op's own last days; "sample": the New York sample days (too little history).
    source: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # The comparison, figure by figure, and the days replayed (labels only).
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ReplayNotFound(NotFound):
    type = "impact_replay_not_found"
    title = "This proposal's impact has not been replayed"


class NoTermsToReplay(Conflict):
    type = "no_terms_to_replay"
    title = "This proposal changes no term: there is nothing to replay"


@dataclass
class Progress:
    """Told the replay's progress (the installed `ReplayRun` calls it as days are done), read by
    the step that keeps the row up to date."""

    done: int = 0
    total: int = 0
    # Set when the app stops mid-replay: the next report raises, and the replay stops there
    # (the matcher's runs it in a child process, which is then killed) instead of computing on,
    # for nobody, in a process shutting down.
    stopped: bool = False

    def __call__(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        if self.stopped:
            raise ReplayStopped()


class ReplayStopped(Exception):
    """The app stopped while a replay ran (`Progress.stopped`)."""


@dataclass(frozen=True)
class ReplayOutcome:
    """What a replay answered: its figures, or that it ran out of budget."""

    source: str  # "coop" or "sample"
    days: list[str]
    over_budget: bool = False
    figures: list[dict[str, Any]] = field(default_factory=list)
    # Why the sample was used, when it was (e.g. "3 days of history, 7 needed").
    note: str | None = None


# Called with (session, now, terms in force, proposed terms, budget in seconds, progress).
ReplayRun = Callable[
    [AsyncSession, datetime, Terms, Terms, float, Progress], Awaitable[ReplayOutcome]
]


async def request(
    *, session: AsyncSession, proposal_id: uuid.UUID, now: datetime
) -> tuple[ImpactReplay, bool]:
    """Queues a replay of the proposal (or answers the one already queued or running, and
    False): the job the background step runs."""
    proposal = await session.get(Proposal, proposal_id)
    if proposal is None:
        raise ProposalNotFound
    if proposal.terms_json is None:
        raise NoTermsToReplay
    unfinished = await _unfinished(session, proposal_id)
    if unfinished is not None:
        return unfinished, False
    job = ImpactReplay(
        proposal_id=proposal_id,
        status=ReplayStatus.queued,
        budget_s=REPLAY_BUDGET_S,
        requested_at=now,
    )
    session.add(job)
    try:
        await session.commit()
    except IntegrityError:
        # Two asked at once: the other's job is the one.
        await session.rollback()
        unfinished = await _unfinished(session, proposal_id)
        if unfinished is None:  # pragma: no cover - the unique index says one exists
            raise
        return unfinished, False
    return job, True


async def _unfinished(session: AsyncSession, proposal_id: uuid.UUID) -> ImpactReplay | None:
    found: ImpactReplay | None = await session.scalar(
        select(ImpactReplay).where(
            ImpactReplay.proposal_id == proposal_id, ImpactReplay.status.in_(UNFINISHED)
        )
    )
    return found


async def latest(*, session: AsyncSession, proposal_id: uuid.UUID, now: datetime) -> ImpactReplay:
    """The proposal's latest replay (its progress while it runs)."""
    await proposals.get_proposal(session=session, proposal_id=proposal_id, now=now)
    job: ImpactReplay | None = await session.scalar(
        select(ImpactReplay)
        .where(ImpactReplay.proposal_id == proposal_id)
        .order_by(ImpactReplay.seq.desc())
        .limit(1)
    )
    if job is None:
        raise ReplayNotFound
    return job


async def run_next(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    run: ReplayRun,
    clock: Callable[[], datetime],
) -> uuid.UUID | None:
    """Takes the oldest queued replay (one worker at a time: SKIP LOCKED), runs it and keeps
    what it found; answers its id, or None when none was queued. A job left running past its
    budget by a worker that stopped is queued again first."""
    async with sessionmaker() as session:
        await session.execute(
            update(ImpactReplay)
            .where(
                ImpactReplay.status == ReplayStatus.running,
                ImpactReplay.started_at
                < clock() - timedelta(seconds=REPLAY_BUDGET_S + ABANDONED_AFTER_S),
            )
            .values(status=ReplayStatus.queued, started_at=None)
        )
        job = await session.scalar(
            select(ImpactReplay)
            .where(ImpactReplay.status == ReplayStatus.queued)
            .order_by(ImpactReplay.seq)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if job is None:
            return None
        job.status = ReplayStatus.running
        job.started_at = clock()
        await session.commit()
        job_id, proposal_id, budget_s = job.id, job.proposal_id, job.budget_s
    async with sessionmaker() as session:
        proposal = await session.get(Proposal, proposal_id)
        assert proposal is not None  # a job's proposal is never removed
        now = clock()
        current = (await bargaining_service.in_force(session=session, at=now)).terms
        progress = Progress()
        work = asyncio.ensure_future(run(session, now, current, proposal.terms, budget_s, progress))
        try:
            while not work.done():
                await asyncio.wait({work}, timeout=PROGRESS_EVERY_S)
                await _write_progress(sessionmaker, job_id, progress)
            outcome = work.result()
        except asyncio.CancelledError:
            # The job stays `running`; a worker queues it again once its budget has passed.
            progress.stopped = True
            work.cancel()
            raise
        except Exception:
            await _finish(sessionmaker, job_id, ReplayStatus.failed, clock(), progress)
            raise
    status = ReplayStatus.over_budget if outcome.over_budget else ReplayStatus.done
    result = {"days": outcome.days, "note": outcome.note, "figures": outcome.figures}
    await _finish(sessionmaker, job_id, status, clock(), progress, outcome.source, result)
    return job_id


async def _write_progress(
    sessionmaker: async_sessionmaker[AsyncSession], job_id: uuid.UUID, progress: Progress
) -> None:
    async with sessionmaker() as session:
        job = await session.get(ImpactReplay, job_id)
        if job is not None:
            job.progress_done, job.progress_total = progress.done, progress.total
            await session.commit()


async def _finish(
    sessionmaker: async_sessionmaker[AsyncSession],
    job_id: uuid.UUID,
    status: ReplayStatus,
    at: datetime,
    progress: Progress,
    source: str | None = None,
    result: dict[str, Any] | None = None,
) -> None:
    async with sessionmaker() as session:
        job = await session.get(ImpactReplay, job_id)
        assert job is not None
        job.status, job.finished_at = status, at
        job.progress_done, job.progress_total = progress.done, progress.total
        job.source = source
        job.result = result if status == ReplayStatus.done else None
        if status == ReplayStatus.over_budget and result is not None:
            job.result = {"days": result["days"], "note": result["note"], "figures": []}
        await session.commit()


@contextlib.asynccontextmanager
async def running(
    sessionmaker: async_sessionmaker[AsyncSession],
    tasks: TaskRunner,
    clock: Callable[[], datetime],
    run: Callable[[], ReplayRun],
    *,
    background_tasks: bool,
    interval_s: float = POLL_INTERVAL_S,
) -> AsyncIterator[None]:
    """Runs queued replays while the app runs, one at a time per process, on the app's runner
    (`run` answers the installed `ReplayRun` when a job starts)."""

    async def step() -> None:
        while await run_next(sessionmaker=sessionmaker, run=run(), clock=clock) is not None:
            pass

    handle = tasks.every("impact-replays", interval_s, step) if background_tasks else None
    try:
        yield
    finally:
        if handle is not None:
            await handle.stop()
