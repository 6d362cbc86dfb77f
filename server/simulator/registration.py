"""A driver's registration for a simulated city, a demo or a load test: a member with a car and
the facts the jurisdiction's qualification register asks for (docs/jurisdiction.md), made up but
valid on `today`, so the simulated drivers are offered trips as qualified members are.

The facts are obviously invented (the `SIM` licence numbers, the `2C0…` identification numbers)
and dated relative to `today`: a certificate issued a while ago, an authorization and a car young
enough to need no inspection for years.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any


def qualification(number: int, today: date) -> dict[str, Any]:
    """Valid qualification facts for simulated driver `number` on `today`."""
    return {
        "licence_number": f"SIM{number:06d}-01",
        "training_certificate_on": (today - timedelta(days=200)).isoformat(),
        "record_check_on": (today - timedelta(days=30)).isoformat(),
        "record_check_clear": True,
        "authorization_expires_on": (today + timedelta(days=3 * 365)).isoformat(),
    }


def vehicle(
    number: int,
    today: date,
    *,
    plate: str,
    owner: str,
    seats: int = 4,
    wheelchair_accessible: bool = False,
) -> dict[str, Any]:
    """A car for simulated driver `number`: two years old with few kilometres, so no mechanical
    inspection is due yet under the Québec profile."""
    return {
        "plate": plate,
        "seats": seats,
        "wheelchair_accessible": wheelchair_accessible,
        "vin": f"2C0{number:014d}",
        "make": "Toyota",
        "model": "Prius",
        "year": today.year - 2,
        "colour": "Gris",
        "owner": owner,
        "odometer_km": 30_000,
    }


def driver_body(
    number: int,
    today: date,
    *,
    name: str,
    member_number: str,
    plate: str,
    seats: int = 4,
    wheelchair_accessible: bool = False,
    **flags: bool,
) -> dict[str, Any]:
    """The body of `POST /v1/drivers` for a qualified simulated member (`flags`: committee,
    reviewer, simulated)."""
    return {
        "name": name,
        "member_number": member_number,
        **flags,
        "vehicle": vehicle(
            number,
            today,
            plate=plate,
            owner=name,
            seats=seats,
            wheelchair_accessible=wheelchair_accessible,
        ),
        "qualification": qualification(number, today),
    }
