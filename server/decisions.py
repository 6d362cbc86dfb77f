"""The register of automated decisions: every decision the service makes or supports on its own.

Québec's Law 25 (Act respecting the protection of personal information in the private sector,
s. 12.1) and the Platform Work Directive (EU 2024/2831, Arts. 9-11) ask that a person subject to
a decision made by automated processing be told so, be told the information and the main factors
and parameters that led to it, and be able to have it reviewed by a person. This module declares
each such decision once: what it decides, the data it uses, its main parameters (their values are
read at each request from the agreement in force, the settings and the jurisdiction profile, so
they are never stale), whether a person decides or reviews, and how to ask for that review.
`GET /v1/transparency/automated-decisions` answers it (docs/jurisdiction.md, "Automated
decisions").

A status decision (suspending or ending a membership) is listed too, as never automated: only a
person's recorded decision changes a status (`drivers/status.py`), and no rating ever does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import service as bargaining_service
from bargaining.terms import Terms, terms_to_wire
from coop.auth import Admin, CurrentPrincipal, Principal, Role, require_role
from coop.clock import Now
from coop.dependencies import JurisdictionDep, SessionDep
from coop.errors import UnprocessableEntity
from coop.jurisdiction import Profile
from coop.messages import N_
from coop.settings import Settings
from coop.state import CoreState, state_of
from dispatch.trips import queries as trip_queries
from dispatch.trips.exceptions import NotYourOffer, OfferNotFound
from dispatch.trips.models import Offer
from reputation import decision_reviews
from reputation.decision_reviews import ReviewAnswer, ReviewOut, ReviewRequest

Source = Literal["agreement", "setting", "law"]
Importance = Literal["decisive", "major", "minor", "bound"]
Person = Literal["decides", "reviews", "none"]


@dataclass(frozen=True)
class Parameter:
    source: Source
    path: str  # a dotted path in the agreement's terms, a setting's name, or the profile's field
    importance: Importance
    meaning: str


@dataclass(frozen=True)
class Decision:
    key: str
    decides: str
    data_used: tuple[str, ...]
    parameters: tuple[Parameter, ...]
    person: Person
    review: str


REGISTER: tuple[Decision, ...] = (
    Decision(
        key="dispatch_offer",
        decides=N_("Which available driver is offered a waiting trip, in each batch"),
        data_used=(
            N_("drivers' latest positions and availability"),
            N_("the pickup and destination of each waiting request"),
            N_("the travel-time model's pickup ETAs"),
            N_("each driver's time since their last trip and earnings per online hour this shift"),
            N_("how long each request has waited"),
            N_("each waiting request's quote, and the median quote of the last hour's requests"),
        ),
        parameters=(
            Parameter(
                "agreement", "dispatch.max_pickup_distance_m", "bound", N_("no driver farther")
            ),
            Parameter("agreement", "dispatch.fairness_weight", "major", N_("time since last trip")),
            Parameter("agreement", "dispatch.fairness_credit_max_s", "bound", N_("its most")),
            Parameter("agreement", "dispatch.earnings_credit_max_s", "major", N_("low earnings")),
            Parameter("agreement", "dispatch.rider_wait_credit_max_s", "minor", N_("rider's wait")),
            Parameter("agreement", "dispatch.offer_timeout_s", "minor", N_("time to answer")),
            Parameter(
                "agreement",
                "dispatch.earnings_credit_fare_scale_max",
                "major",
                N_("dear trips to low earners"),
            ),
            Parameter(
                "agreement",
                "dispatch.earnings_penalty_above_median",
                "major",
                N_("high earners after others"),
            ),
            Parameter(
                "agreement", "dispatch.candidates_per_request", "minor", N_("drivers weighed")
            ),
        ),
        person="none",
        review=N_(
            "Every offer says why it was made; declining is never held against the driver. "
            "A driver or a rider may ask a person to review an offer, or its absence."
        ),
    ),
    Decision(
        key="batch_timing",
        decides=N_("When waiting requests are matched, and when a request ends unfulfilled"),
        data_used=(
            N_("the time each request was made"),
            N_("whether other requests compete for it"),
        ),
        parameters=(
            Parameter("agreement", "dispatch.batch_interval_ms", "decisive", N_("a full batch")),
            Parameter("agreement", "dispatch.min_batch_interval_ms", "minor", N_("an early batch")),
            Parameter("agreement", "dispatch.max_wait_s", "bound", N_("then unfulfilled")),
        ),
        person="none",
        review=N_("The timings are the agreement's terms, which the members vote on."),
    ),
    Decision(
        key="fare",
        decides=N_("A trip's fare, its cap, the co-op's commission and the driver's earnings"),
        data_used=(
            N_("the route's distance and duration (the quote), then the driver's metered trail"),
            N_("the agreement version in force when the trip was requested"),
        ),
        parameters=(
            Parameter("agreement", "fares", "decisive", N_("base, per km, per minute, minimum")),
            Parameter("agreement", "commission", "major", N_("the co-op's share")),
            Parameter("agreement", "driver_floor", "major", N_("the driver's floor")),
            Parameter("law", "dues", "minor", N_("the per-trip dues, apart from the fare")),
            Parameter("law", "taxes", "minor", N_("the sales taxes")),
        ),
        person="reviews",
        review=N_(
            "The rider consents to the maximum before the trip. A fare the meter took far past "
            "its quote is reviewed by a person."
        ),
    ),
    Decision(
        key="implausible_positions",
        decides=N_(
            "Which positions are believed, metered and count as the driver being at a place"
        ),
        data_used=(N_("the driver's successive positions and their times"),),
        parameters=(
            Parameter(
                "agreement", "dispatch.max_plausible_speed_kmh", "decisive", N_("faster: not")
            ),
            Parameter("agreement", "dispatch.arrival_radius_m", "major", N_("at the pickup")),
        ),
        person="reviews",
        review=N_("A fare metered on doubted positions is reviewed by a person."),
    ),
    Decision(
        key="trip_timeouts",
        decides=N_("When a waiting rider is a no-show, and when an overlong ride is ended"),
        data_used=(N_("the trip's arrival, start and estimated durations"),),
        parameters=(
            Parameter("agreement", "dispatch.no_show_wait_s", "decisive", N_("wait at the pickup")),
            Parameter("agreement", "dispatch.overrun_percent", "major", N_("past the estimate")),
            Parameter("agreement", "dispatch.overrun_s", "major", N_("past the estimate")),
            Parameter("agreement", "cancellation.fee", "minor", N_("a no-show's fee")),
        ),
        person="reviews",
        review=N_("A ride ended for running far too long is kept for a person to review."),
    ),
    Decision(
        key="rating_counts",
        decides=N_("Which ratings count in a driver's score, and when a person offers support"),
        data_used=(N_("the ratings of the driver's recent trips, their stars and tags"),),
        parameters=(
            Parameter("agreement", "reputation.window", "major", N_("the last rated trips")),
            Parameter("agreement", "reputation.min_ratings", "bound", N_("no score below it")),
            Parameter("agreement", "reputation.prior_mean", "major", N_("the prior")),
            Parameter(
                "agreement", "reputation.excluded_tags", "major", N_("not the driver's doing")
            ),
            Parameter(
                "agreement", "reputation.support_threshold", "minor", N_("support, never more")
            ),
        ),
        person="reviews",
        review=N_(
            "Any rating can be appealed to a person, who decides within the agreement's review "
            "period. A score never deactivates anyone."
        ),
    ),
    Decision(
        key="rate_limits",
        decides=N_("When a caller's requests are refused for a while, and when positions are shed"),
        data_used=(N_("the caller's account or address"), N_("how many requests it made recently")),
        parameters=(
            Parameter("setting", "api_limit", "decisive", N_("per account")),
            Parameter("setting", "anonymous_limit", "decisive", N_("per address")),
            Parameter("setting", "signup_limit", "major", N_("sign-ups per address")),
            Parameter(
                "setting", "location_backpressure", "minor", N_("shed positions when loaded")
            ),
        ),
        person="none",
        review=N_("A limit lifts by itself after a while; the co-op's operators set the limits."),
    ),
    Decision(
        key="qualification_expiry",
        decides=N_("Whether a driver and car are offered trips, by the law's qualification items"),
        data_used=(N_("the facts an operator recorded from the driver's and car's documents"),),
        parameters=(Parameter("law", "qualifications", "decisive", N_("what the law requires")),),
        person="decides",
        review=N_(
            "A person records every fact; the driver sees what is missing, and an operator "
            "records a renewal."
        ),
    ),
    Decision(
        key="status_decisions",
        decides=N_("Suspending or ending a membership: never automated"),
        data_used=(N_("a person's recorded decision and its written reason"),),
        parameters=(),
        person="decides",
        review=N_(
            "Only a person changes a status, with a written reason kept and audited; no rating, "
            "score or automated check ever does."
        ),
    ),
)


class ParameterOut(BaseModel):
    source: Source
    name: str
    value: Any = Field(description="in force now; null where absent")
    importance: Importance
    meaning: str


class DecisionOut(BaseModel):
    key: str
    decides: str
    data_used: list[str]
    parameters: list[ParameterOut]
    person: Person = Field(description="decides: a person makes it; reviews: a person can undo it")
    review: str


class AutomatedDecisions(BaseModel):
    agreement_version: int
    jurisdiction: str
    jurisdiction_version: int
    decisions: list[DecisionOut]
    reviews_open: int = Field(default=0, description="requests for a person's review unanswered")
    reviews_overdue: int = Field(
        default=0, description="of them, past their due date (the agreement's review_due_days)"
    )


def _at(tree: Any, path: str) -> Any:
    for step in path.split("."):
        if not isinstance(tree, dict) or step not in tree:
            return None
        tree = tree[step]
    return tree


def resolve(parameter: Parameter, *, terms: Terms, settings: Settings, profile: Profile) -> Any:
    """The value of `parameter` in force: from the agreement's terms, a setting or the law."""
    if parameter.source == "agreement":
        return _at(terms_to_wire(terms), parameter.path)
    if parameter.source == "setting":
        return getattr(settings, parameter.path)
    return _at(profile.model_dump(mode="json"), parameter.path)


