"""The documented list of rating tags a rider may attach to a rating.

Some tags name causes outside the driver's control. Which of those make a low rating not count
is the agreement's `reputation.excluded_tags`, not this list: the list only says what exists.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tag:
    code: str
    description: str
    outside_driver_control: bool


TAGS: tuple[Tag, ...] = (
    Tag("friendly", "The driver was friendly and courteous", False),
    Tag("clean_vehicle", "The vehicle was clean", False),
    Tag("smooth_driving", "The ride was smooth and safe", False),
    Tag("good_route", "The driver took a good route", False),
    Tag("helpful", "The driver helped with luggage, mobility aids or directions", False),
    Tag("late_pickup", "The driver was late to the pickup", False),
    Tag("unsafe_driving", "The driving felt unsafe", False),
    Tag("rude", "The driver was rude", False),
    Tag("unclean_vehicle", "The vehicle was not clean", False),
    Tag("wrong_route", "The driver took a poor or wrong route", False),
    Tag("traffic", "Traffic slowed the trip", True),
    Tag("pricing", "The fare was higher than expected", True),
    Tag("app_problem", "The app did not work as it should", True),
    Tag("weather", "Weather made the trip harder", True),
    Tag("road_closure", "A closed road or detour lengthened the trip", True),
    Tag("pickup_location", "The pickup point was hard to reach or badly placed", True),
)

TAG_CODES: frozenset[str] = frozenset(tag.code for tag in TAGS)
MAX_TAGS_PER_RATING = len(TAGS)
