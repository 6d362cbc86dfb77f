"""The documented list of rating tags a rider may attach to a rating.

Some tags name causes outside the driver's control. Which of those make a low rating not count
is the agreement's `reputation.excluded_tags`, not this list: the list only says what exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from coop.messages import N_


@dataclass(frozen=True)
class Tag:
    code: str
    description: str
    outside_driver_control: bool


TAGS: tuple[Tag, ...] = (
    Tag("friendly", N_("The driver was friendly and courteous"), False),
    Tag("clean_vehicle", N_("The vehicle was clean"), False),
    Tag("smooth_driving", N_("The ride was smooth and safe"), False),
    Tag("good_route", N_("The driver took a good route"), False),
    Tag("helpful", N_("The driver helped with luggage, mobility aids or directions"), False),
    Tag("late_pickup", N_("The driver was late to the pickup"), False),
    Tag("unsafe_driving", N_("The driving felt unsafe"), False),
    Tag("rude", N_("The driver was rude"), False),
    Tag("unclean_vehicle", N_("The vehicle was not clean"), False),
    Tag("wrong_route", N_("The driver took a poor or wrong route"), False),
    Tag("traffic", N_("Traffic slowed the trip"), True),
    Tag("pricing", N_("The fare was higher than expected"), True),
    Tag("app_problem", N_("The app did not work as it should"), True),
    Tag("weather", N_("Weather made the trip harder"), True),
    Tag("road_closure", N_("A closed road or detour lengthened the trip"), True),
    Tag("pickup_location", N_("The pickup point was hard to reach or badly placed"), True),
)

TAG_CODES: frozenset[str] = frozenset(tag.code for tag in TAGS)
MAX_TAGS_PER_RATING = len(TAGS)
