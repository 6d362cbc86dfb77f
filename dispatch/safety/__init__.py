"""Riders' and drivers' safety during a trip (docs/safety.md): who is coming, the trip others can
follow, SOS alerts answered by a person, and the ride check that notices trouble. Nothing here
acts against anyone by itself: every alert, check and case goes to a person."""
