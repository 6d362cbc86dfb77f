"""Domain operations of the collective agreement: versions, proposals, ballots and closes.

Every operation commits once or not at all. Races are settled by PostgreSQL: a ballot holds a
share lock on its proposal's row, a close an update lock, so a ballot racing the close is either
counted or refused, never lost; version numbers are handed out under an advisory lock.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, insert, literal, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import ledger, secrecy
from bargaining import tally as tally_rules
from bargaining.diff import Change, diff_terms
from bargaining.exceptions import (
    AgreementNotFound,
    InvalidProposal,
    NoAgreementInForce,
    NotEligible,
    ProposalNotFound,
    VotingClosed,
    VotingStillOpen,
)
from bargaining.impact import IMPACT_WINDOW, CompletedTripsSource, Impact, estimate
from bargaining.models import (
    AgreementVersion,
    Ballot,
    BallotChoice,
    BallotKey,
    Proposal,
    ProposalKind,
    ProposalStatus,
    SealedBallot,
)
from bargaining.secrecy import OwnBallot
from bargaining.terms import (
    Governance,
    Terms,
    load_founding_terms,
    terms_sha256,
    terms_to_wire,
)
from coop import audit
from coop.errors import Forbidden
from coop.messages import N_
from drivers.models import Driver, DriverStatus, status_lock_key

logger = logging.getLogger("coop.bargaining")

# A ratified dividend whose days another dividend was posted for while it was voted on.
PERIOD_TAKEN = "period_taken"

# The founding agreement is the one the co-op started with: no trip can predate it, so it is in
# force from the start of time (the Unix epoch) until a ratified version replaces it.
FOUNDING_EFFECTIVE_FROM = datetime(1970, 1, 1, tzinfo=UTC)
# pg_advisory_xact_lock key ("coopvers"): version numbers are handed out one at a time.
VERSIONS_LOCK_KEY = 0x636F6F7076657273

AUDIT_AGREEMENT_VERSION = "agreement.version"
AUDIT_PROPOSAL_OPENED = "proposal.opened"
AUDIT_PROPOSAL_CLOSED = "proposal.closed"
AUDIT_PROPOSAL_WITHDRAWN = "proposal.withdrawn"


# --- versions ---------------------------------------------------------------------------------


async def in_force(*, session: AsyncSession, at: datetime) -> AgreementVersion:
    """The version in force at `at`: the highest version whose effective_from <= at."""
    if at.tzinfo is None:
        raise ValueError("in_force needs a timezone-aware time")
    version = await session.scalar(
        select(AgreementVersion)
        .where(AgreementVersion.effective_from <= at)
        .order_by(AgreementVersion.version.desc())
        .limit(1)
    )
    if version is None:
        raise NoAgreementInForce(f"No agreement version is in force at {at.isoformat()}")
    return version


async def get_version(*, session: AsyncSession, version: int) -> AgreementVersion:
    """One version by its number."""
    row = await session.get(AgreementVersion, version)
    if row is None:
        raise AgreementNotFound(f"There is no agreement version {version}")
    return row


async def list_versions(*, session: AsyncSession) -> list[AgreementVersion]:
    """Every version ever in force or scheduled, oldest first."""
    return list(await session.scalars(select(AgreementVersion).order_by(AgreementVersion.version)))


async def diff_versions(*, session: AsyncSession, a: int, b: int) -> list[Change]:
    """What changed from version `a` to version `b`."""
    before = await get_version(session=session, version=a)
    after = await get_version(session=session, version=b)
    return diff_terms(before.terms, after.terms)


async def _add_version(
    *,
    session: AsyncSession,
    terms: Terms,
    effective_from: datetime,
    proposal_id: uuid.UUID | None,
) -> AgreementVersion:
    """Writes the next version and its audit entry in the caller's transaction."""
    await session.execute(select(func.pg_advisory_xact_lock(VERSIONS_LOCK_KEY)))
    latest = await session.scalar(select(func.max(AgreementVersion.version)))
    version = AgreementVersion(
        version=(latest or 0) + 1,
        effective_from=effective_from,
        terms_json=terms_to_wire(terms),
        sha256=terms_sha256(terms),
        proposal_id=proposal_id,
    )
    session.add(version)
    await session.flush()
    await audit.append(
        session=session,
        kind=AUDIT_AGREEMENT_VERSION,
        subject=f"agreement:{version.version}",
        content={
            "version": version.version,
            "effective_from": effective_from,
            "sha256": version.sha256,
            "proposal_id": proposal_id,
        },
    )
    return version


