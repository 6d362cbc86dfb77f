"""A driver's shift, as the earnings credit counts it (docs/dispatch.md, "Earnings this shift").

A shift starts when a driver comes on duty (available, and heard from) after being off duty or out
of touch for at least `SHIFT_BREAK_S`; a shorter break continues it. Its online time is the time
the driver was available and present: the statements that renew a driver's presence
(`dispatch.locations.ingest`, `dispatch.locations.service.set_availability`) add the time since
the last moment counted (`shift_online_at`) when it is within the grace period, in the same
row update, so two workers flushing the same driver count each stretch once and nothing is lost
when a worker restarts. Time out of touch for longer than the grace period is not online time.
"""

from __future__ import annotations

# A break this long (off duty or out of touch) ends a shift: coming back starts a new one.
SHIFT_BREAK_S: float = 2 * 3600.0
