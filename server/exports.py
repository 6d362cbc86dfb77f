"""Composition: each package's records of a person, installed as sections of the exports.

Reputation assembles `GET /v1/drivers/me/export` and `GET /v1/riders/me/export` but imports no
other domain; the app factory calls `install` so trips, positions and ballots are in them too.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import export as bargaining_export
from dispatch.locations import export as locations_export
from dispatch.safety import share_export
from dispatch.safety.share_models import Sharer
from dispatch.trips import export as trips_export
from drivers import export as drivers_export
from drivers import photos as drivers_photos
from drivers import safety as drivers_safety
from pay import export as pay_export
from reputation.decision_reviews import DecisionReview
from reputation.export import register_section
from riders import safety as riders_safety


async def _decision_reviews(session: AsyncSession, subject_id: uuid.UUID) -> Any:
    rows = await session.scalars(
        select(DecisionReview)
        .where(DecisionReview.requester_id == subject_id)
        .order_by(DecisionReview.requested_at, DecisionReview.id)
    )
    return [
        {
            "id": review.id,
            "decision": review.decision,
            "trip_id": review.trip_id,
            "offer_id": review.offer_id,
            "statement": review.statement,
            "requested_at": review.requested_at,
            "due_at": review.due_at,
            "outcome": review.outcome,
            "answer": review.answer,
            "answered_at": review.answered_at,
        }
        for review in rows
    ]


async def _qualification(session: AsyncSession, subject_id: uuid.UUID) -> Any:
    return await drivers_export.qualification(session=session, driver_id=subject_id)


async def _trips_driven(session: AsyncSession, subject_id: uuid.UUID) -> Any:
    return await trips_export.trips_driven(session=session, driver_id=subject_id)


async def _offers_received(session: AsyncSession, subject_id: uuid.UUID) -> Any:
    return await trips_export.offers_received(session=session, driver_id=subject_id)


async def _positions(session: AsyncSession, subject_id: uuid.UUID) -> Any:
    return await locations_export.positions(session=session, driver_id=subject_id)


async def _proposals_made(session: AsyncSession, subject_id: uuid.UUID) -> Any:
    return await bargaining_export.proposals_made(session=session, driver_id=subject_id)


async def _pay_statements(session: AsyncSession, subject_id: uuid.UUID) -> Any:
    return await pay_export.pay_statements(session=session, driver_id=subject_id)


async def _patronage(session: AsyncSession, subject_id: uuid.UUID) -> Any:
    return await bargaining_export.patronage(session=session, driver_id=subject_id)


async def _trips_requested(session: AsyncSession, subject_id: uuid.UUID) -> Any:
    return await trips_export.trips_requested(session=session, rider_id=subject_id)


async def _idempotency_keys(session: AsyncSession, subject_id: uuid.UUID) -> Any:
    return await trips_export.idempotency_keys(session=session, rider_id=subject_id)


async def _rider_trip_shares(session: AsyncSession, subject_id: uuid.UUID) -> Any:
    return await share_export.trip_shares(session=session, subject_id=subject_id, as_=Sharer.rider)


async def _driver_trip_shares(session: AsyncSession, subject_id: uuid.UUID) -> Any:
    return await share_export.trip_shares(session=session, subject_id=subject_id, as_=Sharer.driver)


async def _safety_preferences(session: AsyncSession, subject_id: uuid.UUID) -> Any:
    preferences = await riders_safety.load_safety_preferences(session, subject_id)
    return preferences.out().model_dump(mode="json")


async def _driver_sharing(session: AsyncSession, subject_id: uuid.UUID) -> Any:
    preferences = await drivers_safety.load_sharing(session, subject_id)
    return preferences.out().model_dump(mode="json")


async def _photo(session: AsyncSession, subject_id: uuid.UUID) -> Any:
    return await drivers_photos.export(session=session, driver_id=subject_id)


def install(app: FastAPI) -> None:
    """Registers the sections of the drivers' and riders' exports that other packages keep."""
    register_section(app, audience="driver", name="qualification", section=_qualification)
    for audience in ("driver", "rider"):
        register_section(app, audience=audience, name="decision_reviews", section=_decision_reviews)
    register_section(app, audience="driver", name="trips_driven", section=_trips_driven)
    register_section(app, audience="driver", name="offers_received", section=_offers_received)
    register_section(app, audience="driver", name="positions", section=_positions)
    master: bytes = app.state.ballot_master_key

    async def _ballots(session: AsyncSession, subject_id: uuid.UUID) -> Any:
        return await bargaining_export.ballots(session=session, master=master, driver_id=subject_id)

    register_section(app, audience="driver", name="ballots", section=_ballots)
    register_section(app, audience="driver", name="proposals_made", section=_proposals_made)
    register_section(app, audience="driver", name="pay_statements", section=_pay_statements)
    register_section(app, audience="driver", name="patronage", section=_patronage)
    register_section(app, audience="rider", name="trips_requested", section=_trips_requested)
    register_section(app, audience="rider", name="idempotency_keys", section=_idempotency_keys)
    register_section(app, audience="rider", name="trip_shares", section=_rider_trip_shares)
    register_section(app, audience="driver", name="trip_shares", section=_driver_trip_shares)
    register_section(app, audience="rider", name="safety", section=_safety_preferences)
    register_section(app, audience="driver", name="photo", section=_photo)
    register_section(app, audience="driver", name="safety", section=_driver_sharing)
