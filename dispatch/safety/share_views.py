"""What a shared-trip link shows, and the frame that tells its maker it was opened.

`SharedTripView` is an allow-list: every field is named here and filled by its constructor from
named columns, so nothing else of the trip, the driver or the rider (account ids, the rider's
name, the fare, the addresses once the trip is over) can reach a page someone opened from a
text message. `SharedRow` is the one query's row both the HTTP answer and the live stream build
it from.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining.fares import RouteDuration, estimate_route
from coop.frames import Frame
from coop.geo import Position
from dispatch.locations.geometry import lat_lon
from dispatch.locations.models import DriverPosition
from dispatch.safety.share import expires_after
from dispatch.safety.share_models import TripShare
from dispatch.states import TERMINAL, TripStatus
from dispatch.trips.models import Trip
from drivers.models import Driver, DriverPhoto, DriverVehicle, PhotoStatus


class SharedDriverOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first_name: str
    # The driver's photo once a person approved it (docs/safety.md); null until then.
    photo_url: str | None


class SharedVehicleOut(BaseModel):
    """The car as its register has it now."""

    model_config = ConfigDict(extra="forbid")

    make: str | None
    model: str | None
    colour: str | None
    plate: str


class SharedPositionOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: float
    lon: float
    reported_at: datetime | None


class SharedTripView(BaseModel):
    """A shared trip as anyone holding its link sees it (docs/protocol.md, "Share my trip")."""

    model_config = ConfigDict(extra="forbid")

    status: str = Field(description="the trip's status (requested, assigned, ... completed)")
    over: bool
    driver: SharedDriverOut | None
    vehicle: SharedVehicleOut | None
    position: SharedPositionOut | None = Field(description="the car, while the trip is open")
    heading_to: Literal["pickup", "destination"] | None
    target: Position | None = Field(description="where the car is heading, while open")
    eta_s: int | None
    ended_at: datetime | None
    expires_at: datetime | None

    @classmethod
    def of(cls, row: SharedRow, duration: RouteDuration | None) -> SharedTripView:
        over = row.status in TERMINAL
        assigned = row.first_name is not None and row.status not in {TripStatus.requested}
        heading_to: Literal["pickup", "destination"] | None = None
        target: Position | None = None
        if not over and row.status is not TripStatus.requested:
            heading_to = "pickup" if row.status is TripStatus.assigned else "destination"
            target = row.pickup if heading_to == "pickup" else row.dropoff
        position = None
        if not over and assigned and row.lat is not None and row.lon is not None:
            position = SharedPositionOut(lat=row.lat, lon=row.lon, reported_at=row.reported_at)
        eta_s = None
        if position is not None and target is not None:
            _, eta_s = estimate_route(
                pickup_lat=position.lat,
                pickup_lon=position.lon,
                dropoff_lat=target.lat,
                dropoff_lon=target.lon,
                duration=duration,
            )
        return cls(
            status=row.status.value,
            over=over,
            driver=(
                SharedDriverOut(first_name=row.first_name, photo_url=row.photo_url)
                if assigned and row.first_name is not None
                else None
            ),
            vehicle=(
                SharedVehicleOut(make=row.make, model=row.model, colour=row.colour, plate=row.plate)
                if assigned and row.plate is not None
                else None
            ),
            position=position,
            heading_to=heading_to,
            target=target,
            eta_s=eta_s,
            ended_at=row.ended_at,
            expires_at=row.expires_at,
        )


class ShareCreatedOut(BaseModel):
    """A new link: `token` and `url` are shown this once (the service keeps only a hash)."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    token: str
    url: str
    expires_at: datetime | None = Field(
        description="30 minutes after the trip ends; null while the trip is open"
    )


class ShareOpenedFrame(Frame):
    """The sharer's link was opened for the first time (sent once per link)."""

    model_config = ConfigDict(title="ShareOpened")

    type: Literal["share_opened"]
    trip_id: uuid.UUID
    share_id: uuid.UUID
    opened_at: datetime


class TripSharedFrame(Frame):
    """A link a party's auto-share policy (the rider's, or the driver's for their own safety)
    made at assignment, for their app to send to their contacts (the service sends nothing
    itself). `token` and `url` are shown this once."""

    model_config = ConfigDict(title="TripShared")

    type: Literal["trip_shared"]
    trip_id: uuid.UUID
    share_id: uuid.UUID
    token: str
    url: str
    expires_at: datetime | None
    automatic: bool


