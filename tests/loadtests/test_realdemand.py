"""The real New York demand reads as its provenance says, inside the drawn service area."""

from __future__ import annotations

import hashlib
from datetime import datetime

from loadtests.realdemand import UBER_PICKUPS, YELLOW_TRIPS, new_york, uber_pickups, yellow_trips


def test_the_files_are_the_ones_the_provenance_names() -> None:
    digests = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in (YELLOW_TRIPS, UBER_PICKUPS)
    }
    assert digests == {
        "yellow_tripdata_2016-03.csv.gz": (
            "654b9d1502eca43cf80f63cfca0cb8b70235dcb38b0230debd369f08e932a946"
        ),
        "uber-raw-data-apr14.csv.gz": (
            "84bc56d54748a5a9e51f3fbeb8ab1601b3a5609feee43283a0e82610f5c15e16"
        ),
    }


def test_yellow_trips_inside_new_york() -> None:
    area = new_york()
    every = yellow_trips()
    inside = yellow_trips(area)
    assert len(every) == 1998  # 2,013 rows less 15 with zero coordinates
    assert len(inside) == 1990
    rush = [t for t in inside if t.pickup_at >= datetime(2016, 3, 10, 7)]
    assert 1800 <= len(rush) <= 1840
    assert all(t.pickup_at <= u.pickup_at for t, u in zip(inside, inside[1:], strict=False))
    assert all(area.contains(t.dropoff_lat, t.dropoff_lon) for t in inside)
    first = inside[0]
    assert first.pickup_at == datetime(2016, 3, 1, 0, 0)
    assert first.distance_m > 0 and first.duration_s > 0


def test_uber_pickups_inside_new_york() -> None:
    pickups = uber_pickups(new_york())
    assert len(pickups) == 62904
    assert pickups[0].at == datetime(2014, 4, 1, 0, 0)
    assert {p.base for p in pickups} == {"B02512", "B02598"}
