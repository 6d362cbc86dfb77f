"""The curb: where a simulated rider tells the driver who came for them their PIN (docs/safety.md,
"The PIN at pickup"). In the city it is spoken; here the two agents share one process, so the
rider leaves the PIN its app showed under the trip's id, and the driver reads it when asking."""

from __future__ import annotations


class Curb:
    """PINs riders said aloud, by trip id; each is heard once and then forgotten."""

    def __init__(self) -> None:
        self._said: dict[str, str] = {}

    def tell(self, trip_id: str, pin: str) -> None:
        self._said[trip_id] = pin

    def ask(self, trip_id: str) -> str | None:
        """The PIN the trip's rider said, if they have yet (None: ask again in a moment)."""
        return self._said.get(trip_id)

    def forget(self, trip_id: str) -> None:
        self._said.pop(trip_id, None)