def first_name_of(name: str) -> str:
    """The first word of a member's name: what a stranger following the trip needs to greet the
    right driver, and no more."""
    return name.split()[0] if name.split() else name


@dataclass(frozen=True)
class SharedRow:
    """The columns a shared trip is built from, and nothing else."""

    share_id: uuid.UUID
    trip_id: uuid.UUID
    live: bool
    status: TripStatus
    pickup: Position
    dropoff: Position
    ended_at: datetime | None
    expires_at: datetime | None
    first_name: str | None
    make: str | None
    model: str | None
    colour: str | None
    plate: str | None
    lat: float | None
    lon: float | None
    reported_at: datetime | None
    # The digest of the driver's photo, if a person approved it (drivers.photos).
    photo_sha256: str | None = None

    @property
    def photo_url(self) -> str | None:
        """The photo through this link (`GET /v1/shared/{share_id}/photo`): it opens only while
        the link lives, and the digest in it changes when the photo does."""
        if self.photo_sha256 is None:
            return None
        return f"/v1/shared/{self.share_id}/photo?v={self.photo_sha256[:16]}"

    def trip_key(self) -> tuple[object, ...]:
        """What the view is made of, without the link: links of one trip share a view (but for
        the photo's address, which names the link)."""
        return (
            self.photo_url,
            self.trip_id,
            self.live,
            self.status,
            self.lat,
            self.lon,
            self.reported_at,
            self.first_name,
            self.make,
            self.model,
            self.colour,
            self.plate,
            self.ended_at,
        )


async def rows(
    *, session: AsyncSession, share_ids: list[uuid.UUID], now: datetime
) -> dict[uuid.UUID, SharedRow]:
    """The shared trips of `share_ids` in one query of plain columns (the live stream reads
    every watched link of this worker at once, each second)."""
    if not share_ids:
        return {}
    lat, lon = lat_lon(DriverPosition.position)
    pickup_lat, pickup_lon = lat_lon(Trip.pickup)
    dropoff_lat, dropoff_lon = lat_lon(Trip.dropoff)
    result = await session.execute(
        select(
            TripShare.id,
            TripShare.revoked_at,
            Trip.id,
            Trip.status,
            Trip.ended_at,
            pickup_lat,
            pickup_lon,
            dropoff_lat,
            dropoff_lon,
            Driver.name,
            DriverVehicle.make,
            DriverVehicle.model,
            DriverVehicle.colour,
            DriverVehicle.plate,
            lat,
            lon,
            DriverPosition.reported_at,
            DriverPhoto.sha256,
        )
        .join(Trip, Trip.id == TripShare.trip_id)
        .outerjoin(Driver, Driver.id == Trip.driver_id)
        .outerjoin(DriverVehicle, DriverVehicle.driver_id == Trip.driver_id)
        .outerjoin(DriverPosition, DriverPosition.driver_id == Trip.driver_id)
        .outerjoin(
            DriverPhoto,
            (DriverPhoto.driver_id == Trip.driver_id)
            & (DriverPhoto.status == PhotoStatus.approved),
        )
        .where(TripShare.id.in_(share_ids))
    )
    found: dict[uuid.UUID, SharedRow] = {}
    for (
        share_id,
        revoked_at,
        trip_id,
        status,
        ended_at,
        p_lat,
        p_lon,
        d_lat,
        d_lon,
        name,
        make,
        model,
        colour,
        plate,
        c_lat,
        c_lon,
        reported_at,
        photo_sha256,
    ) in result:
        until = expires_after(status, ended_at)
        found[share_id] = SharedRow(
            share_id=share_id,
            trip_id=trip_id,
            live=revoked_at is None and (until is None or now < until),
            status=status,
            pickup=Position(lat=p_lat, lon=p_lon),
            dropoff=Position(lat=d_lat, lon=d_lon),
            ended_at=ended_at,
            expires_at=until,
            first_name=first_name_of(name) if name is not None else None,
            make=make,
            model=model,
            colour=colour,
            plate=plate,
            lat=c_lat,
            lon=c_lon,
            reported_at=reported_at,
            photo_sha256=photo_sha256,
        )
    return found