def register_in_force(
    *, terms: Terms, agreement_version: int, settings: Settings, profile: Profile
) -> AutomatedDecisions:
    return AutomatedDecisions(
        agreement_version=agreement_version,
        jurisdiction=profile.key,
        jurisdiction_version=profile.version,
        decisions=[
            DecisionOut(
                key=decision.key,
                decides=decision.decides,
                data_used=list(decision.data_used),
                parameters=[
                    ParameterOut(
                        source=parameter.source,
                        name=parameter.path,
                        value=resolve(parameter, terms=terms, settings=settings, profile=profile),
                        importance=parameter.importance,
                        meaning=parameter.meaning,
                    )
                    for parameter in decision.parameters
                ],
                person=decision.person,
                review=decision.review,
            )
            for decision in REGISTER
        ],
    )


router = APIRouter(tags=["transparency"])


@router.get("/v1/transparency/automated-decisions", response_model=AutomatedDecisions)
async def automated_decisions(
    request: Request, session: SessionDep, profile: JurisdictionDep, now: Now
) -> AutomatedDecisions:
    """Every decision the service makes or supports automatically, with its parameters in
    force now and how a person reviews it (public)."""
    agreement = await bargaining_service.in_force(session=session, at=now)
    register = register_in_force(
        terms=agreement.terms,
        agreement_version=agreement.version,
        settings=state_of(request.app, CoreState).settings,
        profile=profile,
    )
    return register.model_copy(update=await review_figures(session=session, now=now))


