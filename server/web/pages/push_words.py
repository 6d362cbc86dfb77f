"""The words of the apps' notifications, in every language the service speaks: the service
worker shows a push while no page is open, so it cannot ask a page for them (docs/push.md)."""

from __future__ import annotations

from functools import cache

from server.web.i18n import LANGUAGES, translations
from server.web.pages.messages import N_

# What the worker shows, by the payload's `kind` (and `status`); `{…}` are filled in by the
# worker from the payload (docs/protocol.md, "Push").
NOTIFICATION_WORDS = {
    "offer_title": N_("New trip offer"),
    "offer_pickup": N_("Pickup about {min} away ({distance})."),
    "offer_fare": N_("Fare estimate: {fare}."),
    "offer_accessible": N_("Wheelchair-accessible vehicle needed."),
    "offer_open": N_("Open the app to accept or decline."),
    "trip_arrived": N_("Your driver is here"),
    "trip_completed": N_("You have arrived"),
    "trip_cancelled": N_("Your driver cancelled the trip"),
    "trip_other": N_("Your trip changed"),
    "trip_body": N_("Open the app to see your trip."),
    "trip_cancelled_body": N_("Nothing is charged. You can ask for another ride."),
    "safety_raised": N_("Your emergency alert reached the co-op"),
    "safety_acknowledged": N_("A person at the co-op has your alert"),
    "safety_resolved": N_("Your emergency alert is closed"),
    "safety_body": N_("Open the app to see where your alert stands."),
    "appeal_title": N_("Your appeal was decided"),
    "appeal_body": N_("Open your page to read the decision."),
    "vote_title": N_("A vote is open"),
    "vote_body": N_("Open the proposal to read it and vote."),
    "other_title": N_("News from the co-op"),
    "other_body": N_("Open the app to see it."),
    "minutes": N_("{n} min"),
    "km": N_("{n} km"),
    "metres": N_("{n} m"),
}


@cache
def notification_words() -> dict[str, dict[str, str]]:
    """Every notification text in each language, as the worker reads them."""
    return {
        language: {
            key: translations(language).gettext(message)
            for key, message in NOTIFICATION_WORDS.items()
        }
        for language in LANGUAGES
    }
