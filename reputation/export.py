"""Everything kept about the caller, as JSON: GET /v1/drivers/me/export and /v1/riders/me/export.

Reputation assembles the accounts and its own records. Other packages add their records (trips,
positions, ballots, ...) as named sections (`ReputationState.export_sections`), installed by the
composition root with `register_section`, so reputation never imports them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from coop.auth import AuthToken
from coop.state import state_of
from drivers import service as drivers_service
from drivers.models import Driver
from reputation import service
from reputation.models import Appeal
from reputation.policy import PolicySource
from reputation.state import Audience, ExportSection, ReputationState
from reputation.views import appeal_out, rating_for_driver, rating_for_rider
from riders.models import Rider

BUILT_IN = {
    "driver": (
        "account",
        "access_tokens",
        "status_changes",
        "ratings_received",
        "reputation",
        "appeals_filed",
        "appeals_decided_as_reviewer",
        "support_cases",
    ),
    "rider": ("account", "access_tokens", "completed_trips_on_record", "ratings_given"),
}


def register_section(
    app: FastAPI, *, audience: Audience, name: str, section: ExportSection
) -> None:
    """Adds a named section to one audience's export (a package's own records of the caller)."""
    if name in BUILT_IN[audience]:
        raise ValueError(f"export section {name!r} is built in")
    state = state_of(app, ReputationState)
    sections: dict[Audience, dict[str, ExportSection]] = getattr(state, "export_sections", {})
    state.export_sections = sections
    sections.setdefault(audience, {})[name] = section


def _registered(app: FastAPI, audience: Audience) -> dict[str, ExportSection]:
    sections: dict[Audience, dict[str, ExportSection]] = getattr(
        state_of(app, ReputationState), "export_sections", {}
    )
    return dict(sections.get(audience, {}))


async def _tokens(session: AsyncSession, subject_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(AuthToken).where(AuthToken.subject_id == subject_id).order_by(AuthToken.created_at)
    )
    # The token itself is never kept; its hash is not the caller's to need.
    return [
        {
            "role": row.role.value,
            "created_at": row.created_at,
            "expires_at": row.expires_at,
            "revoked_at": row.revoked_at,
        }
        for row in rows
    ]


async def driver_export(
    *,
    app: FastAPI,
    session: AsyncSession,
    policy_source: PolicySource,
    driver: Driver,
    key: bytes,
    now: datetime,
) -> dict[str, Any]:
    """Everything kept about one driver (ratings still held back from them are not theirs to
    read yet: docs/reputation.md)."""
    result, ratings = await service.visible_standing(
        session=session, policy_source=policy_source, driver_id=driver.id, at=now
    )
    appeals = await service.list_appeals(session=session, driver_id=driver.id, status=None, now=now)
    decided = await session.scalars(
        select(Appeal).where(Appeal.decided_by == driver.id).order_by(Appeal.decided_at)
    )
    document: dict[str, Any] = {
        "exported_at": now,
        "account": {
            "id": driver.id,
            "name": driver.name,
            "member_number": driver.member_number,
            "status": driver.status.value,
            "committee": driver.committee,
            "reviewer": driver.reviewer,
            "simulated": driver.simulated,
            "created_at": driver.created_at,
            "vehicle": {
                "plate": driver.vehicle.plate,
                "seats": driver.vehicle.seats,
                "wheelchair_accessible": driver.vehicle.wheelchair_accessible,
                "make": driver.vehicle.make,
                "model": driver.vehicle.model,
                "colour": driver.vehicle.colour,
            },
        },
        "access_tokens": await _tokens(session, driver.id),
        "status_changes": [
            {
                "id": change.id,
                "from_status": change.from_status.value,
                "to_status": change.to_status.value,
                "reason": change.reason,
                "changed_at": change.changed_at,
            }
            for change in await drivers_service.list_changes(session=session, driver_id=driver.id)
        ],
        "ratings_received": [
            rating_for_driver(rating, reason=result.reasons[rating.id], key=key, now=now)
            for rating in ratings
        ],
        "reputation": {
            "score": f"{result.score:.2f}" if result.score is not None else None,
            "ratings_counted": result.counted,
            "agreement_version": result.policy.agreement_version,
        },
        "appeals_filed": [appeal_out(appeal, key=key, now=now) for appeal in appeals],
        "appeals_decided_as_reviewer": [
            {
                "appeal_id": appeal.id,
                "outcome": appeal.outcome,
                "reason": appeal.reason,
                "decided_at": appeal.decided_at,
            }
            for appeal in decided
        ],
        "support_cases": [
            {
                "id": case.id,
                "opened_at": case.opened_at,
                "score": f"{case.score:.2f}",
                "support_threshold": f"{case.support_threshold:.2f}",
                "recovered_at": case.recovered_at,
                "closed_at": case.closed_at,
                "note": case.note,
            }
            for case in await service.support_cases_of(session=session, driver_id=driver.id)
        ],
    }
    for name, section in _registered(app, "driver").items():
        document[name] = await section(session, driver.id)
    encoded: dict[str, Any] = jsonable_encoder(document)
    return encoded


async def rider_export(
    *, app: FastAPI, session: AsyncSession, rider: Rider, now: datetime
) -> dict[str, Any]:
    """Everything kept about one rider."""
    document: dict[str, Any] = {
        "exported_at": now,
        "account": {
            "id": rider.id,
            "name": rider.name,
            "first_name_shared_with_drivers": rider.shared_first_name,
            "created_at": rider.created_at,
        },
        "access_tokens": await _tokens(session, rider.id),
        "completed_trips_on_record": [
            {
                "trip_id": trip.trip_id,
                "driver_id": trip.driver_id,
                "completed_at": trip.completed_at,
            }
            for trip in await service.rateable_trips_of_rider(session=session, rider_id=rider.id)
        ],
        "ratings_given": [
            rating_for_rider(rating)
            for rating in await service.ratings_by_rider(session=session, rider_id=rider.id)
        ],
    }
    for name, section in _registered(app, "rider").items():
        document[name] = await section(session, rider.id)
    encoded: dict[str, Any] = jsonable_encoder(document)
    return encoded
