"""Trips and offers: quotes, requests, the state machine, cancellation and metering."""
