"""Imports every table so `Base.metadata` is complete (migrations and test clean-up use it)."""

from dispatch.auth import AuthToken
from dispatch.db import Base
from dispatch.riders.models import Rider
from drivers.models import Driver, DriverVehicle

__all__ = ["AuthToken", "Base", "Driver", "DriverVehicle", "Rider"]
