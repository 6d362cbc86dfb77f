"""The ride check on the sockets: a party's `safety_check_answer` frame, the questions still
waiting for a (re)connecting party, and the sweep's loop step (docs/safety.md, "Ride check")."""

from __future__ import annotations

import collections
import time
import uuid
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from bargaining.exceptions import NoAgreementInForce
from coop.auth import Principal, Role
from coop.frames import Frame
from dispatch.realtime.frames import BadFrame
from dispatch.realtime.state import DispatchState
from dispatch.safety import ridecheck_service
from dispatch.safety.ridecheck import Detector
from dispatch.safety.ridecheck_frames import SafetyCheckAnswerFrame
from dispatch.safety.ridecheck_models import CheckOutcome
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


class RideCheckCollector:
    """The ride check's figures for `/metrics`: checks asked by detector, escalated by reason,
    and the sweeps (how many, and how long the last took: a sweep near SWEEP_INTERVAL_S means
    the checks come late)."""

    def __init__(self) -> None:
        self.asked: collections.Counter[str] = collections.Counter()
        self.escalated: collections.Counter[str] = collections.Counter()
        self.sweeps = 0
        self.last_sweep_s = 0.0
        self.watched = 0

    def add(self, report: ridecheck_service.SweepReport, took_s: float) -> None:
        self.sweeps += 1
        self.last_sweep_s = took_s
        self.watched = report.watched
        self.asked.update(check.detector for check in report.asked)
        self.escalated.update(check.escalation or "" for check in report.escalated)

    def collect(self) -> Iterator[Metric]:
        asked = CounterMetricFamily(
            "coop_ride_checks_asked", "Ride checks asked of both parties", labels=["detector"]
        )
        for detector in Detector:
            asked.add_metric([detector.value], self.asked[detector.value])
        yield asked
        escalated = CounterMetricFamily(
            "coop_ride_checks_unanswered",
            "Ride checks sent to the operators for want of both parties' ok, by this worker's "
            "sweeps (a `help` answer is counted where it is received, as an SOS)",
        )
        escalated.add_metric([], self.escalated[CheckOutcome.unanswered.value])
        yield escalated
        yield CounterMetricFamily(
            "coop_ride_check_sweeps", "Sweeps of the ride check run", value=self.sweeps
        )
        yield GaugeMetricFamily(
            "coop_ride_check_sweep_seconds",
            "How long this worker's last ride-check sweep took",
            value=self.last_sweep_s,
        )
        yield GaugeMetricFamily(
            "coop_ride_check_watched_trips",
            "Trips this worker's last sweep went through",
            value=self.watched,
        )


async def sweep(
    state: DispatchState, figures: RideCheckCollector | None = None
) -> ridecheck_service.SweepReport:
    """One run of the ride check: the detectors over the new positions, the due escalations;
    then the new checks put to both parties."""
    began = time.perf_counter()
    async with state.sessionmaker() as session:
        try:
            report = await ridecheck_service.sweep(session=session, now=state.clock())
        except NoAgreementInForce:  # a state, not a fault: no terms, no thresholds yet
            return ridecheck_service.SweepReport()
    await ridecheck_service.ask(state.redis, report.asked)
    if figures is not None:
        figures.add(report, time.perf_counter() - began)
    return report
