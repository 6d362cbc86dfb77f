"""The qualification register: whether the law lets a driver and their car carry riders today.

What the law requires, and how long a certificate stays valid, is the jurisdiction profile's
(`coop/jurisdiction.py`); what a driver and a car have is recorded here as facts by an operator who
saw the documents (no scan is kept). A driver is offered trips only while every required item is
valid (`qualified`, for the candidate search): that is the law's condition for driving, not a
judgement of the driver, so it never changes `driver.status` and no rating ever reaches it. A
suspension stays a person's recorded decision (`drivers/status.py`).

Each item is one named SQL rule (`item_rules`): whether it is recorded, and the last day it is
valid. The candidate search, the standing a driver and an operator read, and the operators' list
of renewals all use those same expressions, so they cannot disagree.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    and_,
    case,
    literal,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from coop import audit
from coop.errors import NotFound
from coop.jurisdiction import Profile, Qualification
from drivers.models import Driver, DriverQualification, DriverRegisterEntry, DriverVehicle

AUDIT_KIND = "driver_qualification_recorded"
VEHICLE_AUDIT_KIND = "driver_vehicle_recorded"

# The facts of `driver_qualification` a renewal replaces, and those of `driver_vehicle`.
QUALIFICATION_FACTS = (
    "licence_number",
    "training_certificate_on",
    "record_check_on",
    "record_check_clear",
    "authorization_expires_on",
)
VEHICLE_FACTS = (
    "plate",
    "seats",
    "wheelchair_accessible",
    "vin",
    "make",
    "model",
    "year",
    "colour",
    "owner",
    "odometer_km",
    "inspection_due_on",
)


def today_in(profile: Profile, now: datetime) -> date:
    """The law's day: the date in the jurisdiction's time zone."""
    return now.astimezone(ZoneInfo(profile.time_zone)).date()


@dataclass(frozen=True)
class ItemRule:
    """One required item as SQL over `driver_vehicle` and `driver_qualification` (outer-joined):
    whether it is recorded, and the last day it is valid (None: an item that never lapses; the
    expression may be NULL for a row where it does not lapse)."""

    item: Qualification
    present: ColumnElement[bool]
    ends: ColumnElement[Any] | None

    @property
    def valid_through(self) -> ColumnElement[Any]:
        return null() if self.ends is None else self.ends

    def valid_on(self, today: date) -> ColumnElement[bool]:
        if self.ends is None:
            return self.present
        return and_(self.present, or_(self.ends.is_(None), self.ends >= literal(today)))


_POSTGRESQL = postgresql.asyncpg.dialect()  # type: ignore[no-untyped-call]
QUALIFICATION = DriverQualification.__table__
VEHICLE = DriverVehicle.__table__


def _applies(item: Qualification, today: date, v: Any) -> ColumnElement[bool]:
    """Whether a car must have `item`: any condition of its `when` (a car of unknown age meets
    the age condition, on the safe side)."""
    if item.when is None:
        return true()
    conditions: list[ColumnElement[bool]] = []
    if item.when.vehicle_age_years_at_least is not None:
        oldest_year = today.year - item.when.vehicle_age_years_at_least
        conditions += [v.c.year.is_(None), v.c.year <= oldest_year]
    if item.when.odometer_km_at_least is not None:
        conditions.append(v.c.odometer_km >= item.when.odometer_km_at_least)
    return or_(*conditions)


def _certificate_end(issued_on: Any, item: Qualification) -> ColumnElement[Any] | None:
    """The last valid day of a dated certificate: issued on day 0, valid `valid_days` days."""
    if item.valid_days is None:
        return None
    end: ColumnElement[Any] = issued_on + (item.valid_days - 1)
    return end


def _rule(item: Qualification, today: date, q: Any, v: Any) -> ItemRule:
    if item.key == "licence_number":
        return ItemRule(item, q.c.licence_number.is_not(None), None)
    if item.key == "training_certificate":
        on = q.c.training_certificate_on
        return ItemRule(item, on.is_not(None), _certificate_end(on, item))
    if item.key == "record_check":
        on = q.c.record_check_on
        clear = and_(on.is_not(None), q.c.record_check_clear.is_(True))
        return ItemRule(item, clear, _certificate_end(on, item))
    if item.key == "authorization":
        expires = q.c.authorization_expires_on
        return ItemRule(item, expires.is_not(None), expires)
    if item.key == "vehicle_identity":
        recorded = (v.c.vin, v.c.make, v.c.model, v.c.year, v.c.owner)
        return ItemRule(item, and_(*(column.is_not(None) for column in recorded)), None)
    # mechanical_inspection: due by a date, for the cars the profile's rule names; a car it
    # does not name has no inspection to lapse.
    applies = _applies(item, today, v)
    return ItemRule(
        item,
        or_(~applies, v.c.inspection_due_on.is_not(None)),
        case((applies, v.c.inspection_due_on), else_=null()),
    )


def item_rules(
    profile: Profile, today: date, *, q: FromClause = QUALIFICATION, v: FromClause = VEHICLE
) -> list[ItemRule]:
    """The rule of every item the profile requires, in the profile's order, over the tables
    `q` (driver_qualification) and `v` (driver_vehicle), or aliases of them."""
    return [_rule(item, today, q, v) for item in profile.qualifications]


def qualified(
    profile: Profile, today: date, *, q: FromClause = QUALIFICATION, v: FromClause = VEHICLE
) -> ColumnElement[bool]:
    """Whether a driver and their car meet every requirement today. Reads `driver_vehicle` and
    `driver_qualification`: a query using it joins them as `with_register` does."""
    rules = item_rules(profile, today, q=q, v=v)
    return and_(*(rule.valid_on(today) for rule in rules)) if rules else true()


def qualified_sql(profile: Profile, today: date, *, qualification: str, vehicle: str) -> str:
    """`qualified` as SQL text over the aliases a hand-written statement gives the two tables
    (the candidate search: `dq` and `v`), with today's date as a literal."""
    condition = qualified(
        profile, today, q=QUALIFICATION.alias(qualification), v=VEHICLE.alias(vehicle)
    )
    compiled = condition.compile(dialect=_POSTGRESQL, compile_kwargs={"literal_binds": True})
    return f"({compiled})"