async def install_founding(*, session: AsyncSession) -> None:
    """Installs the founding agreement as version 1 unless a version exists (safe to race)."""
    await session.execute(select(func.pg_advisory_xact_lock(VERSIONS_LOCK_KEY)))
    if await session.scalar(select(AgreementVersion.version).limit(1)) is not None:
        await session.rollback()
        return
    terms = load_founding_terms()
    await _add_version(
        session=session, terms=terms, effective_from=FOUNDING_EFFECTIVE_FROM, proposal_id=None
    )
    await session.commit()
    logger.info("installed the founding agreement as version 1 (sha256 %s)", terms_sha256(terms))


# --- proposals --------------------------------------------------------------------------------


def voting_period_problems(
    *, voting_closes_at: datetime, now: datetime, governance: Governance
) -> list[dict[str, str]]:
    """A vote closes in the future and within `governance.max_voting_days`: a vote kept open for
    years would hold its question (and a dividend's members) hostage."""
    if voting_closes_at <= now:
        return [{"field": "voting_closes_at", "reason": N_("Must be in the future")}]
    if voting_closes_at > now + timedelta(days=governance.max_voting_days):
        return [
            {
                "field": "voting_closes_at",
                "reason": N_(
                    "Must be at most {days} days from now (governance.max_voting_days)"
                ).format(days=governance.max_voting_days),
            }
        ]
    return []


async def check_proposal(
    *,
    session: AsyncSession,
    terms: Terms,
    effective_from: datetime | None,
    voting_closes_at: datetime,
    now: datetime,
) -> AgreementVersion:
    """Every rule a proposal must meet to be put to a vote (besides the terms' own validation);
    raises `InvalidProposal` naming each field that breaks one. Answers the version in force."""
    base = await in_force(session=session, at=now)
    errors = voting_period_problems(
        voting_closes_at=voting_closes_at, now=now, governance=base.terms.governance
    )
    if effective_from is not None and effective_from < voting_closes_at:
        errors.append(
            {
                "field": "effective_from",
                "reason": N_(
                    "Must not be before voting_closes_at: terms cannot take effect "
                    "before they are ratified (leave it null for 'at ratification')"
                ),
            }
        )
    if not diff_terms(base.terms, terms):
        errors.append(
            {
                "field": "terms",
                "reason": N_(
                    "Identical to version {version}, in force now: nothing to vote on"
                ).format(version=base.version),
            }
        )
    if errors:
        raise InvalidProposal(
            "; ".join(f"{e['field']}: {e['reason']}" for e in errors), errors=errors
        )
    return base


async def preview_proposal(
    *,
    session: AsyncSession,
    terms: Terms,
    effective_from: datetime | None,
    voting_closes_at: datetime,
    now: datetime,
    trips_source: CompletedTripsSource,
) -> tuple[AgreementVersion, list[Change], Impact]:
    """What opening these terms would put to the vote, without opening it: the same checks as
    `open_proposal`, the changes against the version in force and the impact estimate."""
    base = await check_proposal(
        session=session,
        terms=terms,
        effective_from=effective_from,
        voting_closes_at=voting_closes_at,
        now=now,
    )
    trips = await trips_source(session, now - IMPACT_WINDOW)
    impact = estimate(current=base.terms, proposed=terms, trips=trips)
    return base, diff_terms(base.terms, terms), impact


async def open_proposal(
    *,
    session: AsyncSession,
    proposer: Driver,
    title: str,
    rationale: str,
    terms: Terms,
    effective_from: datetime | None,
    voting_closes_at: datetime,
    now: datetime,
    trips_source: CompletedTripsSource,
) -> Proposal:
    """Puts new terms to the vote, with the roll of every active member taken now."""
    if proposer.status is not DriverStatus.active:
        raise Forbidden("Only an active member of the committee may open a vote")
    base = await check_proposal(
        session=session,
        terms=terms,
        effective_from=effective_from,
        voting_closes_at=voting_closes_at,
        now=now,
    )
    trips = await trips_source(session, now - IMPACT_WINDOW)
    impact = estimate(current=base.terms, proposed=terms, trips=trips)
    proposal = Proposal(
        id=uuid.uuid4(),
        kind=ProposalKind.terms,
        title=title,
        rationale=rationale,
        terms_json=terms_to_wire(terms),
        terms_sha256=terms_sha256(terms),
        base_version=base.version,
        effective_from=effective_from,
        voting_closes_at=voting_closes_at,
        status=ProposalStatus.open,
        proposed_by=proposer.id,
        opened_at=now,
        eligible=0,
        impact=impact.to_wire(),
    )
    return await put_to_vote(
        session=session,
        proposal=proposal,
        audit_content={
            "terms_sha256": proposal.terms_sha256,
            "effective_from": effective_from,
        },
    )


