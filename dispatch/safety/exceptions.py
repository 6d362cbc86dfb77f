"""The safety domain's errors, each with its stable problem `type`."""

from __future__ import annotations

from coop.errors import Conflict, NotFound, UnprocessableEntity


class AlertNotFound(NotFound):
    type = "alert_not_found"
    title = "No such safety alert or case"


class AlertAlreadyAcknowledged(Conflict):
    type = "alert_already_acknowledged"
    title = "Another person acknowledged this alert already"


class AlertResolved(Conflict):
    type = "alert_resolved"
    title = "This alert or case is resolved already"


class AlertNotYours(NotFound):
    # 404, not 403: a stranger guessing alert ids learns nothing of which exist.
    type = "alert_not_found"
    title = "No such safety alert or case"


class BadPosition(UnprocessableEntity):
    type = "bad_position"
    title = "A position needs a latitude and a longitude in range"
