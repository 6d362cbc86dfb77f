"""Imports every table so `Base.metadata` is complete (migrations and test clean-up use it)."""

from bargaining.models import AgreementVersion, Ballot, Proposal
from dispatch.core.audit import AuditEntry
from dispatch.core.auth import AuthToken
from dispatch.core.db import Base
from dispatch.core.riders.models import Rider
from dispatch.locations.models import DriverPosition, TrailPoint
from dispatch.matching.models import TravelCell, TravelModelVersion
from dispatch.pay.models import PayPeriod, PayStatement, PayStatementLine
from dispatch.trips.models import Offer, Trip, TripRequestKey
from drivers.models import Driver, DriverStatusChange, DriverVehicle
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
    "PayPeriod",
    "PayStatement",
    "PayStatementLine",
    "Proposal",
    "RateableTrip",
    "Rating",
    "Rider",
    "SupportCase",
    "TrailPoint",
    "TravelCell",
    "TravelModelVersion",
    "Trip",
    "TripRequestKey",
]
