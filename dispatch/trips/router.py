"""HTTP commands on trips and offers (docs/protocol.md, "Trips"); pushes go out on the sockets."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Query, Request, Response, status

from bargaining.fares import RouteDuration
from coop import paging, pubsub
from coop.auth import Admin, CurrentPrincipal
from coop.clock import Now
from coop.dependencies import JurisdictionDep, RedisDep, ServiceAreaDep, SessionDep
from coop.errors import dependency_down
from coop.state import state_of
from dispatch.states import Move
from dispatch.trips import (
    booking,
    cancellation,
    history,
    moves,
    offers,
    push,
    queries,
    reviews,
    views,
)
from dispatch.trips.schemas import (
    CancelBody,
    ConsentQuoteOut,
    FareReviewClose,
    FareReviewOut,
    OfferOut,
    StartBody,
    TripAsk,
    TripOut,
    TripRequest,
)
from dispatch.trips.state import TripsState
from drivers.dependencies import CurrentDriver
from riders.dependencies import CurrentRider

logger = logging.getLogger("coop.trips")

router = APIRouter(prefix="/v1", tags=["trips"])

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid token"},
    403: {"description": "Not this caller's trip or offer, or the wrong kind of account"},
    404: {"description": "No such trip or offer"},
    409: {
        "description": "Not allowed from the current status (invalid_transition, ...), "
        "driver_not_active, not_at_pickup, pin_required, wrong_pin"
    },
    422: {"description": "Invalid body, or a position outside the service area"},
}


def _check_area(area: ServiceAreaDep, ask: TripAsk) -> None:
    area.require(ask.pickup, "pickup")
    area.require(ask.dropoff, "dropoff")


@router.post("/quotes", response_model=ConsentQuoteOut, responses=_PROBLEMS)
async def quote(
    ask: TripAsk,
    request: Request,
    rider: CurrentRider,
    session: SessionDep,
    area: ServiceAreaDep,
    profile: JurisdictionDep,
    now: Now,
) -> ConsentQuoteOut:
    """The expected fare of a trip under the agreement in force now, what the law adds to it,
    and the most the trip can cost: a quote the rider consents to by requesting the trip with
    its `quote_id` before it expires."""
    _check_area(area, ask)
    return await booking.quote(
        session=session,
        rider_id=rider.id,
        ask=ask,
        profile=profile,
        registrations=state_of(request.app, TripsState).settings.tax_registrations,
        now=now,
        duration=_route_duration(request, now),
    )


def _route_duration(request: Request, now: datetime) -> RouteDuration:
    """The quote's duration: the travel-time model this worker has loaded, at this hour."""
    return state_of(request.app, TripsState).route_duration(now)


@router.post(
    "/trips",
    status_code=status.HTTP_201_CREATED,
    response_model=TripOut,
    responses={
        **_PROBLEMS,
        200: {"description": "A retry with the same Idempotency-Key: the trip it created"},
    },
)
async def request_trip(
    body: TripRequest,
    request: Request,
    response: Response,
    rider: CurrentRider,
    session: SessionDep,
    redis: RedisDep,
    area: ServiceAreaDep,
    profile: JurisdictionDep,
    now: Now,
    idempotency_key: Annotated[
        str | None,
        Header(
            description="Any unique string (a UUID); a retry with the same key and body "
            "answers 200 with the same trip and creates nothing"
        ),
    ] = None,
) -> TripOut:
    """Asks for a ride, with the rider's consent to a quote (`quote_id`): `201` with the trip
    (`requested`); matching starts at the next batch, so no driver hears of a trip before the
    rider consented to its maximum price."""
    _check_area(area, body)
    key = booking.check_idempotency_key(idempotency_key)
    trip, created = await booking.request(
        session=session,
        rider_id=rider.id,
        body=body,
        profile=profile,
        region=state_of(request.app, TripsState).settings.matcher_region,
        idempotency_key=key,
        now=now,
        duration=_route_duration(request, now),
    )
    seen = await views.views(session=session, trip=trip)
    if created:
        await push.trip_changed(redis, seen)
    else:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return seen.rider


