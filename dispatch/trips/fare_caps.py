"""A cap the Minister declares on fares during a disruption (T-11.2 s. 94; docs/jurisdiction.md):
in a territory and for a period, no fare may exceed a rate times a multiplier (at most the
jurisdiction's, 3 in Québec). An operator records the decision, with its reference; quotes,
their maximums and fares honour it from then on.

The cap of a trip is the declared rate for its distance and duration, times the multiplier, to
the cent. A quote's maximum is the lower of the agreement's cap and this one, for the route it
guessed; a fare is held under both on the metered distance and time, and never above the maximum
the rider consented to.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, status
from geoalchemy2 import Geography, WKBElement
from geoalchemy2.shape import from_shape
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from shapely.geometry import shape
from sqlalchemy import DateTime, Numeric, String, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from coop import audit
from coop.auth import Admin
from coop.clock import Now
from coop.db import Base
from coop.dependencies import JurisdictionDep, SessionDep
from coop.errors import Conflict, UnprocessableEntity
from coop.money import refuse_float, round_cents
from coop.text import FreeText
from dispatch.locations.geometry import geography_point


class FareCap(Base):
    __tablename__ = "trip_fare_cap"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    territory: Mapped[WKBElement] = mapped_column(
        Geography("GEOMETRY", srid=4326, spatial_index=False)
    )
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    base: Mapped[Decimal] = mapped_column(Numeric(9, 2))
    per_km: Mapped[Decimal] = mapped_column(Numeric(9, 4))
    per_minute: Mapped[Decimal] = mapped_column(Numeric(9, 4))
    multiplier: Mapped[Decimal] = mapped_column(Numeric(4, 2))
    reference: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


Amount = Annotated[Decimal, BeforeValidator(refuse_float), Field(ge=0, le=1000, decimal_places=4)]


class FareCapIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    territory: dict[str, Any] = Field(description="a GeoJSON Polygon or MultiPolygon")
    starts_at: datetime
    ends_at: datetime
    base: Amount
    per_km: Amount
    per_minute: Amount
    multiplier: Annotated[Decimal, BeforeValidator(refuse_float), Field(gt=0, decimal_places=2)]
    reference: Annotated[str, FreeText(max_chars=200, multiline=False)] = Field(
        description="the Minister's decision, as published"
    )

    @model_validator(mode="after")
    def _sane(self) -> FareCapIn:
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError("give the period's times with their offset")
        if self.ends_at <= self.starts_at:
            raise ValueError("the period ends after it starts")
        try:
            geometry = shape(self.territory)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError("territory is not a GeoJSON geometry") from exc
        if geometry.geom_type not in {"Polygon", "MultiPolygon"} or not geometry.is_valid:
            raise ValueError("territory is a valid GeoJSON Polygon or MultiPolygon")
        return self


class FareCapOut(BaseModel):
    id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    base: str
    per_km: str
    per_minute: str
    multiplier: str
    reference: str
    territory: dict[str, Any]


class CapTooHigh(UnprocessableEntity):
    type = "fare_cap_multiplier_too_high"
    title = "The multiplier is above what the law allows"


class NoCapInThisJurisdiction(Conflict):
    type = "no_fare_cap_in_this_jurisdiction"
    title = "The jurisdiction's law declares no such cap"


class CapOverlaps(Conflict):
    type = "fare_cap_overlaps"
    title = "Another declared cap covers part of this territory in part of this period"


def ceiling(cap: FareCap, *, distance_m: int, duration_s: int) -> Decimal:
    """The most a trip of this distance and duration may cost under `cap`."""
    rate = (
        cap.base
        + cap.per_km * Decimal(distance_m) / 1000
        + cap.per_minute * (Decimal(duration_s) / 60)
    )
    return round_cents(rate * cap.multiplier)


async def active_at(
    *, session: AsyncSession, lat: float, lon: float, at: datetime
) -> FareCap | None:
    """The declared cap covering this place at this time (the lowest-multiplied, should two)."""
    found: FareCap | None = await session.scalar(
        select(FareCap)
        .where(
            FareCap.starts_at <= at,
            FareCap.ends_at > at,
            func.ST_Covers(FareCap.territory, geography_point(lat, lon)),
        )
        .order_by(FareCap.multiplier, FareCap.id)
        .limit(1)
    )
    return found


def _out(cap: FareCap, geometry: dict[str, Any]) -> FareCapOut:
    return FareCapOut(
        id=cap.id,
        starts_at=cap.starts_at,
        ends_at=cap.ends_at,
        base=f"{cap.base:f}",
        per_km=f"{cap.per_km:f}",
        per_minute=f"{cap.per_minute:f}",
        multiplier=f"{cap.multiplier:f}",
        reference=cap.reference,
        territory=geometry,
    )


router = APIRouter(prefix="/v1/fare-caps", tags=["trips"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=FareCapOut)
async def record_cap(
    body: FareCapIn, session: SessionDep, profile: JurisdictionDep, now: Now, _: Admin
) -> FareCapOut:
    """Records a cap the Minister declared (admin only), audited; quotes and fares honour it."""
    if profile.fare_cap is None:
        raise NoCapInThisJurisdiction(f"The {profile.key!r} profile declares no fare cap")
    if body.multiplier > profile.fare_cap.max_multiplier:
        raise CapTooHigh(
            f"The multiplier is at most {profile.fare_cap.max_multiplier} "
            f"({profile.fare_cap.clause})"
        )
    territory = from_shape(shape(body.territory), srid=4326)
    overlapping = await session.scalar(
        select(FareCap.id).where(
            and_(FareCap.starts_at < body.ends_at, FareCap.ends_at > body.starts_at),
            func.ST_Intersects(FareCap.territory, func.ST_GeogFromWKB(territory)),
        )
    )
    if overlapping is not None:
        raise CapOverlaps(f"The cap {overlapping} covers part of this territory and period")
    cap = FareCap(
        id=uuid.uuid4(),
        territory=territory,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        base=body.base,
        per_km=body.per_km,
        per_minute=body.per_minute,
        multiplier=body.multiplier,
        reference=body.reference,
        recorded_at=now,
    )
    session.add(cap)
    await session.flush()
    await audit.append(
        session=session,
        kind="fare_cap_recorded",
        subject=f"fare_cap:{cap.id}",
        content={
            "fare_cap_id": str(cap.id),
            "multiplier": f"{cap.multiplier:f}",
            "starts_at": cap.starts_at.isoformat(),
            "ends_at": cap.ends_at.isoformat(),
            "reference": cap.reference,
        },
        at=now,
    )
    await session.commit()
    return _out(cap, body.territory)


@router.get("", response_model=list[FareCapOut])
async def list_caps(session: SessionDep, now: Now) -> list[FareCapOut]:
    """The declared caps in force or to come (anyone: they are the Minister's published
    decisions), soonest first."""
    return await in_force_or_to_come(session=session, now=now)


async def in_force_or_to_come(*, session: AsyncSession, now: datetime) -> list[FareCapOut]:
    """The declared caps that have not ended, soonest first (the API's list, and the page's)."""
    rows = await session.execute(
        select(FareCap, func.ST_AsGeoJSON(FareCap.territory))
        .where(FareCap.ends_at > now)
        .order_by(FareCap.starts_at, FareCap.id)
    )
    return [_out(cap, json.loads(geometry)) for cap, geometry in rows]
