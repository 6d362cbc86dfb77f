"""Imports every table so `Base.metadata` is complete (migrations and test clean-up use it)."""

from bargaining.models import AgreementVersion, Ballot, Proposal
from dispatch.audit import AuditEntry
from dispatch.auth import AuthToken
from dispatch.db import Base
from dispatch.locations.models import DriverPosition, TrailPoint
from dispatch.riders.models import Rider
from dispatch.trips.models import Offer, Trip, TripRequestKey
from drivers.models import Driver, DriverVehicle
from drivers.status import DriverStatusChange
from reputation.models import Appeal, RateableTrip, Rating, SupportCase

__all__ = [
    "AgreementVersion",
    "Appeal",
    "AuditEntry",
    "AuthToken",
    "Ballot",
    "Base",
    "Driver",
    "DriverPosition",
    "DriverStatusChange",
    "DriverVehicle",
    "Offer",
    "Proposal",
    "RateableTrip",
    "Rating",
    "Rider",
    "SupportCase",
    "TrailPoint",
    "Trip",
    "TripRequestKey",
]