async def review_figures(*, session: AsyncSession, now: datetime) -> dict[str, int]:
    """How many requests for a person's review wait, and how many are overdue (public counts)."""
    waiting = await decision_reviews.queue(session=session, open_only=True)
    return {
        "reviews_open": len(waiting),
        "reviews_overdue": await decision_reviews.overdue_count(session=session, now=now),
    }


class UnknownDecision(UnprocessableEntity):
    type = "unknown_decision"
    title = "No automated decision has this key"


class NotAutomated(UnprocessableEntity):
    type = "not_automated"
    title = "This decision is a person's, not an automated one"


REVIEWABLE = {decision.key: decision for decision in REGISTER if decision.key != "status_decisions"}


@router.post("/v1/decision-reviews", status_code=status.HTTP_201_CREATED, response_model=ReviewOut)
async def request_review(
    body: ReviewRequest, principal: CurrentPrincipal, session: SessionDep, now: Now
) -> ReviewOut:
    """Asks a person to review an automated decision about the caller (a rider or a driver),
    about one of their trips or offers where it concerned one; answered within the agreement's
    `reputation.review_due_days`."""
    return await ask_for_review(principal=principal, body=body, session=session, now=now)


async def ask_for_review(
    *, principal: Principal, body: ReviewRequest, session: AsyncSession, now: datetime
) -> ReviewOut:
    """The one way to ask for a person's review, for the API and the `/me` page: the decision
    must be a reviewable one of the register, and the trip or offer the caller's own."""
    require_role(principal, Role.rider, Role.driver)
    if body.decision == "status_decisions":
        raise NotAutomated(
            "A status decision is made by a person with a written reason; the co-op's "
            "operators reconsider it on request"
        )
    if body.decision not in REVIEWABLE:
        raise UnknownDecision(
            f"No automated decision {body.decision!r}; see GET /v1/transparency/automated-decisions"
        )
    if body.trip_id is not None:
        await trip_queries.get_for(session=session, trip_id=body.trip_id, principal=principal)
    if body.offer_id is not None:
        offer = await session.get(Offer, body.offer_id)
        if offer is None:
            raise OfferNotFound(f"No offer {body.offer_id}")
        if principal.role is not Role.driver or offer.driver_id != principal.subject_id:
            raise NotYourOffer("Only the driver an offer was made to may ask about it")
    agreement = await bargaining_service.in_force(session=session, at=now)
    review = await decision_reviews.request(
        session=session,
        principal=principal,
        body=body,
        review_due_days=agreement.terms.reputation.review_due_days,
        now=now,
    )
    return ReviewOut.of(review, now=now)