def with_register(query: Select[Any]) -> Select[Any]:
    """`query` (selecting from `driver`) joined to what `qualified` and the item rules read."""
    return query.join(DriverVehicle, DriverVehicle.driver_id == Driver.id).outerjoin(
        DriverQualification, DriverQualification.driver_id == Driver.id
    )


@dataclass(frozen=True)
class ItemState:
    item: Qualification
    valid: bool
    valid_through: date | None


@dataclass(frozen=True)
class Standing:
    """A driver's and their car's qualification on `today`."""

    driver_id: uuid.UUID
    today: date
    items: list[ItemState]
    warning_days: int

    @property
    def eligible(self) -> bool:
        return all(state.valid for state in self.items)

    @property
    def missing(self) -> list[ItemState]:
        return [state for state in self.items if not state.valid]

    @property
    def expiring(self) -> list[ItemState]:
        """Valid items whose last valid day falls within the profile's earliest warning."""
        horizon = self.today + timedelta(days=self.warning_days)
        return [
            state
            for state in self.items
            if state.valid and state.valid_through is not None and state.valid_through <= horizon
        ]


async def standing(
    *, session: AsyncSession, profile: Profile, driver_id: uuid.UUID, now: datetime
) -> Standing:
    """Each required item of one driver, valid or not, with its last valid day."""
    today = today_in(profile, now)
    rules = item_rules(profile, today)
    columns: list[ColumnElement[Any]] = [Driver.id.expression]
    for rule in rules:
        columns += [rule.valid_on(today), rule.valid_through]
    row = (
        await session.execute(with_register(select(*columns)).where(Driver.id == driver_id))
    ).one_or_none()
    if row is None:
        raise NotFound(f"No driver {driver_id}")
    items = [
        ItemState(rule.item, valid=bool(row[1 + 2 * index]), valid_through=row[2 + 2 * index])
        for index, rule in enumerate(rules)
    ]
    warning_days = max(profile.expiry_warnings_days, default=0)
    return Standing(driver_id=driver_id, today=today, items=items, warning_days=warning_days)


