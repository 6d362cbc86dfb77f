"""Errors of pay, each with its stable problem `type`."""

from __future__ import annotations

from coop.errors import Conflict, NotFound, UnprocessableEntity


class PeriodNotFound(NotFound):
    type = "pay_period_not_found"
    title = "No such pay period"


class NotAPeriodStart(UnprocessableEntity):
    type = "not_a_period_start"
    title = "Not the first day of a pay period"


class NoReceipt(Conflict):
    type = "no_receipt"
    title = "This trip has no receipt"
