"""The `driver_location` frame a rider gets on connecting: where the car is, where it is heading
and the estimate to get there, as the location flush sends them after (`dispatch.locations.flush`).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from dispatch.locations.frames import DriverLocationFrame
from dispatch.locations.geometry import position_of
from dispatch.matching.travelstore import TravelTimes
from dispatch.states import TripStatus
from dispatch.trips.models import Trip


def driver_location(
    trip: Trip, lat: float, lon: float, travel: TravelTimes, now: datetime
) -> DriverLocationFrame:
    """The frame for `trip`'s rider with its driver at (lat, lon): heading to the pickup until
    the driver arrives, then to the destination."""
    to_pickup = trip.status is TripStatus.assigned
    target = position_of(trip.pickup if to_pickup else trip.dropoff)
    [eta_s] = travel.drive_s_array(
        now, np.array([lat]), np.array([lon]), np.array([target.lat]), np.array([target.lon])
    )
    return DriverLocationFrame(
        type="driver_location",
        trip_id=trip.id,
        lat=lat,
        lon=lon,
        heading_to="pickup" if to_pickup else "destination",
        eta_s=max(0, int(eta_s)),
    )
