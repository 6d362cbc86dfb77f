"""The ride check on the sockets: a party's `safety_check_answer` frame, the questions still
waiting for a (re)connecting party, and the sweep's loop step (docs/safety.md, "Ride check")."""

from __future__ import annotations

import uuid

from bargaining.exceptions import NoAgreementInForce
from coop.auth import Principal, Role
from coop.frames import Frame
from dispatch.realtime.frames import BadFrame
from dispatch.realtime.state import DispatchState
from dispatch.safety import ridecheck_service
from dispatch.safety.ridecheck_frames import SafetyCheckAnswerFrame
from dispatch.safety.ridecheck_service import AlreadyAnswered, UnknownCheck

# How often the sweep runs: a check fires at most this much after its threshold.
SWEEP_INTERVAL_S = 5.0


def _party(principal: Principal | None) -> dict[str, uuid.UUID]:
    assert principal is not None and principal.subject_id is not None  # a socket's, signed in
    if principal.role is Role.rider:
        return {"rider_id": principal.subject_id}
    return {"driver_id": principal.subject_id}


async def answered(
    state: DispatchState, principal: Principal | None, frame: SafetyCheckAnswerFrame
) -> str:
    """Records the answer; answers the frame that confirms it to this socket. A stranger's
    answer, or a second one, is a `BadFrame` (an error frame; the connection stays)."""
    async with state.sessionmaker() as session:
        try:
            check = await ridecheck_service.answer(
                session=session,
                check_id=frame.check_id,
                answer=frame.answer,
                now=state.clock(),
                **_party(principal),
            )
        except UnknownCheck:
            raise BadFrame(
                f"No safety check {frame.check_id} was put to you", code="unknown_safety_check"
            ) from None
        except AlreadyAnswered:
            raise BadFrame(
                f"You have answered safety check {frame.check_id} already; for help now, "
                "raise an SOS",
                code="safety_check_answered",
            ) from None
    return ridecheck_service.question(check, answered=frame.answer).encode()


async def waiting(state: DispatchState, principal: Principal | None) -> list[Frame]:
    """The checks this party has yet to answer: part of the state a socket starts with."""
    async with state.sessionmaker() as session:
        return list(
            await ridecheck_service.open_questions(
                session=session, now=state.clock(), **_party(principal)
            )
        )


async def sweep(state: DispatchState) -> ridecheck_service.SweepReport:
    """One run of the ride check: the detectors over the new positions, the due escalations;
    then the new checks put to both parties."""
    async with state.sessionmaker() as session:
        try:
            report = await ridecheck_service.sweep(session=session, now=state.clock())
        except NoAgreementInForce:  # a state, not a fault: no terms, no thresholds yet
            return ridecheck_service.SweepReport()
    await ridecheck_service.ask(state.redis, report.asked)
    return report
