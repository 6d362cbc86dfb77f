"""Trip states (docs/protocol.md): which command moves a trip from which status to which.

Pure: the service turns each transition into one conditional UPDATE
(`... WHERE id = :id AND status IN (:from)`), so two workers can never both make the same move.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from dispatch.trips.models import TripStatus


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


def allowed(move: Move, status: TripStatus) -> bool:
    return status in TRANSITIONS[move].sources


def refusal(move: Move, status: TripStatus) -> str:
    """Why `move` is not allowed from `status`, in words for the problem detail."""
    if status in TERMINAL:
        return f"The trip is already {status.value}; it cannot {move.value}"
    sources = " or ".join(sorted(s.value for s in TRANSITIONS[move].sources))
    return f"A trip can {move.value} only when {sources}; this one is {status.value}"