@dataclass(frozen=True)
class Renewal:
    """A valid item that lapses soon: who, what, and its last valid day."""

    driver_id: uuid.UUID
    driver_name: str
    item: Qualification
    valid_through: date


async def renewals_due(
    *, session: AsyncSession, profile: Profile, now: datetime, within_days: int
) -> list[Renewal]:
    """Every valid item that lapses within `within_days`, soonest first: the operators' list of
    renewals to chase before a driver stops being offered trips."""
    today = today_in(profile, now)
    horizon = today + timedelta(days=within_days)
    found: list[Renewal] = []
    for rule in item_rules(profile, today):
        rows = await session.execute(
            with_register(select(Driver.id, Driver.name, rule.valid_through)).where(
                rule.valid_on(today), rule.valid_through <= literal(horizon)
            )
        )
        found += [Renewal(driver_id, name, rule.item, through) for driver_id, name, through in rows]
    return sorted(found, key=lambda due: (due.valid_through, due.item.key, str(due.driver_id)))


def _recorded(facts: dict[str, Any], names: Sequence[str]) -> list[str]:
    return sorted(name for name in names if facts.get(name) is not None)


async def _entry(
    session: AsyncSession,
    driver_id: uuid.UUID,
    kind: str,
    facts: dict[str, Any],
    names: Sequence[str],
    now: datetime,
    *,
    audited: bool,
) -> None:
    """Keeps the recording in the register's history, and (a renewal) enters it in the audit
    log by the entry's id: the public log says which facts were recorded, never whose, nor
    their values. What a registration records is not audited, as the registration is not."""
    entry = DriverRegisterEntry(
        id=uuid.uuid4(),
        driver_id=driver_id,
        kind=kind,
        facts={name: _json(facts.get(name)) for name in names},
        recorded_at=now,
    )
    session.add(entry)
    await session.flush()
    if not audited:
        return
    await audit.append(
        session=session,
        kind=AUDIT_KIND if kind == "qualification" else VEHICLE_AUDIT_KIND,
        subject=f"driver_register_entry:{entry.id}",
        content={"entry_id": str(entry.id), "facts": _recorded(facts, names)},
    )


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


async def record_qualification(
    *,
    session: AsyncSession,
    driver_id: uuid.UUID,
    facts: dict[str, Any],
    now: datetime,
    audited: bool = True,
) -> None:
    """Replaces a driver's recorded qualification with `facts` (a renewal: what is not given is
    no longer recorded), with its audit entry, in the caller's transaction."""
    # Locks the driver's row: two operators recording at once are taken one after the other.
    locked = await session.scalar(select(Driver.id).where(Driver.id == driver_id).with_for_update())
    if locked is None:
        raise NotFound(f"No driver {driver_id}")
    record = await session.get(DriverQualification, driver_id)
    if record is None:
        record = DriverQualification(driver_id=driver_id)
        session.add(record)
    for name in QUALIFICATION_FACTS:
        setattr(record, name, facts.get(name))
    record.recorded_at = now
    await _entry(
        session, driver_id, "qualification", facts, QUALIFICATION_FACTS, now, audited=audited
    )


async def record_vehicle(
    *,
    session: AsyncSession,
    driver_id: uuid.UUID,
    facts: dict[str, Any],
    now: datetime,
    audited: bool = True,
) -> DriverVehicle:
    """Replaces the facts of a driver's car (a new car, or a renewed inspection), audited."""
    vehicle = await session.scalar(
        select(DriverVehicle).where(DriverVehicle.driver_id == driver_id).with_for_update()
    )
    if vehicle is None:
        raise NotFound(f"No driver {driver_id}")
    for name in VEHICLE_FACTS:
        setattr(vehicle, name, facts.get(name))
    await _entry(session, driver_id, "vehicle", facts, VEHICLE_FACTS, now, audited=audited)
    return vehicle
