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


def shift_accounting(*, on_duty: str) -> str:
    """The `SET` assignments of the shift columns for an `INSERT ... ON CONFLICT (driver_id) DO
    UPDATE` of `location_driver_position AS p` that renews the driver's presence at
    `EXCLUDED.last_seen_at`, with the grace period and `SHIFT_BREAK_S` bound as `:grace_s` and
    `:shift_break_s` (seconds).

    `on_duty` is the SQL condition under which the driver is on duty as of this renewal (a sign
    of life keeps the duty the row had, `p.available`; an availability change sets it,
    `EXCLUDED.available`): on duty after a break of at least `SHIFT_BREAK_S` since the last
    moment counted starts a new shift. Time since that moment counts as online time when the
    driver was available until now and it is within the grace period."""
    # Written once, for both statements that renew presence (`service.set_availability`, the
    # ingest's flush): two copies of this rule would count a driver's time two ways.
    new_shift = f"""{on_duty} AND (p.shift_online_at IS NULL OR p.shift_online_at
                 < EXCLUDED.last_seen_at - make_interval(secs => CAST(:shift_break_s AS float8)))"""
    counted = "p.available" if on_duty == "p.available" else f"p.available OR {on_duty}"
    return f"""
            shift_started_at = CASE
                WHEN {new_shift}
                THEN EXCLUDED.last_seen_at ELSE p.shift_started_at END,
            shift_online_s = CASE
                WHEN {new_shift}
                THEN 0
                WHEN p.available AND EXCLUDED.last_seen_at > p.shift_online_at
                     AND EXCLUDED.last_seen_at - p.shift_online_at
                         <= make_interval(secs => CAST(:grace_s AS float8))
                THEN p.shift_online_s
                     + EXTRACT(EPOCH FROM EXCLUDED.last_seen_at - p.shift_online_at)
                ELSE p.shift_online_s END,
            shift_online_at = CASE WHEN {counted}
                THEN GREATEST(p.shift_online_at, EXCLUDED.last_seen_at)
                ELSE p.shift_online_at END"""
