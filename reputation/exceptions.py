"""The reputation domain's problem types (rendered as RFC 9457 problem details)."""

from __future__ import annotations

from coop.errors import Conflict, Forbidden, NotFound


class TripNotCompleted(Conflict):
    # Reputation never reads the trips table: it knows a trip only once dispatch reports it
    # completed, so an unknown trip id and a trip still under way answer alike.
    type = "trip_not_completed"
    title = "No completed trip on record"


class NotYourTrip(Forbidden):
    type = "not_your_trip"
    title = "Only the trip's rider may rate it"


class AlreadyRated(Conflict):
    type = "already_rated"
    title = "This trip has been rated"


class RatingWindowClosed(Conflict):
    type = "rating_window_closed"
    title = "The time to rate this trip is over"


class RatingNotFound(NotFound):
    type = "rating_not_found"
    title = "No such rating"


class NotYourRating(Forbidden):
    type = "not_your_rating"
    title = "Only the rated driver may appeal a rating"


class AlreadyAppealed(Conflict):
    type = "already_appealed"
    title = "This rating has been appealed"


class AppealWindowClosed(Conflict):
    type = "appeal_window_closed"
    title = "The time to appeal this rating is over"


class AppealNotFound(NotFound):
    type = "appeal_not_found"
    title = "No such appeal"


class OwnAppeal(Forbidden):
    type = "own_appeal"
    title = "A reviewer may not decide their own appeal"


class AppealAlreadyDecided(Conflict):
    type = "appeal_already_decided"
    title = "This appeal has been decided"


class SupportCaseNotFound(NotFound):
    type = "support_case_not_found"
    title = "No such support case"


class SupportCaseClosed(Conflict):
    type = "support_case_closed"
    title = "This support case is closed"
