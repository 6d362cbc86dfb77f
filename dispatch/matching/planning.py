"""A batch's plan: its candidate edges priced (pickup ETAs from the travel-time model, minus the
fairness credits), solved, and each offer's `why`. Pure apart from the solver, which
`dispatch.matching.matcher` runs off the event loop.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from bargaining.terms import DispatchTerms
from dispatch.matching import assignment, costs, traveltime
from dispatch.matching.candidates import Candidate
from dispatch.matching.traveltime import IntArray, TravelModel


def explain(
    candidate: Candidate,
    pickup_eta_s: int,
    *,
    earnings_credited: bool = False,
    reference_per_h: float | None = None,
) -> str:
    """The offer's `why`, true to how the wait was counted, and with the driver's shift so far
    when it earned them an earnings credit."""
    why = _explain_wait(candidate, pickup_eta_s)
    if earnings_credited and reference_per_h is not None:
        shift = costs.explain_shift(
            earnings=candidate.shift_earnings,
            online_s=candidate.shift_online_s,
            reference_per_h=reference_per_h,
        )
        why = f"{why}; {shift}"
    return why


def explain_fairness(
    offered: Candidate, nearer: Candidate, terms: DispatchTerms, *, earnings_part: bool
) -> str:
    """Why fairness gave `offered` the trip over `nearer`, who would have had it without the
    drivers' fairness credit: the figures of the parts of the credit that favoured `offered`
    (`earnings_part`: their shortfall was the larger)."""
    waited_longer = terms.fairness_weight > 0 and offered.idle_s > nearer.idle_s
    return costs.explain_fairness(
        offered_distance_m=offered.distance_m,
        nearer_distance_m=nearer.distance_m,
        idle_s=(nearer.idle_s, offered.idle_s) if waited_longer else None,
        shift=(
            (
                (nearer.shift_earnings, nearer.shift_online_s),
                (offered.shift_earnings, offered.shift_online_s),
            )
            if earnings_part
            else None
        ),
    )


def _explain_wait(candidate: Candidate, pickup_eta_s: int) -> str:
    if candidate.since_last_trip:
        return costs.explain(
            pickup_distance_m=candidate.distance_m,
            pickup_eta_s=pickup_eta_s,
            idle_s=candidate.idle_s,
        )
    # No trip since coming on duty: the wait counts from then, and the sentence says so.
    where = costs.explain(
        pickup_distance_m=candidate.distance_m, pickup_eta_s=pickup_eta_s, idle_s=None
    ).split(";", 1)[0]
    minutes = round(candidate.idle_s / 60)
    if minutes < 1:
        return f"{where}; you came on duty under a minute ago"
    return f"{where}; waiting {minutes} min since you came on duty"


def _without_driver_fairness(
    terms: DispatchTerms,
    chosen: dict[int, int],
    edge_of: dict[tuple[int, int], int],
    requests: npt.NDArray[np.int64],
    drivers_of: npt.NDArray[np.int64],
    etas: npt.NDArray[np.int64],
    waits: npt.NDArray[np.float64] | None,
    num_requests: int,
    num_drivers: int,
) -> dict[int, int]:
    """The assignment the batch would have had without the drivers' fairness credit (the same
    solve with the costs of a fairness weight of 0 and no earnings credit; the riders' credit
    kept), or {} when it cannot differ where it matters.

    An offer says fairness chose it only when, without the credit, its request would have gone
    to a nearer driver. A request given its nearest candidate has no nearer driver, so when every
    assigned request has its nearest candidate (always so without a driver credit in force) the
    second solve is skipped: nothing it could answer would change a `why`."""
    if terms.fairness_weight == 0 and not terms.earnings_credit_max_s:
        return {}
    nearest = np.full(num_requests, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(nearest, requests, etas)
    if all(etas[edge_of[(r, d)]] == nearest[r] for r, d in chosen.items()):
        return {}
    plain = costs.edge_cost_array(
        pickup_eta_s=etas,
        idle_s=np.zeros(len(etas), dtype=np.float64),
        fairness_weight=Decimal(0),
        request_wait_s=waits,
        rider_wait_credit_max_s=terms.rider_wait_credit_max_s,
    )
    return assignment.solve_arrays(num_requests, num_drivers, requests, drivers_of, plain)


@dataclass(frozen=True)
class OfferDraft:
    trip_id: uuid.UUID
    driver_id: uuid.UUID
    pickup_distance_m: int
    pickup_eta_s: int
    idle_s: int
    cost: int
    why: str
    # Set when fairness gave the trip over a nearer driver: how much nearer they were.
    nearer_by_m: int | None = None


@dataclass(frozen=True)
class Plan:
    """A solved batch: one draft per assigned request, and which of them are uncontested."""

    drafts: list[OfferDraft]
    edges: int
    drivers: int
    # Requests whose draft gives them their own cheapest candidate, a driver no other open
    # request has as a candidate: no request arriving later can make that pairing worse for
    # anyone now waiting, so an early batch may offer it at once.
    uncontested: frozenset[uuid.UUID]


def plan(
    candidates: list[Candidate],
    terms: DispatchTerms,
    timings: dict[str, float] | None = None,
    *,
    reference_per_h: float | None = None,
    model: TravelModel | None = None,
    hour: int = 0,
    reference_fare: float | None = None,
) -> Plan:
    """The edges of the batch and their costs, solved.

    Pure apart from the solver. The pickup ETAs come from the travel-time `model` (the prior
    when none is given) at `hour` of the week; the costs of the whole batch are computed at
    once with the array forms of `costs` and of the model, the path `loadtests.bench_matching`
    measures. `timings`, when given, receives the seconds spent on "costs" (with the drafts and
    their explanations) and "solve". `reference_per_h` is the median shift earnings per online
    hour of the drivers online (the earnings credit's reference; None: no earnings credit this
    batch). `reference_fare` is the median quote of the region's last hour of requests (the
    fare scaling's reference, `dispatch.earnings_credit_fare_scale_max`; None: unscaled)."""
    began = time.perf_counter()
    count = len(candidates)
    trips = sorted({c.trip_id for c in candidates})
    drivers = sorted({c.driver_id for c in candidates})
    trip_index = {trip_id: i for i, trip_id in enumerate(trips)}
    driver_index = {driver_id: i for i, driver_id in enumerate(drivers)}
    requests = np.fromiter((trip_index[c.trip_id] for c in candidates), np.int64, count)
    drivers_of = np.fromiter((driver_index[c.driver_id] for c in candidates), np.int64, count)
    etas = pickup_etas(candidates, trips, drivers, requests, drivers_of, model, hour)
    shortfall = None
    signed = bool(terms.earnings_penalty_above_median)
    if terms.earnings_credit_max_s:
        shortfall = costs.earnings_shortfall_array(
            np.fromiter((c.shift_earnings for c in candidates), np.float64, count),
            np.fromiter((c.shift_online_s for c in candidates), np.float64, count),
            reference_per_h,
            signed=signed,
        )
    fare_ratio = None
    if terms.earnings_credit_fare_scale_max is not None:
        fare_ratio = costs.fare_ratio_array(
            np.fromiter((c.fare for c in candidates), np.float64, count), reference_fare
        )
    waits = None
    if terms.rider_wait_credit_max_s:
        waits = np.fromiter((c.request_wait_s for c in candidates), np.float64, count)
    edge_costs = costs.edge_cost_array(
        pickup_eta_s=etas,
        idle_s=np.fromiter((c.idle_s for c in candidates), np.float64, count),
        fairness_weight=terms.fairness_weight,
        fairness_credit_max_s=terms.fairness_credit_max_s,
        earnings_shortfall=shortfall,
        earnings_credit_max_s=terms.earnings_credit_max_s,
        request_wait_s=waits,
        rider_wait_credit_max_s=terms.rider_wait_credit_max_s,
        earnings_signed=signed,
        fare_ratio=fare_ratio,
        fare_scale_max=terms.earnings_credit_fare_scale_max,
    )
    solving = time.perf_counter()
    chosen = assignment.solve_arrays(len(trips), len(drivers), requests, drivers_of, edge_costs)
    solved = time.perf_counter()
    edge_of = {
        (int(r), int(d)): i for i, (r, d) in enumerate(zip(requests, drivers_of, strict=True))
    }
    # Per request its cheapest cost; per driver how many requests want them.
    cheapest = np.full(len(trips), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(cheapest, requests, edge_costs)
    wanted = np.bincount(drivers_of, minlength=len(drivers))
    unfair = _without_driver_fairness(
        terms, chosen, edge_of, requests, drivers_of, etas, waits, len(trips), len(drivers)
    )
    drafts, uncontested = [], set()
    for request_i, driver_i in sorted(chosen.items()):
        i = edge_of[(request_i, driver_i)]
        candidate, eta = candidates[i], int(etas[i])
        why = explain(
            candidate,
            eta,
            earnings_credited=shortfall is not None and bool(shortfall[i] > 0),
            reference_per_h=reference_per_h,
        )
        other_i = unfair.get(request_i)
        nearer_by_m = None
        if other_i is not None and other_i != driver_i:
            nearer = edge_of[(request_i, other_i)]
            if etas[nearer] < eta:
                earnings_part = shortfall is not None and bool(shortfall[i] > shortfall[nearer])
                fairness = explain_fairness(
                    candidate, candidates[nearer], terms, earnings_part=earnings_part
                )
                why = f"{why}; {fairness}"
                nearer_by_m = round(candidate.distance_m - candidates[nearer].distance_m)
        drafts.append(
            OfferDraft(
                trip_id=candidate.trip_id,
                driver_id=candidate.driver_id,
                pickup_distance_m=round(candidate.distance_m),
                pickup_eta_s=eta,
                idle_s=round(candidate.idle_s),
                cost=int(edge_costs[i]),
                why=why,
                nearer_by_m=nearer_by_m,
            )
        )
        if edge_costs[i] == cheapest[request_i] and wanted[driver_i] == 1:
            uncontested.add(candidate.trip_id)
    if timings is not None:
        timings["solve"] = solved - solving
        timings["costs"] = (solving - began) + (time.perf_counter() - solved)
    return Plan(drafts, count, len(drivers), frozenset(uncontested))


def pickup_etas(
    candidates: list[Candidate],
    trips: list[uuid.UUID],
    drivers: list[uuid.UUID],
    requests: IntArray,
    drivers_of: IntArray,
    model: TravelModel | None,
    hour: int,
) -> IntArray:
    """Each edge's pickup ETA from the model; each driver's and each pickup's cell is found
    once (an edge shares them with the other edges of its driver and its request)."""
    count = len(candidates)
    model = model if model is not None else TravelModel.prior()
    learned = model.cells.size > 0
    driver_lat = np.full(len(drivers), np.nan)
    driver_lon = np.full(len(drivers), np.nan)
    pickup_lat = np.full(len(trips), np.nan)
    pickup_lon = np.full(len(trips), np.nan)
    for c, r, d in zip(candidates, requests.tolist(), drivers_of.tolist(), strict=True):
        driver_lat[d], driver_lon[d] = c.driver_lat, c.driver_lon
        pickup_lat[r], pickup_lon[r] = c.pickup_lat, c.pickup_lon
    return model.pickup_eta_s_array(
        distance_m=np.fromiter((c.distance_m for c in candidates), np.float64, count),
        from_lat=driver_lat[drivers_of],
        from_lon=driver_lon[drivers_of],
        to_lat=pickup_lat[requests],
        to_lon=pickup_lon[requests],
        hour=hour,
        # The prior has no cells to look up: no need to find any.
        from_cell=traveltime.cells_of(driver_lat, driver_lon)[drivers_of] if learned else None,
        to_cell=traveltime.cells_of(pickup_lat, pickup_lon)[requests] if learned else None,
    )
