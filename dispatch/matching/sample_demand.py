"""Real New York demand (`dispatch/matching/data/`, provenance in its SOURCES.md): the benchmarks'
days, and the sample days a proposal's impact is replayed on when a co-op has too little history.

Yellow-taxi trips carry both ends, their true times, distances and fares; Uber pickups carry
only when and where. Both are read as New York local time (the files have no zone).
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import shapely

from coop.geo import ServiceArea
from coop.settings import PACKAGE_DIR

DATA_DIR = Path(__file__).resolve().parent / "data"
YELLOW_TRIPS = DATA_DIR / "yellow_tripdata_2016-03.csv.gz"
UBER_PICKUPS = DATA_DIR / "uber-raw-data-apr14.csv.gz"
NEW_YORK_AREA = PACKAGE_DIR / "data" / "new_york.geojson"
MILE_M = 1609.344


@dataclass(frozen=True, slots=True)
class TaxiTrip:
    pickup_at: datetime
    dropoff_at: datetime
    pickup_lat: float
    pickup_lon: float
    dropoff_lat: float
    dropoff_lon: float
    distance_m: float  # the taximeter's distance
    fare_amount: float  # USD, the metered fare before extras, tax and tip

    @property
    def duration_s(self) -> float:
        return (self.dropoff_at - self.pickup_at).total_seconds()


@dataclass(frozen=True, slots=True)
class Pickup:
    at: datetime
    lat: float
    lon: float
    base: str


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with gzip.open(path, "rb") as raw:
        yield from csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))


def yellow_trips(area: ServiceArea | None = None) -> list[TaxiTrip]:
    """Every yellow-taxi trip with both ends inside `area` (all with non-zero coordinates when
    None), in pickup order."""
    trips = []
    for row in _rows(YELLOW_TRIPS):
        trip = TaxiTrip(
            pickup_at=datetime.fromisoformat(row["tpep_pickup_datetime"]),
            dropoff_at=datetime.fromisoformat(row["tpep_dropoff_datetime"]),
            pickup_lat=float(row["pickup_latitude"]),
            pickup_lon=float(row["pickup_longitude"]),
            dropoff_lat=float(row["dropoff_latitude"]),
            dropoff_lon=float(row["dropoff_longitude"]),
            distance_m=float(row["trip_distance"]) * MILE_M,
            fare_amount=float(row["fare_amount"]),
        )
        if 0.0 not in (trip.pickup_lat, trip.pickup_lon, trip.dropoff_lat, trip.dropoff_lon):
            trips.append(trip)
    if area is not None:
        both = _inside(
            area, [t.pickup_lat for t in trips], [t.pickup_lon for t in trips]
        ) & _inside(area, [t.dropoff_lat for t in trips], [t.dropoff_lon for t in trips])
        trips = [t for t, keep in zip(trips, both, strict=True) if keep]
    trips.sort(key=lambda t: t.pickup_at)
    return trips


def _inside(area: ServiceArea, lats: list[float], lons: list[float]) -> np.ndarray:
    """Which points lie in the area (or on its edge), in one vectorised call."""
    return np.asarray(shapely.intersects_xy(area.geometry, np.asarray(lons), np.asarray(lats)))


def uber_pickups(area: ServiceArea | None = None) -> list[Pickup]:
    """Every Uber pickup inside `area` (all when None), in time order."""
    pickups = [
        Pickup(
            at=_uber_time(row["Date/Time"]),
            lat=float(row["Lat"]),
            lon=float(row["Lon"]),
            base=row["Base"],
        )
        for row in _rows(UBER_PICKUPS)
    ]
    if area is not None:
        keep = _inside(area, [p.lat for p in pickups], [p.lon for p in pickups])
        pickups = [p for p, inside in zip(pickups, keep, strict=True) if inside]
    pickups.sort(key=lambda p: p.at)
    return pickups


def _uber_time(text: str) -> datetime:
    """`2014/4/1 00:11:00` (strptime is ten times slower over 65,535 rows)."""
    day, clock = text.split(" ")
    year, month, date = day.split("/")
    hour, minute, second = clock.split(":")
    return datetime(int(year), int(month), int(date), int(hour), int(minute), int(second))


def new_york() -> ServiceArea:
    return ServiceArea.from_file(NEW_YORK_AREA)
