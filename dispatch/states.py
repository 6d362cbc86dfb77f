"""Trip and offer statuses, which of them are open or terminal, and which command moves a trip
from which status to which (docs/protocol.md, "Trips"). The one place for these rules: the
models, the service and the hand-written SQL of matching and location ingest all take them from
here (the `*_SQL` spellings below), so no query names a status on its own.

Pure: the service turns each transition into one conditional UPDATE
(`... WHERE id = :id AND status IN (:from)`), so two workers can never both make the same move.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from coop.db import sql_list, sql_literal


class TripStatus(enum.StrEnum):
    requested = "requested"
    assigned = "assigned"
    arrived = "arrived"
    in_progress = "in_progress"
    completed = "completed"
    cancelled = "cancelled"
    unfulfilled = "unfulfilled"


class OfferStatus(enum.StrEnum):
    pending = "pending"
    accepted = "accepted"
    declined = "declined"
    expired = "expired"
    withdrawn = "withdrawn"
    # Timed out without ever being written to the driver's socket: not held against anyone.
    undelivered = "undelivered"


class TripTimeout(enum.StrEnum):
    """Why the service itself ended a trip its driver left open (the agreement's terms)."""

    # `arrived` for dispatch.no_show_wait_s and never started: cancelled as the rider's no-show.
    no_show = "no_show"
    # `in_progress` past its quote's duration with the overrun allowed: completed for review.
    ride_overrun = "ride_overrun"


class Move(enum.StrEnum):
    assign = "assign"  # a driver accepted an offer
    arrive = "arrive"
    start = "start"
    complete = "complete"
    cancel = "cancel"
    expire = "expire"  # nobody accepted within the agreement's max_wait_s


@dataclass(frozen=True)
class Transition:
    sources: frozenset[TripStatus]
    target: TripStatus
    stamp: str  # the timestamp column the move sets


S = TripStatus
TRANSITIONS: dict[Move, Transition] = {
    Move.assign: Transition(frozenset({S.requested}), S.assigned, "assigned_at"),
    Move.arrive: Transition(frozenset({S.assigned}), S.arrived, "arrived_at"),
    Move.start: Transition(frozenset({S.arrived}), S.in_progress, "started_at"),
    Move.complete: Transition(frozenset({S.in_progress}), S.completed, "ended_at"),
    # A trip under way ends with `complete`; before that, either party may call it off.
    Move.cancel: Transition(
        frozenset({S.requested, S.assigned, S.arrived}), S.cancelled, "ended_at"
    ),
    Move.expire: Transition(frozenset({S.requested}), S.unfulfilled, "ended_at"),
}

TERMINAL: frozenset[TripStatus] = frozenset({S.completed, S.cancelled, S.unfulfilled})
# A driver holds at most one of these (a partial unique index says so too).
DRIVER_OPEN: frozenset[TripStatus] = frozenset({S.assigned, S.arrived, S.in_progress})
RIDER_OPEN: frozenset[TripStatus] = DRIVER_OPEN | {S.requested}
# A trip in one of these has a driver (a check constraint says so); a cancelled one may or not.
WITH_DRIVER: frozenset[TripStatus] = DRIVER_OPEN | {S.completed}
# The trip waits for a driver: the matcher's queue.
WAITING = S.requested

# An open offer, answerable until it expires.
OFFER_OPEN = OfferStatus.pending
# The driver said no, or let the offer lapse: the trip is not offered to them again.
OFFER_REFUSED: frozenset[OfferStatus] = frozenset({OfferStatus.declined, OfferStatus.expired})

# The same sets as SQL, for the partial indexes and the hand-written queries. A query puts its own
# table alias in front: `t.status IN {DRIVER_OPEN_LIST}`.
DRIVER_OPEN_LIST = sql_list(DRIVER_OPEN)
RIDER_OPEN_LIST = sql_list(RIDER_OPEN)
WITH_DRIVER_LIST = sql_list(WITH_DRIVER)
WAITING_SQL = sql_literal(WAITING)
COMPLETED_SQL = sql_literal(S.completed)
CANCELLED_SQL = sql_literal(S.cancelled)
OFFER_OPEN_SQL = sql_literal(OFFER_OPEN)
OFFER_REFUSED_LIST = sql_list(OFFER_REFUSED)
DRIVER_OPEN_SQL = f"status IN {DRIVER_OPEN_LIST}"
RIDER_OPEN_SQL = f"status IN {RIDER_OPEN_LIST}"


def allowed(move: Move, status: TripStatus) -> bool:
    return status in TRANSITIONS[move].sources


def refusal(move: Move, status: TripStatus) -> str:
    """Why `move` is not allowed from `status`, in words for the problem detail."""
    if status in TERMINAL:
        return f"The trip is already {status.value}; it cannot {move.value}"
    sources = " or ".join(sorted(s.value for s in TRANSITIONS[move].sources))
    return f"A trip can {move.value} only when {sources}; this one is {status.value}"
