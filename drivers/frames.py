"""The frame that tells a driver, when their socket opens, that the law's qualification of them
or their car is missing an item or that one lapses soon (docs/jurisdiction.md)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from coop.frames import Frame
from drivers.qualifications import Standing


class DueItem(BaseModel):
    key: str
    name_fr: str
    name_en: str
    valid_through: date | None = Field(description="the last valid day; null: missing")
    days_left: int | None = Field(description="days until it lapses (0: today is the last)")
    urgent: bool = Field(description="within the jurisdiction's last warning (7 days in Québec)")


class QualificationFrame(Frame):
    """Sent to a driver as their socket opens while an item is missing or lapses within the
    jurisdiction's first warning (30 days in Québec): what to provide, and by when."""

    model_config = ConfigDict(title="Qualification")

    type: Literal["qualification"]
    eligible: bool = Field(description="offered trips: every required item is valid")
    missing: list[DueItem]
    expiring: list[DueItem]


def qualification_frame(standing: Standing, warnings_days: list[int]) -> QualificationFrame | None:
    """The frame for `standing`, or None when there is nothing to tell."""
    if standing.eligible and not standing.expiring:
        return None
    last_warning = min(warnings_days, default=0)

    def due(state_valid_through: date | None, key: str, fr: str, en: str) -> DueItem:
        days = None if state_valid_through is None else (state_valid_through - standing.today).days
        return DueItem(
            key=key,
            name_fr=fr,
            name_en=en,
            valid_through=state_valid_through,
            days_left=days,
            urgent=days is None or days <= last_warning,
        )

    return QualificationFrame(
        type="qualification",
        eligible=standing.eligible,
        missing=[due(None, s.item.key, s.item.name.fr, s.item.name.en) for s in standing.missing],
        expiring=[
            due(s.valid_through, s.item.key, s.item.name.fr, s.item.name.en)
            for s in standing.expiring
        ],
    )