@router.get("/v1/decision-reviews/mine", response_model=list[ReviewOut])
async def my_reviews(principal: CurrentPrincipal, session: SessionDep, now: Now) -> list[ReviewOut]:
    """The caller's review requests and their answers, oldest first."""
    require_role(principal, Role.rider, Role.driver)
    found = await decision_reviews.mine(session=session, principal=principal)
    return [ReviewOut.of(review, now=now) for review in found]


@router.get("/v1/decision-reviews", response_model=list[ReviewOut])
async def review_queue(
    session: SessionDep,
    now: Now,
    _: Admin,
    status: Annotated[Literal["open", "all"], Query()] = "open",
) -> list[ReviewOut]:
    """The operators' queue, the soonest due first (admin only)."""
    found = await decision_reviews.queue(session=session, open_only=status == "open")
    return [ReviewOut.of(review, now=now) for review in found]


@router.post("/v1/decision-reviews/{review_id}/answer", response_model=ReviewOut)
async def answer_review(
    review_id: uuid.UUID, body: ReviewAnswer, session: SessionDep, now: Now, _: Admin
) -> ReviewOut:
    """A person's answer: the decision stands (`upheld`) or was changed (`changed`), with why
    (admin only; the first answer counts)."""
    review = await decision_reviews.answer(session=session, review_id=review_id, body=body, now=now)
    return ReviewOut.of(review, now=now)
