"""Every term of the agreement (bargaining/terms.py) in a few plain words, for the people who
read and vote on it: the committee's form and every diff label a term with its description, its
code name small beside it. Marked with `N_`: the pages show them in French too.

Keyed by the term's dotted path as the wire writes it; a fare class's terms by the path with
`<key>` for the class (`fares.<key>.base`). A test checks that every leaf of the terms has one.
"""

from __future__ import annotations

from coop.messages import N_

DESCRIPTIONS: dict[str, str] = {
    "currency": N_("Currency of every amount"),
    "fares.<key>.base": N_("Fare: amount to start a trip"),
    "fares.<key>.per_km": N_("Fare: amount per kilometre"),
    "fares.<key>.per_minute": N_("Fare: amount per minute"),
    "fares.<key>.minimum": N_("Fare: least a trip costs"),
    "fares.<key>.max_over_quote_percent": N_(
        "Fare: most a trip may cost above its quote, in percent"
    ),
    "commission.percent": N_("Co-op's share of each fare, in percent"),
    "commission.cap": N_("Most the co-op takes from one trip"),
    "driver_floor.per_km": N_("Driver's pay floor per kilometre"),
    "driver_floor.per_minute": N_("Driver's pay floor per minute"),
    "cancellation.free_period_s": N_("Free cancellation after a driver accepts, in seconds"),
    "cancellation.fee": N_("Rider's cancellation fee after that, paid to the driver"),
    "dispatch.batch_interval_ms": N_("Time between matching rounds, in milliseconds"),
    "dispatch.offer_timeout_s": N_("Time to answer an offer, in seconds"),
    "dispatch.max_pickup_distance_m": N_("Farthest pickup offered, in metres"),
    "dispatch.max_wait_s": N_("Longest a request waits for a driver, in seconds"),
    "dispatch.fairness_weight": N_("Weight of fairness between drivers in matching"),
    "dispatch.max_plausible_speed_kmh": N_("Fastest believable move of a car, in km/h"),
    "dispatch.arrival_radius_m": N_(
        "How close to the pickup a driver must be to arrive, in metres"
    ),
    "dispatch.no_show_wait_s": N_("Wait at the pickup before a rider's no-show, in seconds"),
    "dispatch.overrun_percent": N_("Overrun allowed over an estimate, in percent"),
    "dispatch.overrun_s": N_("Overrun allowed over an estimate, in seconds"),
    "dispatch.min_batch_interval_ms": N_("Time between early matching rounds, in milliseconds"),
    "dispatch.fairness_credit_max_s": N_("Most the fairness credit is worth, in seconds"),
    "dispatch.earnings_credit_max_s": N_("Most the low-earnings credit is worth, in seconds"),
    "dispatch.rider_wait_credit_max_s": N_("Most a rider's waiting is credited, in seconds"),
    "dispatch.quote_valid_s": N_("How long a quote stays open, in seconds"),
    "dispatch.earnings_credit_fare_scale_max": N_(
        "Most the low-earnings credit grows with a trip's fare, as a multiple"
    ),
    "dispatch.earnings_penalty_above_median": N_(
        "Drivers above the median earnings rate give up as much as the others are credited"
    ),
    "dispatch.candidates_per_request": N_("Drivers considered for each request (0: all in reach)"),
    "reputation.window": N_("Most recent ratings that count in a score"),
    "reputation.min_ratings": N_("Ratings needed before a score is shown"),
    "reputation.prior_mean": N_("Stars a score starts from (the prior)"),
    "reputation.prior_weight": N_("Weight of the prior, in ratings"),
    "reputation.rating_window_days": N_("Days a rider has to rate a trip"),
    "reputation.appeal_window_days": N_("Days a driver has to appeal a rating"),
    "reputation.review_due_days": N_("Days within which a person decides an appeal"),
    "reputation.support_threshold": N_("Score below which the co-op offers support"),
    "reputation.excluded_tags": N_("Tags that never count against a driver"),
    "reputation.reveal_after_ratings": N_("Newer ratings before a rating is shown to its driver"),
    "governance.quorum_percent": N_("Quorum of a vote, in percent of the roll"),
    "governance.approval_percent": N_("Yes votes needed to pass, in percent"),
    "governance.max_voting_days": N_("Longest a vote may run, in days"),
    "pay.period_days": N_("Length of a pay period, in days"),
    "pay.timezone": N_("Time zone of the pay periods"),
    "pay.engaged_floor_per_hour": N_("Driver's pay floor per engaged hour"),
    "patronage.basis": N_("What a member's dividend is shared by"),
    "patronage.reserve_percent": N_("Share of a surplus kept in reserve, in percent"),
    "patronage.max_period_days": N_("Longest period one dividend covers, in days"),
    "safety.pin_default": N_("PIN at pickup for a rider who has not chosen"),
    "safety.night_starts": N_("Night starts at (HH:MM)"),
    "safety.night_ends": N_("Night ends at (HH:MM)"),
    "safety.ack_within_s": N_("Time for a person to acknowledge an alert, in seconds"),
    "safety.stop_radius_m": N_("Ride check: radius of a long stop, in metres"),
    "safety.stop_alert_s": N_("Ride check: a stop longer than this, in seconds"),
    "safety.away_alert_s": N_("Ride check: moving away from the destination, in seconds"),
    "safety.not_started_alert_s": N_("Ride check: not started after arriving, in seconds"),
    "safety.end_distance_m": N_("Ride check: ended this far from the destination, in metres"),
    "safety.check_answer_s": N_("Ride check: time to answer before the operators, in seconds"),
}


def generic_path(path: str) -> str:
    """The path a description is kept under: a fare class's name as `<key>`."""
    parts = path.removeprefix("terms.").split(".")
    if len(parts) == 3 and parts[0] == "fares":
        parts[1] = "<key>"
    return ".".join(parts)


def description(path: str) -> str | None:
    """The English description of the term at `path` (`terms.` prefix or not); None for a
    term without one (a test keeps there being none)."""
    return DESCRIPTIONS.get(generic_path(path))