async def put_to_vote(
    *, session: AsyncSession, proposal: Proposal, audit_content: dict[str, object]
) -> Proposal:
    """Writes the proposal with the roll of every member active now, audits it and commits."""
    session.add(proposal)
    await session.flush()
    # The roll: one row per member active now (a simulated city's drivers are no members);
    # a ballot fills in its row.
    await session.execute(
        insert(Ballot).from_select(
            ["proposal_id", "driver_id"],
            select(literal(proposal.id, Ballot.proposal_id.type), Driver.id).where(
                Driver.status == DriverStatus.active, Driver.simulated.is_(False)
            ),
        )
    )
    eligible = await session.scalar(
        select(func.count()).select_from(Ballot).where(Ballot.proposal_id == proposal.id)
    )
    proposal.eligible = int(eligible or 0)
    session.add(BallotKey(proposal_id=proposal.id, salt=secrecy.new_salt()))
    content: dict[str, object] = {
        "proposal_id": proposal.id,
        "base_version": proposal.base_version,
        **audit_content,
        "voting_closes_at": proposal.voting_closes_at,
        "eligible": proposal.eligible,
    }
    if proposal.kind is not ProposalKind.terms:
        content["kind"] = proposal.kind.value
    await audit.append(
        session=session,
        kind=AUDIT_PROPOSAL_OPENED,
        subject=f"proposal:{proposal.id}",
        content=content,
    )
    await session.commit()
    return proposal


async def _locked_proposal(
    *, session: AsyncSession, proposal_id: uuid.UUID, share: bool
) -> Proposal:
    proposal = await session.scalar(
        select(Proposal)
        .where(Proposal.id == proposal_id)
        .with_for_update(read=share)
        .execution_options(populate_existing=True)
    )
    if proposal is None:
        await session.rollback()
        raise ProposalNotFound(f"There is no proposal {proposal_id}")
    return proposal


async def _close(
    *, session: AsyncSession, proposal_id: uuid.UUID, now: datetime, requested: bool
) -> tuple[Proposal, bool]:
    """Closes the proposal if its vote is over; answers it and whether this call closed it."""
    proposal = await _locked_proposal(session=session, proposal_id=proposal_id, share=False)
    if proposal.status is not ProposalStatus.open:
        await session.commit()
        return proposal, False
    if now < proposal.voting_closes_at:
        await session.commit()
        if requested:
            raise VotingStillOpen(
                f"Voting closes at {proposal.voting_closes_at.isoformat()}; "
                "the committee can close it only after that"
            )
        return proposal, False
    # Every ballot committed before this lock was granted is counted; any later one sees the
    # proposal closed and is refused.
    rows = await session.execute(
        select(SealedBallot.choice, func.count())
        .where(SealedBallot.proposal_id == proposal_id)
        .group_by(SealedBallot.choice)
    )
    counts: dict[BallotChoice, int] = dict(rows.all())
    # The ballot key goes with the count: from now on no one can tell whose choice is whose.
    await session.execute(delete(BallotKey).where(BallotKey.proposal_id == proposal_id))
    base = await get_version(session=session, version=proposal.base_version)
    result = tally_rules.count(
        yes=counts.get(BallotChoice.yes, 0),
        no=counts.get(BallotChoice.no, 0),
        abstain=counts.get(BallotChoice.abstain, 0),
        eligible=proposal.eligible,
        rules=base.terms.governance,
    )
    outcome, reason = result.outcome, result.reason.value
    if outcome is tally_rules.Outcome.ratified and proposal.kind is ProposalKind.patronage:
        # Days are taken only by a dividend posted: of two overlapping dividends voted at the
        # same time, the first ratified is posted and the other finds its days shared already.
        if await ledger.overlapping(session=session, proposal=proposal) is not None:
            outcome, reason = tally_rules.Outcome.rejected, PERIOD_TAKEN
    proposal.status = ProposalStatus(outcome.value)
    proposal.closed_at = now
    proposal.yes, proposal.no, proposal.abstain = result.yes, result.no, result.abstain
    proposal.turnout_percent = result.turnout_percent
    proposal.outcome_reason = reason
    await session.flush()
    new_version = None
    if outcome is tally_rules.Outcome.ratified and proposal.kind is ProposalKind.patronage:
        await ledger.post(session=session, proposal=proposal, now=now)
    elif outcome is tally_rules.Outcome.ratified:
        # Never earlier than the ratification itself: a version must not reach back in time
        # and change the terms of trips already requested.
        effective_from = max(proposal.effective_from or now, now)
        new_version = await _add_version(
            session=session,
            terms=proposal.terms,
            effective_from=effective_from,
            proposal_id=proposal.id,
        )
        proposal.result_version = new_version.version
    await audit.append(
        session=session,
        kind=AUDIT_PROPOSAL_CLOSED,
        subject=f"proposal:{proposal.id}",
        content={
            "proposal_id": proposal.id,
            "status": proposal.status.value,
            "reason": reason,
            "yes": result.yes,
            "no": result.no,
            "abstain": result.abstain,
            "eligible": result.eligible,
            "turnout_percent": result.turnout_percent,
            "version": new_version.version if new_version else None,
        },
    )
    await session.commit()
    logger.info("proposal %s closed: %s (%s)", proposal.id, proposal.status, reason)
    return proposal, True


