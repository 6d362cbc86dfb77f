"""The regulator's registers and reports (docs/jurisdiction.md): the trip register of a month, and
the quarter's requests for adapted (wheelchair-accessible) cars, in the columns and formats the
jurisdiction profile names.

A report is reproducible: the same month gives the same bytes (rows in a fixed order, no time of
production inside), and its first line carries the profile and agreement versions it was made
under and the sha256 of the rows, so a copy handed to the regulator can be checked later. The
driver's licence number and the car's facts are those recorded as of the trip's start (the
register's history, `drivers.models.DriverRegisterEntry`), not today's.
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import io
import json
import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, Response
from shapely import Point, prepare
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import service as bargaining_service
from bargaining.terms import money_str
from coop import audit
from coop.auth import Admin
from coop.clock import Now
from coop.dependencies import JurisdictionDep, SessionDep
from coop.errors import Conflict, NotFound, UnprocessableEntity
from coop.jurisdiction import Profile, Report
from coop.levies import charges
from coop.state import CoreState, state_of
from dispatch.locations.geometry import lat_lon
from dispatch.states import TripStatus
from dispatch.trips.models import Trip
from drivers.models import DriverRegisterEntry

Format = Literal["csv", "json"]
ReportKey = Literal[
    "trips_monthly", "adapted_requests_quarterly", "trips_by_municipality_yearly", "dues_monthly"
]


class NoSuchReport(NotFound):
    type = "no_such_report"
    title = "The jurisdiction asks for no such report"


class BadPeriod(UnprocessableEntity):
    type = "bad_period"
    title = "Not a period of this report"


@dataclass(frozen=True)
class Produced:
    """A report's bytes and what its header line says."""

    report: str
    period: str
    media_type: str
    body: bytes
    sha256: str
    rows: int


