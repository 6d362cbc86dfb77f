"""The law where the co-op runs, as data: one validated, versioned profile per jurisdiction.

The per-trip dues, the sales taxes, which qualifications a driver and a car need and how long each
stays valid, the registers and reports the regulator asks for, and the cap on cars in service are
the law's figures, not the members': the collective agreement (`bargaining`) never sets or
overrides them, and the members' vote never touches them. Each figure names the clause it comes
from; docs/jurisdiction.md explains them clause by clause.

A profile is a YAML file in `coop/data/jurisdictions/`, chosen by `COOP_JURISDICTION` (default
`quebec`). A second jurisdiction is a second file, not code: `none.yaml` has no dues, no taxes,
no register and no reports. Unknown fields are refused everywhere, amounts are decimal strings
(a binary float cannot hold "0.90" exactly), and a profile that loads has passed every check.
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from coop.money import refuse_float

PROFILES_DIR = Path(__file__).resolve().parent / "data" / "jurisdictions"
DEFAULT_JURISDICTION = "quebec"
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


# An amount charged as it is: whole cents, never negative.
Amount = Annotated[
    Decimal,
    BeforeValidator(refuse_float),
    Field(ge=0, max_digits=9, decimal_places=2, allow_inf_nan=False),
]
# A tax rate in percent: "9.975".
TaxPercent = Annotated[
    Decimal,
    BeforeValidator(refuse_float),
    Field(ge=0, le=100, max_digits=6, decimal_places=3, allow_inf_nan=False),
]
Clause = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        description="the clause the figure comes from (`none` where no law asks for it)",
    ),
]
Key = Annotated[str, Field(pattern=_KEY.pattern)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Named(_Strict):
    """A name people read, in both of the service's languages."""

    fr: str = Field(min_length=1, max_length=200)
    en: str = Field(min_length=1, max_length=200)

    def in_language(self, language: str) -> str:
        return self.fr if language.startswith("fr") else self.en


class Consent(_Strict):
    quote_required: bool = Field(
        description="a trip is requested only with the rider's consent to a quote's maximum price"
    )
    clause: Clause


class FareCap(_Strict):
    max_multiplier: Annotated[
        Decimal, BeforeValidator(refuse_float), Field(gt=0, le=10, decimal_places=2)
    ] = Field(description="the most a declared cap may multiply the base rate by")
    clause: Clause


class Dues(_Strict):
    amount: Amount = Field(description="charged on every trip, apart from the fare")
    name: Named
    taxable: bool = Field(description="the sales taxes apply to the fare and the dues together")
    clause: Clause


class Tax(_Strict):
    code: Key
    name: Named
    percent: TaxPercent
    registration_required: bool = Field(
        description="the co-op's number for it (`COOP_TAX_REGISTRATIONS`) is printed on receipts"
    )
    clause: Clause


class ApplicabilityRule(_Strict):
    """When an item is required of a car: any one condition suffices."""

    vehicle_age_years_at_least: int | None = Field(default=None, ge=0, le=100)
    odometer_km_at_least: int | None = Field(default=None, ge=0, le=10_000_000)

    @model_validator(mode="after")
    def _some_condition(self) -> ApplicabilityRule:
        if self.vehicle_age_years_at_least is None and self.odometer_km_at_least is None:
            raise ValueError("a `when` names at least one condition")
        return self


# The facts the qualification register records (drivers/qualifications.py), by item: whose they
# are, and whether the item is a dated certificate whose validity a profile may limit. A profile
# chooses which of them its law requires; a new kind of fact is code, its requirement is data.
QualificationKey = Literal[
    "licence_number",
    "training_certificate",
    "record_check",
    "authorization",
    "vehicle_identity",
    "mechanical_inspection",
]
FACT_SUBJECT: dict[str, Literal["driver", "vehicle"]] = {
    "licence_number": "driver",
    "training_certificate": "driver",
    "record_check": "driver",
    "authorization": "driver",
    "vehicle_identity": "vehicle",
    "mechanical_inspection": "vehicle",
}
DATED_FACTS = frozenset({"training_certificate", "record_check"})


class Qualification(_Strict):
    """One item of the qualification register that the law requires, recorded by an operator."""

    key: QualificationKey
    name: Named
    valid_days: int | None = Field(
        default=None, ge=1, le=36500, description="how long a dated certificate stays valid"
    )
    when: ApplicabilityRule | None = Field(
        default=None, description="required only of cars that meet this rule"
    )
    clause: Clause

    @property
    def subject(self) -> Literal["driver", "vehicle"]:
        return FACT_SUBJECT[self.key]

    @model_validator(mode="after")
    def _fits_the_fact(self) -> Qualification:
        if self.valid_days is not None and self.key not in DATED_FACTS:
            raise ValueError(
                f"`valid_days` applies to a dated certificate "
                f"({', '.join(sorted(DATED_FACTS))}), not to {self.key}"
            )
        if self.when is not None and self.subject != "vehicle":
            raise ValueError("`when` applies to a car's items only")
        return self