async def close(*, session: AsyncSession, proposal_id: uuid.UUID, now: datetime) -> Proposal:
    """The committee's close: only once voting_closes_at has passed; a closed one is answered."""
    proposal, _ = await _close(session=session, proposal_id=proposal_id, now=now, requested=True)
    return proposal


async def withdraw(
    *, session: AsyncSession, proposal_id: uuid.UUID, member: Driver, reason: str, now: datetime
) -> Proposal:
    """The committee withdraws an open vote, with a reason: nothing is counted, the ballots cast
    are deleted with their key (no partial count can ever be read), and the audit log records
    it with the reason's digest."""
    if member.status is not DriverStatus.active:
        raise Forbidden("Only an active member of the committee may withdraw a vote")
    await close_if_due(session=session, proposal_id=proposal_id, now=now)
    proposal = await _locked_proposal(session=session, proposal_id=proposal_id, share=False)
    if proposal.status is not ProposalStatus.open:
        refusal = VotingClosed(
            f"Proposal {proposal_id} is {proposal.status.value}: only an open vote is withdrawn"
        )
        await session.rollback()
        raise refusal
    await session.execute(delete(SealedBallot).where(SealedBallot.proposal_id == proposal_id))
    await session.execute(delete(BallotKey).where(BallotKey.proposal_id == proposal_id))
    proposal.status = ProposalStatus.withdrawn
    proposal.closed_at = now
    proposal.withdrawn_reason = reason
    await audit.append(
        session=session,
        kind=AUDIT_PROPOSAL_WITHDRAWN,
        subject=f"proposal:{proposal.id}",
        content={
            # Not who withdrew it: the log is public, and which member acts for the committee is
            # theirs to read only (docs/data-register.md, "proposers").
            "proposal_id": proposal.id,
            "reason_sha256": hashlib.sha256(reason.encode("utf-8")).hexdigest(),
        },
    )
    await session.commit()
    logger.info("proposal %s withdrawn by the committee", proposal.id)
    return proposal


async def close_if_due(*, session: AsyncSession, proposal_id: uuid.UUID, now: datetime) -> Proposal:
    """Closes the proposal if its deadline has passed; answers it either way."""
    proposal, _ = await _close(session=session, proposal_id=proposal_id, now=now, requested=False)
    return proposal


async def close_due(*, session: AsyncSession, now: datetime) -> list[Proposal]:
    """Closes every open proposal whose deadline has passed; answers those this call closed."""
    due = list(
        await session.scalars(
            select(Proposal.id)
            .where(Proposal.status == ProposalStatus.open, Proposal.voting_closes_at <= now)
            .order_by(Proposal.voting_closes_at)
        )
    )
    await session.commit()
    closed = []
    for proposal_id in due:
        try:
            proposal, closed_now = await _close(
                session=session, proposal_id=proposal_id, now=now, requested=False
            )
        except ProposalNotFound:
            continue
        if closed_now:
            closed.append(proposal)
    return closed