def month_bounds(month: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The first instant of `month` (YYYY-MM) and of the next, in the jurisdiction's zone."""
    try:
        first = date.fromisoformat(f"{month}-01")
    except ValueError as exc:
        raise BadPeriod(f"{month!r} is not a month written YYYY-MM") from exc
    if len(month) != 7:
        raise BadPeriod(f"{month!r} is not a month written YYYY-MM")
    after = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return (
        datetime.combine(first, time(), zone),
        datetime.combine(after, time(), zone),
    )


def quarter_bounds(quarter: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The bounds of `quarter` (YYYY-Qn) in the jurisdiction's zone."""
    try:
        year_text, number_text = quarter.split("-Q")
        year, number = int(year_text), int(number_text)
    except ValueError as exc:
        raise BadPeriod(f"{quarter!r} is not a quarter written YYYY-Qn") from exc
    if not 1 <= number <= 4 or not 1900 <= year <= 9999:
        raise BadPeriod(f"{quarter!r} is not a quarter written YYYY-Qn")
    first = date(year, 3 * number - 2, 1)
    after = date(year + number // 4, (3 * number) % 12 + 1, 1)
    return datetime.combine(first, time(), zone), datetime.combine(after, time(), zone)


class NoMunicipalities(Conflict):
    type = "no_municipalities"
    title = "The co-op has not supplied its municipalities"


OUTSIDE = "hors des municipalités fournies"


class Municipalities:
    """The municipalities the co-op supplies (`COOP_MUNICIPALITIES`: a GeoJSON FeatureCollection
    whose features carry `properties.name`), for the annual report by origin and destination."""

    def __init__(self, named: list[tuple[str, BaseGeometry]]) -> None:
        if not named:
            raise ValueError("no municipality in the file")
        for _, geometry in named:
            prepare(geometry)
        self.named = named

    @classmethod
    def from_file(cls, path: Path) -> Municipalities:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        named = [
            (str(feature["properties"]["name"]), shape(feature["geometry"]))
            for feature in document.get("features", [])
        ]
        return cls(named)

    def name_of(self, lat: float, lon: float) -> str:
        point = Point(lon, lat)
        return next((name for name, shape_ in self.named if shape_.covers(point)), OUTSIDE)


def year_bounds(year: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    if len(year) != 4 or not year.isdigit():
        raise BadPeriod(f"{year!r} is not a year written YYYY")
    first = date(int(year), 1, 1)
    return (
        datetime.combine(first, time(), zone),
        datetime.combine(date(first.year + 1, 1, 1), time(), zone),
    )


async def municipality_rows(
    *, session: AsyncSession, profile: Profile, year: str, municipalities: Municipalities
) -> list[dict[str, str]]:
    """The year's completed trips counted by month, origin and destination municipality."""
    zone = ZoneInfo(profile.time_zone)
    start, end = year_bounds(year, zone)
    rows = await session.execute(
        select(Trip.ended_at, *lat_lon(Trip.pickup), *lat_lon(Trip.dropoff)).where(
            Trip.status == TripStatus.completed, Trip.ended_at >= start, Trip.ended_at < end
        )
    )
    counts: Counter[tuple[str, str, str]] = Counter()
    for ended_at, pickup_lat, pickup_lon, dropoff_lat, dropoff_lon in rows:
        assert ended_at is not None  # a completed trip has ended
        month = f"{ended_at.astimezone(zone):%Y-%m}"
        origin = municipalities.name_of(pickup_lat, pickup_lon)
        destination = municipalities.name_of(dropoff_lat, dropoff_lon)
        counts[(month, origin, destination)] += 1
    return [
        {"month": month, "origin": origin, "destination": destination, "trips": str(n)}
        for (month, origin, destination), n in sorted(counts.items())
    ]


def _place(lat: float, lon: float) -> str:
    return f"{lat:.5f},{lon:.5f}"


def _local(moment: datetime | None, zone: ZoneInfo) -> str:
    return "" if moment is None else moment.astimezone(zone).isoformat(timespec="seconds")


class _History:
    """The register's entries of the month's drivers, read at once, answering what held for a
    driver at a moment (the latest entry of that kind recorded by then)."""

    def __init__(self, entries: list[DriverRegisterEntry]) -> None:
        self._by_key: dict[tuple[Any, str], list[DriverRegisterEntry]] = {}
        for entry in entries:  # oldest first, as read
            self._by_key.setdefault((entry.driver_id, entry.kind), []).append(entry)

    def facts_at(self, driver_id: Any, kind: str, moment: datetime) -> dict[str, Any]:
        entries = self._by_key.get((driver_id, kind), [])
        index = bisect.bisect_right([entry.recorded_at for entry in entries], moment)
        return {} if index == 0 else dict(entries[index - 1].facts)


async def trip_rows(*, session: AsyncSession, profile: Profile, month: str) -> list[dict[str, str]]:
    """The trip register of `month`: every trip that ended completed in it, oldest first."""
    zone = ZoneInfo(profile.time_zone)
    start, end = month_bounds(month, zone)
    rows = await session.execute(
        select(Trip, *lat_lon(Trip.pickup), *lat_lon(Trip.dropoff))
        .where(Trip.status == TripStatus.completed, Trip.ended_at >= start, Trip.ended_at < end)
        .order_by(Trip.ended_at, Trip.id)
    )
    trips = rows.all()
    drivers = {trip.driver_id for trip, *_ in trips}
    history = _History(
        list(
            await session.scalars(
                select(DriverRegisterEntry)
                .where(
                    DriverRegisterEntry.driver_id.in_(drivers),
                    DriverRegisterEntry.recorded_at < end,
                )
                .order_by(DriverRegisterEntry.recorded_at, DriverRegisterEntry.id)
            )
        )
        if drivers
        else []
    )
    register: list[dict[str, str]] = []
    for trip, pickup_lat, pickup_lon, dropoff_lat, dropoff_lon in trips:
        moment = trip.started_at or trip.assigned_at or trip.requested_at
        driver = history.facts_at(trip.driver_id, "qualification", moment)
        car = history.facts_at(trip.driver_id, "vehicle", moment)
        fare = trip.fare_total or Decimal("0.00")
        register.append(
            {
                "requested_at": _local(trip.requested_at, zone),
                # Every trip is an exclusive one (no shared rides); a wheelchair request, adapted.
                "mode": "adapté" if trip.wheelchair_accessible else "exclusif",
                "licence_number": str(driver.get("licence_number") or ""),
                "started_at": _local(trip.started_at, zone),
                "start_place": _place(pickup_lat, pickup_lon),
                "ended_at": _local(trip.ended_at, zone),
                "end_place": _place(dropoff_lat, dropoff_lon),
                "amount_billed": money_str(charges(profile, fare).total),
                "amount_paid_driver": money_str(trip.driver_earnings or Decimal("0.00")),
                "plate": str(car.get("plate") or ""),
                "vin": str(car.get("vin") or ""),
                "owner": str(car.get("owner") or ""),
                "make": str(car.get("make") or ""),
                "model": str(car.get("model") or ""),
                "year": "" if car.get("year") is None else str(car["year"]),
            }
        )
    return register


async def dues_rows(*, session: AsyncSession, profile: Profile, month: str) -> list[dict[str, str]]:
    """The per-trip dues collected in `month`: one for every trip that ended completed in it."""
    zone = ZoneInfo(profile.time_zone)
    start, end = month_bounds(month, zone)
    trips = int(
        await session.scalar(
            select(func.count())
            .select_from(Trip)
            .where(Trip.status == TripStatus.completed, Trip.ended_at >= start, Trip.ended_at < end)
        )
        or 0
    )
    per_trip = profile.dues.amount if profile.dues is not None else Decimal("0.00")
    return [
        {
            "month": month,
            "trips": str(trips),
            "dues_per_trip": money_str(per_trip),
            "dues_total": money_str(per_trip * trips),
        }
    ]


async def adapted_rows(
    *, session: AsyncSession, profile: Profile, quarter: str
) -> list[dict[str, str]]:
    """The quarter's requests for adapted cars: requested, served, unserved, median wait."""
    zone = ZoneInfo(profile.time_zone)
    start, end = quarter_bounds(quarter, zone)
    trips = (
        await session.execute(
            select(Trip.requested_at, Trip.assigned_at).where(
                Trip.wheelchair_accessible.is_(True),
                Trip.requested_at >= start,
                Trip.requested_at < end,
            )
        )
    ).all()
    waits = [
        (assigned - requested).total_seconds()
        for requested, assigned in trips
        if assigned is not None
    ]
    return [
        {
            "requested": str(len(trips)),
            "served": str(len(waits)),
            "unserved": str(len(trips) - len(waits)),
            "median_wait_s": "" if not waits else str(round(statistics.median(waits))),
        }
    ]


def render(
    *,
    spec: Report,
    period: str,
    rows: list[dict[str, str]],
    profile: Profile,
    agreement_version: int,
    output: Format,
) -> Produced:
    """The report's bytes in `output`, its header line first, the columns as the profile names
    them."""
    if output not in spec.formats:
        raise BadPeriod(f"the report {spec.key} is made as {', '.join(spec.formats)}")
    keys = [column.key for column in spec.columns]
    body_rows = [[row.get(key, "") for key in keys] for row in rows]
    digest = hashlib.sha256(
        json.dumps(body_rows, ensure_ascii=False, separators=(",", ":")).encode()
    ).hexdigest()
    header = {
        "report": spec.key,
        "period": period,
        "jurisdiction": profile.key,
        "jurisdiction_version": profile.version,
        "agreement_version": agreement_version,
        "rows": len(rows),
        "sha256": digest,
    }
    if output == "json":
        document = {
            "header": header,
            "columns": [{"key": c.key, "header": c.header} for c in spec.columns],
            "rows": [dict(zip(keys, values, strict=True)) for values in body_rows],
        }
        body = (json.dumps(document, ensure_ascii=False, indent=1) + "\n").encode()
        media_type = "application/json"
    else:
        text = io.StringIO()
        text.write("# " + " ".join(f"{key}={value}" for key, value in header.items()) + "\n")
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow([column.header for column in spec.columns])
        writer.writerows(body_rows)
        body = text.getvalue().encode()
        media_type = "text/csv; charset=utf-8"
    return Produced(spec.key, period, media_type, body, digest, len(rows))


def spec_of(profile: Profile, key: str) -> Report:
    spec = profile.report(key)
    if spec is None:
        raise NoSuchReport(f"The {profile.key!r} jurisdiction asks for no report {key!r}")
    return spec


async def produce(
    *,
    session: AsyncSession,
    profile: Profile,
    report: ReportKey,
    period: str,
    output: Format,
    now: datetime,
    municipalities: Path | None = None,
) -> Produced:
    """Makes one of the regulator's reports and records its production in the audit log (the
    report, the period and the sha256: anyone can later check a copy against it)."""
    spec = spec_of(profile, report)
    if report == "trips_monthly":
        rows = await trip_rows(session=session, profile=profile, month=period)
    elif report == "dues_monthly":
        rows = await dues_rows(session=session, profile=profile, month=period)
    elif report == "adapted_requests_quarterly":
        rows = await adapted_rows(session=session, profile=profile, quarter=period)
    else:
        if municipalities is None:
            raise NoMunicipalities(
                "Set COOP_MUNICIPALITIES to the co-op's GeoJSON of the municipalities it serves"
            )
        rows = await municipality_rows(
            session=session,
            profile=profile,
            year=period,
            municipalities=Municipalities.from_file(municipalities),
        )
    agreement = await bargaining_service.in_force(session=session, at=now)
    produced = render(
        spec=spec,
        period=period,
        rows=rows,
        profile=profile,
        agreement_version=agreement.version,
        output=output,
    )
    await audit.append(
        session=session,
        kind="regulator_report",
        subject=f"regulator_report:{report}:{period}",
        content={
            "report": report,
            "period": period,
            "format": output,
            "rows": produced.rows,
            "sha256": produced.sha256,
        },
        at=now,
    )
    await session.commit()
    return produced


router = APIRouter(prefix="/v1/reports/regulator", tags=["reports"])


async def _answer(
    *,
    session: AsyncSession,
    profile: Profile,
    report: ReportKey,
    period: str,
    output: Format,
    now: datetime,
    municipalities: Path | None = None,
) -> Response:
    """The report `produce` makes, as the route's answer, its sha256 in a header."""
    produced = await produce(
        session=session,
        profile=profile,
        report=report,
        period=period,
        output=output,
        now=now,
        municipalities=municipalities,
    )
    return Response(
        content=produced.body,
        media_type=produced.media_type,
        headers={"X-Report-SHA256": produced.sha256},
    )


@router.get("/trips", response_class=Response)
async def trips_report(
    session: SessionDep,
    profile: JurisdictionDep,
    now: Now,
    _: Admin,
    month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")],
    format: Annotated[Format, Query()] = "csv",
) -> Response:
    """The trip register of a month as the regulator's columns (admin only): every trip that
    ended completed in it, in the jurisdiction's time zone."""
    return await _answer(
        session=session,
        profile=profile,
        report="trips_monthly",
        period=month,
        output=format,
        now=now,
    )


@router.get("/dues", response_class=Response)
async def dues_report(
    session: SessionDep,
    profile: JurisdictionDep,
    now: Now,
    _: Admin,
    month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")],
    format: Annotated[Format, Query()] = "csv",
) -> Response:
    """The per-trip dues collected in a month, to remit (admin only)."""
    return await _answer(
        session=session,
        profile=profile,
        report="dues_monthly",
        period=month,
        output=format,
        now=now,
    )


@router.get("/adapted-requests", response_class=Response)
async def adapted_report(
    session: SessionDep,
    profile: JurisdictionDep,
    now: Now,
    _: Admin,
    quarter: Annotated[str, Query(pattern=r"^\d{4}-Q[1-4]$", description="YYYY-Qn")],
    format: Annotated[Format, Query()] = "csv",
) -> Response:
    """The quarter's requests for adapted cars (admin only): requested, served, unserved, and
    the median wait for a driver."""
    return await _answer(
        session=session,
        profile=profile,
        report="adapted_requests_quarterly",
        period=quarter,
        output=format,
        now=now,
    )


@router.get("/municipalities", response_class=Response)
async def municipalities_report(
    request: Request,
    session: SessionDep,
    profile: JurisdictionDep,
    now: Now,
    _: Admin,
    year: Annotated[str, Query(pattern=r"^\d{4}$", description="YYYY")],
    format: Annotated[Format, Query()] = "csv",
) -> Response:
    """The year's completed trips by month, origin and destination municipality (admin only),
    from the municipalities the co-op supplies (`COOP_MUNICIPALITIES`)."""
    return await _answer(
        session=session,
        profile=profile,
        report="trips_by_municipality_yearly",
        period=year,
        output=format,
        now=now,
        municipalities=state_of(request.app, CoreState).settings.municipalities,
    )
