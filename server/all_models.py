"""Imports every table so `Base.metadata` is complete (migrations and test clean-up use it)."""

from bargaining.impact_replay import ImpactReplay
from bargaining.models import AgreementVersion, Ballot, Proposal
from coop.audit import AuditEntry
from coop.auth import AuthToken
from coop.db import Base
from coop.passkeys import Passkey
from coop.push.models import PushDevice, PushPreference
from coop.recovery import RecoveryLink
from dispatch.locations.models import DriverPosition, TrailPoint
from dispatch.matching.capacity import CapacityWait
from dispatch.matching.models import LeaderEpoch, TravelCell, TravelModelVersion
from dispatch.safety.models import SafetyAlert, SafetyAlertNote, SafetyAlertPosition
from dispatch.safety.ridecheck_models import RideCheck, RideWatch
from dispatch.safety.share_models import TripShare
from dispatch.trips.consent import TripQuote
from dispatch.trips.fare_caps import FareCap
from dispatch.trips.models import Offer, Trip, TripRequestKey
from dispatch.trips.pin import TripPin
from drivers.models import (
    Driver,
    DriverPhoto,
    DriverQualification,
    DriverRegisterEntry,
    DriverSafety,
    DriverStatusChange,
    DriverVehicle,
)
from pay.models import PayPeriod, PayStatement, PayStatementLine
from reputation.decision_reviews import DecisionReview
from reputation.models import Appeal, RateableTrip, Rating, SupportCase
from riders.models import Rider, RiderSafety

__all__ = [
    "AgreementVersion",
    "Appeal",
    "AuditEntry",
    "AuthToken",
    "Ballot",
    "ImpactReplay",
    "Base",
    "CapacityWait",
    "DecisionReview",
    "Driver",
    "FareCap",
    "LeaderEpoch",
    "DriverPosition",
    "DriverQualification",
    "DriverRegisterEntry",
    "DriverStatusChange",
    "DriverVehicle",
    "Offer",
    "PayPeriod",
    "PayStatement",
    "PayStatementLine",
    "Proposal",
    "PushDevice",
    "PushPreference",
    "RateableTrip",
    "Rating",
    "Rider",
    "SupportCase",
    "TrailPoint",
    "TravelCell",
    "TravelModelVersion",
    "Trip",
    "TripQuote",
    "TripRequestKey",
    "TripShare",
    "RideCheck",
    "RideWatch",
    "Passkey",
    "RecoveryLink",
    "SafetyAlert",
    "SafetyAlertNote",
    "SafetyAlertPosition",
    "TripPin",
    "DriverPhoto",
    "RiderSafety",
    "DriverSafety",
]