class ReportColumn(_Strict):
    key: Key
    header: str = Field(min_length=1, max_length=120, description="as the regulator names it")


class Report(_Strict):
    key: Key
    period: Literal["month", "quarter", "year"]
    formats: list[Literal["csv", "json"]] = Field(min_length=1)
    columns: list[ReportColumn] = Field(min_length=1, max_length=60)
    clause: Clause

    @field_validator("columns")
    @classmethod
    def _columns_unique(cls, columns: list[ReportColumn]) -> list[ReportColumn]:
        _unique([column.key for column in columns], "column")
        return columns


class Profile(_Strict):
    """Everything the law of one jurisdiction asks of the service, with its clauses."""

    key: Key
    version: int = Field(ge=1, description="raised whenever a figure changes")
    name: Named
    law: Named
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    time_zone: str = Field(description="an IANA zone: the law's days and nights are counted in it")
    consent: Consent
    fare_cap: FareCap | None
    dues: Dues | None
    taxes: list[Tax] = Field(max_length=5)
    qualifications: list[Qualification] = Field(max_length=40)
    expiry_warnings_days: list[int] = Field(
        max_length=5, description="days before an item expires that the driver is told"
    )
    max_cars_in_service: int | None = Field(
        ge=1, description="the authorization's cap on cars available or on a trip at once"
    )
    trip_record_retention_years: int = Field(
        ge=0, le=50, description="no trip is deleted or anonymised sooner"
    )
    reports: list[Report] = Field(max_length=20)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {zone!r}") from exc
        return zone

    @field_validator("expiry_warnings_days")
    @classmethod
    def _warnings(cls, days: list[int]) -> list[int]:
        if any(day < 1 or day > 365 for day in days):
            raise ValueError("each warning is 1 to 365 days before the expiry")
        if days != sorted(set(days), reverse=True):
            raise ValueError("warnings are distinct and listed from the earliest (most days)")
        return days

    @model_validator(mode="after")
    def _keys_unique(self) -> Profile:
        _unique([tax.code for tax in self.taxes], "tax")
        _unique([item.key for item in self.qualifications], "qualification")
        _unique([report.key for report in self.reports], "report")
        return self

    def qualifications_of(self, subject: Literal["driver", "vehicle"]) -> list[Qualification]:
        return [item for item in self.qualifications if item.subject == subject]

    def report(self, key: str) -> Report | None:
        return next((report for report in self.reports if report.key == key), None)


def _unique(keys: list[str], what: str) -> None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise ValueError(f"the {what} {key!r} is listed twice")
        seen.add(key)


class UnknownJurisdiction(ValueError):
    """`COOP_JURISDICTION` names no profile that ships with the service."""


def available() -> list[str]:
    """The jurisdictions that ship with the service, by key."""
    return sorted(path.stem for path in PROFILES_DIR.glob("*.yaml"))


def load_file(path: Path) -> Profile:
    """A profile from a YAML file, validated (pydantic's ValidationError names the field)."""
    with path.open(encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    profile = Profile.model_validate(document)
    if profile.key != path.stem:
        raise ValueError(f"{path.name} holds the profile {profile.key!r}: the names must agree")
    return profile


def registration_problem(
    profile: Profile, registrations: dict[str, str], *, required: bool
) -> str | None:
    """What is wrong with the co-op's tax registration numbers for `profile`, or None.

    A number for a tax the profile does not levy is a typo; a missing number is refused only
    where `required` (production), so a development set-up needs none."""
    codes = {tax.code for tax in profile.taxes}
    unknown = sorted(set(registrations) - codes)
    if unknown:
        return f"{', '.join(unknown)}: not a tax of the {profile.key!r} profile"
    if any(not number.strip() for number in registrations.values()):
        return "a registration number is empty"
    missing = [
        tax.code
        for tax in profile.taxes
        if tax.registration_required and tax.code not in registrations
    ]
    if required and missing:
        return f"no registration number for {', '.join(missing)}"
    return None


@functools.cache
def load(key: str = DEFAULT_JURISDICTION) -> Profile:
    """The profile named `key` (`COOP_JURISDICTION`); it never changes while the service runs."""
    if not _KEY.fullmatch(key) or key not in available():
        raise UnknownJurisdiction(
            f"no jurisdiction profile {key!r}; the service ships: {', '.join(available())}"
        )
    return load_file(PROFILES_DIR / f"{key}.yaml")