@router.get("/trips/{trip_id}", response_model=TripOut, responses=_PROBLEMS)
async def read_trip(
    trip_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> TripOut:
    """The trip, for its rider and its driver."""
    trip = await queries.get_for(session=session, trip_id=trip_id, principal=principal)
    return await views.view_for(session=session, trip=trip, principal=principal)


@router.post("/trips/{trip_id}/cancel", response_model=TripOut, responses=_PROBLEMS)
async def cancel_trip(
    trip_id: uuid.UUID,
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    redis: RedisDep,
    now: Now,
    body: Annotated[CancelBody | None, Body()] = None,
) -> TripOut:
    """Calls the trip off (its rider or its driver). A rider who cancels after the agreement's
    free period pays its cancellation fee, all of which goes to the driver; a rider's reason
    `driver_or_car_does_not_match` is free at any time and opens a safety case for a person."""
    trip, withdrawn = await cancellation.cancel(
        session=session,
        trip_id=trip_id,
        principal=principal,
        reason=body.reason if body else None,
        now=now,
        open_safety_case=state_of(request.app, TripsState).open_safety_case,
    )
    seen = await views.views(session=session, trip=trip)
    await push.trip_changed(redis, seen)
    for closed in withdrawn:
        await push.offer_withdrawn(
            redis, driver_id=closed.driver_id, offer_id=closed.offer_id, reason=closed.reason
        )
    return seen.for_party(principal)


@router.post("/offers/{offer_id}/accept", response_model=TripOut, responses=_PROBLEMS)
async def accept_offer(
    offer_id: uuid.UUID,
    request: Request,
    driver: CurrentDriver,
    session: SessionDep,
    redis: RedisDep,
    profile: JurisdictionDep,
    now: Now,
) -> TripOut:
    """The offered driver takes the trip: `200` with the trip (`assigned`). An expired or
    withdrawn offer, or a trip already gone, is `409 offer_expired`."""
    trip = await offers.accept(
        session=session,
        offer_id=offer_id,
        driver_id=driver.id,
        now=now,
        time_zone=profile.time_zone,
    )
    seen = await views.views(session=session, trip=trip)
    await push.trip_changed(redis, seen)
    # The parties' auto-share links, after the assignment is committed and told.
    state = state_of(request.app, TripsState)
    await state.after_assignment(session, trip, now, str(request.base_url))
    return seen.driver


@router.post("/offers/{offer_id}/decline", response_model=OfferOut, responses=_PROBLEMS)
async def decline_offer(
    offer_id: uuid.UUID, driver: CurrentDriver, session: SessionDep, now: Now
) -> OfferOut:
    """The offered driver says no. It carries no penalty of any kind: no acceptance rate is
    kept. The trip goes back to matching and this driver is not offered it again."""
    offer = await offers.decline(session=session, offer_id=offer_id, driver_id=driver.id, now=now)
    return OfferOut(
        id=offer.id,
        trip_id=offer.trip_id,
        status=offer.status.value,
        responded_at=offer.responded_at,
    )


async def _advance(
    move: Move,
    trip_id: uuid.UUID,
    driver_id: uuid.UUID,
    session: SessionDep,
    redis: RedisDep,
    now: datetime,
    pin: str | None = None,
) -> TripOut:
    trip = await moves.advance(
        session=session, trip_id=trip_id, driver_id=driver_id, move=move, now=now, pin=pin
    )
    seen = await views.views(session=session, trip=trip)
    await push.trip_changed(redis, seen)
    return seen.driver


async def _flush_positions(request: Request, trip_id: uuid.UUID) -> None:
    """Positions this worker holds go in before a check reads them (best effort: a failed
    flush keeps them for the next one)."""
    try:
        await state_of(request.app, TripsState).locations.flush()
    except Exception as exc:
        # PostgreSQL away is an outage: the move goes on with what is stored. Anything else is
        # a bug, answered and logged as one.
        dependency = dependency_down(exc)
        if dependency is None:
            raise
        logger.warning("flush before a move of trip %s failed: %s unreachable", trip_id, dependency)


@router.post("/trips/{trip_id}/arrived", response_model=TripOut, responses=_PROBLEMS)
async def arrived(
    trip_id: uuid.UUID,
    request: Request,
    driver: CurrentDriver,
    session: SessionDep,
    redis: RedisDep,
    now: Now,
) -> TripOut:
    """The driver is at the pickup (`assigned` -> `arrived`): only when their last position,
    received in the last minute, is within the agreement's `dispatch.arrival_radius_m` of it
    and was not believed as a new start since the offer, else `409 not_at_pickup`."""
    await _flush_positions(request, trip_id)
    return await _advance(Move.arrive, trip_id, driver.id, session, redis, now)


@router.post("/trips/{trip_id}/start", response_model=TripOut, responses=_PROBLEMS)
async def start(
    trip_id: uuid.UUID,
    driver: CurrentDriver,
    session: SessionDep,
    redis: RedisDep,
    now: Now,
    body: Annotated[StartBody | None, Body()] = None,
) -> TripOut:
    """The rider is aboard (`arrived` -> `in_progress`); the meter runs from now. A trip whose
    rider asked for a PIN (`pin_required`) starts only with it: `409 pin_required` without,
    `409 wrong_pin` for another, `429 pin_attempts_exceeded` from the fifth wrong one until the
    rider confirms their car in the app (`POST /v1/trips/{trip_id}/pin/confirm`)."""
    return await _advance(
        Move.start, trip_id, driver.id, session, redis, now, pin=body.pin if body else None
    )


@router.post("/trips/{trip_id}/complete", response_model=TripOut, responses=_PROBLEMS)
async def complete(
    trip_id: uuid.UUID,
    request: Request,
    driver: CurrentDriver,
    session: SessionDep,
    redis: RedisDep,
    now: Now,
) -> TripOut:
    """The ride is over (`in_progress` -> `completed`), with the metered fare priced by the
    agreement version in force when the trip was requested."""
    # Positions buffered by this worker, and by whichever worker holds the driver's socket, go
    # in before the meter reads the trail (best effort: a failed flush keeps them for the next
    # one, and the trip still completes).
    await _flush_positions(request, trip_id)
    try:
        await pubsub.request_flush(redis, pubsub.driver_channel(driver.id))
    except Exception as exc:
        dependency = dependency_down(exc)
        if dependency is None:
            raise
        logger.warning(
            "no flush of other workers before completing trip %s: %s unreachable",
            trip_id,
            dependency,
        )
    trip = await moves.complete(
        session=session,
        trip_id=trip_id,
        driver_id=driver.id,
        now=now,
        time_scale=request.app.state.settings.meter_time_scale,
    )
    seen = await views.views(session=session, trip=trip)
    await push.trip_changed(redis, seen)
    return seen.driver


# --- the fare review list (docs/pay.md, "Fares a person reviews") ------------------------------


@router.get("/fare-reviews", response_model=list[FareReviewOut])
async def list_fare_reviews(
    request: Request,
    response: Response,
    session: SessionDep,
    _: Admin,
    status_filter: Annotated[Literal["open", "all"] | None, Query(alias="status")] = None,
    limit: paging.LimitQuery = paging.DEFAULT_LIMIT,
    cursor: paging.CursorQuery = None,
) -> list[FareReviewOut]:
    """Completed trips whose fare waits for a person (admin only): it hit the cap over its
    quote, or the meter went far past the quote's route; `?status=open` for those not yet
    reviewed; paged, oldest first."""
    after = (
        None
        if cursor is None
        else paging.decode_cursor(cursor, "fare-reviews", (datetime, uuid.UUID))
    )
    trips = await reviews.list_reviews(
        session=session, open_only=status_filter == "open", limit=limit + 1, after=after
    )
    page, next_cursor = paging.page_of(trips, limit, reviews.review_key, "fare-reviews")
    paging.set_next(request, response, next_cursor)
    return [views.fare_review_of(trip) for trip in page]


@router.post("/fare-reviews/{trip_id}/close", response_model=FareReviewOut)
async def close_fare_review(
    trip_id: uuid.UUID, body: FareReviewClose, session: SessionDep, _: Admin, now: Now
) -> FareReviewOut:
    """Records a person's review of a fare (admin only), taking it off the open list."""
    trip = await reviews.close(session=session, trip_id=trip_id, note=body.note, now=now)
    return views.fare_review_of(trip)


# --- a rider's own trips ---------------------------------------------------------------------


@router.get(
    "/riders/me/trips",
    response_model=list[history.RiderTripItem],
    responses={
        401: {"description": "Missing or invalid token"},
        403: {"description": "Not a rider's token"},
        422: {"description": "A bad `limit`, `state` or `cursor`"},
    },
)
async def list_my_trips(
    request: Request,
    response: Response,
    rider: CurrentRider,
    session: SessionDep,
    profile: JurisdictionDep,
    state: Annotated[
        history.StateFilter | None,
        Query(description="One status, or `open` (not over) or `ended` (over)"),
    ] = None,
    limit: paging.LimitQuery = paging.DEFAULT_LIMIT,
    cursor: paging.CursorQuery = None,
) -> list[history.RiderTripItem]:
    """The caller's own trips, past and current, newest request first; paged. Each names what
    it cost and links its receipt once it has one."""
    items, next_cursor = await history.rider_trips(
        session=session,
        rider_id=rider.id,
        profile=profile,
        registrations=state_of(request.app, TripsState).settings.tax_registrations,
        limit=limit,
        cursor=cursor,
        state=state,
    )
    paging.set_next(request, response, next_cursor)
    return items