# --- ballots ----------------------------------------------------------------------------------


async def _voter_tag(
    *, session: AsyncSession, master: bytes, proposal_id: uuid.UUID, driver_id: uuid.UUID
) -> bytes | None:
    """The member's tag on this proposal, or None once its key is gone (closed)."""
    salt = await session.scalar(select(BallotKey.salt).where(BallotKey.proposal_id == proposal_id))
    if salt is None:
        return None
    return secrecy.voter_tag(secrecy.ballot_key(master, proposal_id, salt), driver_id)


async def cast_ballot(
    *,
    session: AsyncSession,
    master: bytes,
    proposal_id: uuid.UUID,
    driver_id: uuid.UUID,
    choice: BallotChoice,
    now: datetime,
) -> OwnBallot:
    """Records or replaces a member's ballot while the vote is open, under their voter tag."""
    await close_if_due(session=session, proposal_id=proposal_id, now=now)
    proposal = await _locked_proposal(session=session, proposal_id=proposal_id, share=True)
    # A status change cannot slip between this check and the ballot: the shared advisory lock
    # waits for one in progress and holds the next back. Not a row lock: a row lock would mark
    # the member's row with this transaction's id, the same id the sealed ballot carries.
    await session.execute(
        text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": status_lock_key(driver_id)}
    )
    status = await session.scalar(select(Driver.status).where(Driver.id == driver_id))
    if status is not DriverStatus.active:
        await session.rollback()
        raise Forbidden("Only active members may vote")
    closes_at = proposal.voting_closes_at
    if proposal.status is not ProposalStatus.open or now >= closes_at:
        await session.rollback()
        raise VotingClosed(f"Voting on proposal {proposal_id} closed at {closes_at.isoformat()}")
    on_roll = await session.get(Ballot, (proposal_id, driver_id))
    if on_roll is None:
        await session.rollback()
        raise NotEligible(
            "Only members who were active when the vote opened are on its roll; "
            "you were not, so you cannot vote on this proposal"
        )
    tag = await _voter_tag(
        session=session, master=master, proposal_id=proposal_id, driver_id=driver_id
    )
    if tag is None:  # the key goes only at the close, under the lock this ballot shares
        await session.rollback()
        raise VotingClosed(f"Voting on proposal {proposal_id} closed at {closes_at.isoformat()}")
    # Only the sealed rows are written: nothing that names the member changes with a ballot, so
    # not even the rows' transaction ids link a member to a choice. The row keeps no date, and
    # every row of the proposal is rewritten with it: transaction ids grow with time, so each
    # row's own would date its ballot; now they all carry the last one's.
    statement = pg_insert(SealedBallot).values(
        proposal_id=proposal_id, voter_tag=tag, choice=choice
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[SealedBallot.proposal_id, SealedBallot.voter_tag],
            set_={"choice": statement.excluded.choice},
        )
    )
    await session.execute(
        update(SealedBallot)
        .where(SealedBallot.proposal_id == proposal_id)
        .values(choice=SealedBallot.choice)
    )
    await session.commit()
    return OwnBallot(eligible=True, choice=choice, sealed=False)


async def own_ballot(
    *, session: AsyncSession, master: bytes, proposal_id: uuid.UUID, driver_id: uuid.UUID
) -> OwnBallot:
    """The member's own ballot: their choice while the vote is open; after the close only that
    it is sealed (no one can find it any more, the member included)."""
    if await session.get(Proposal, proposal_id) is None:
        raise ProposalNotFound(f"There is no proposal {proposal_id}")
    if await session.get(Ballot, (proposal_id, driver_id)) is None:
        return OwnBallot(eligible=False, choice=None, sealed=False)
    tag = await _voter_tag(
        session=session, master=master, proposal_id=proposal_id, driver_id=driver_id
    )
    if tag is None:
        return OwnBallot(eligible=True, choice=None, sealed=True)
    sealed = await session.get(SealedBallot, (proposal_id, tag))
    if sealed is None:
        return OwnBallot(eligible=True, choice=None, sealed=False)
    return OwnBallot(eligible=True, choice=sealed.choice, sealed=False)
