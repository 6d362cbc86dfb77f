"""The pages' words that a template does not hold: the refusals, the reasons and the names
of states, marked for the catalogue and translated where they are shown."""

from __future__ import annotations

from bargaining import term_descriptions
from reputation import pseudonym
from reputation.tags import TAGS
from server.web.i18n import translations
from server.web.rendering import environment


def N_(message: str) -> str:
    """Marks a message for the catalogue; it is translated where it is shown."""
    return message


EXCLUDED_REASONS = {
    "appeal_upheld": N_("removed on appeal"),
    "excluded_tags": N_("reasons outside the driver's control"),
    "beyond_window": N_("older than the counted window"),
}
OUTCOMES = {"rating_removed": N_("rating removed"), "rating_stands": N_("rating stands")}
FARE_CLASSES = (N_("standard"), N_("accessible"))
CHOICES = (N_("yes"), N_("no"), N_("abstain"))
TRIP_STATUSES = (
    N_("requested"),
    N_("assigned"),
    N_("arrived"),
    N_("in_progress"),
    N_("completed"),
    N_("cancelled"),
    N_("unfulfilled"),
)
environment.globals.update(
    excluded_reasons=EXCLUDED_REASONS,
    outcomes=OUTCOMES,
    tag_descriptions={tag.code: tag.description for tag in TAGS},
)

PROBLEM_MESSAGES = {
    "unauthorized": N_("Sign in with your token to see this page."),
    "forbidden": N_("Your account is not allowed to do this."),
    "not_found": N_("There is nothing at this address."),
    "proposal_not_found": N_("There is no such proposal."),
    "agreement_not_found": N_("There is no such version of the agreement."),
    "appeal_not_found": N_("There is no such appeal."),
    "rating_not_found": N_("There is no such rating."),
    "not_your_rating": N_("This rating is about another driver."),
    "already_appealed": N_("This rating has already been appealed."),
    "appeal_window_closed": N_("The time to appeal this rating has passed."),
    "appeal_already_decided": N_("Another reviewer has already decided this appeal."),
    "own_appeal": N_("You cannot decide your own appeal."),
    "voting_closed": N_("Voting on this proposal has closed."),
    "voting_open": N_("The vote is still open: it can be closed only after its closing time."),
    "not_eligible": N_("You were not on the roll of members when this vote opened."),
    "no_agreement_in_force": N_("No agreement is in force."),
    "trip_not_found": N_("There is no such trip."),
    "not_your_trip": N_("This trip is another person's."),
    "no_receipt": N_(
        "This trip has no receipt: it was neither completed nor cancelled with a fee."
    ),
    "pay_period_not_found": N_("There is no such pay period."),
    "not_a_period_start": N_("This date does not start a pay period."),
    "patronage_period_taken": N_("These days are already shared out by another dividend."),
    "invalid_proposal": N_("The proposal cannot be put to a vote: a field needs fixing."),
    "validation_error": N_("A value on this page is not valid."),
    "rate_limited": N_("Too many requests: wait a moment and try again."),
    "dependency_unavailable": N_(
        "The service cannot reach its database right now. Try again shortly."
    ),
    "unavailable": N_("The service is not available right now. Try again shortly."),
    "alert_already_acknowledged": N_(
        "Another operator acknowledged this alert first: they have it. Add a note if you can help."
    ),
    "alert_resolved": N_("This alert or case is resolved already."),
    "alert_not_found": N_("There is no such alert or case."),
}
# By status, for a refusal the list above does not name.
STATUS_MESSAGES = {
    400: N_("This request is not valid."),
    401: N_("Sign in with your token to see this page."),
    403: N_("Your account is not allowed to do this."),
    404: N_("There is nothing at this address."),
    409: N_("This is not possible in the current state: reload the page to see it."),
    422: N_("A value on this page is not valid."),
    429: N_("Too many requests: wait a moment and try again."),
}

# pydantic's own English for a field it refuses, as the API sends it: marked here so the pages
# can say it in French (server.web.i18n.api_text matches the sentence to its template).
VALIDATION_MESSAGES = (
    N_("or"),  # between the choices of "Input should be 'yes', 'no' or 'abstain'"
    N_("Field required"),
    N_("Extra inputs are not permitted"),
    N_("Input should be a valid decimal"),
    N_("Input should be a finite number"),
    N_("Input should be a valid integer"),
    N_("Input should be a valid integer, unable to parse string as an integer"),
    N_("Input should be a valid number, unable to parse string as a number"),
    N_("Input should be a valid boolean, unable to interpret input"),
    N_("Input should be a valid string"),
    N_("Input should be a valid list"),
    N_("Input should be a valid dictionary"),
    N_("Input should be greater than or equal to {ge}"),
    N_("Input should be greater than {gt}"),
    N_("Input should be less than or equal to {le}"),
    N_("Input should be less than {lt}"),
    N_("Decimal input should have no more than {max_digits} digits in total"),
    N_("Decimal input should have no more than {decimal_places} decimal places"),
    N_("Decimal input should have no more than {whole_digits} digits before the decimal point"),
    N_("Input should be a valid datetime or date, {error}"),
    N_("Input should be a valid datetime, {error}"),
    N_("Input should be a valid date, {error}"),
    N_("Input should have timezone info"),
    N_("Input should be {expected}"),
    N_("String should match pattern '{pattern}'"),
    N_("String should have at most {max_length} characters"),
    N_("String should have at least {min_length} character"),
    N_("String should have at least {min_length} characters"),
    N_("List should have at most {max_length} items after validation, not {actual_length}"),
    N_("List should have at most {max_length} item after validation, not {actual_length}"),
    N_("List should have at least {min_length} item after validation, not {actual_length}"),
    N_("List should have at least {min_length} items after validation, not {actual_length}"),
)


def term_label(path: str, language: str) -> str:
    """A term of the agreement in words, in `language` (its description in
    bargaining.term_descriptions; a fare class's name after it): the committee's form and every
    diff show it, with the term's code name small beside it."""
    english = term_descriptions.description(path)
    parts = path.removeprefix("terms.").split(".")
    if english is None:
        return ".".join(parts)
    gettext = translations(language).gettext
    label = gettext(english)
    if len(parts) == 3 and parts[0] == "fares":
        label = f"{label} ({gettext(parts[1])})"
    return label


environment.globals.update(term_label=term_label)


# The audit log's events (docs/audit.md) in words: /transparency shows each with its code name
# small beside it. An event without a name here shows its code alone.
EVENT_NAMES = {
    "agreement.version": N_("A version of the agreement came into force"),
    "proposal.opened": N_("A vote opened"),
    "proposal.closed": N_("A vote closed"),
    "proposal.withdrawn": N_("A proposal was withdrawn"),
    "patronage.allocated": N_("A dividend was shared out"),
    "pay.period_closed": N_("A pay period closed"),
    "appeal_decision": N_("An appeal was decided"),
    "driver_status_change": N_("A member's status changed"),
    "driver_qualification_recorded": N_("A qualification was recorded"),
    "driver_vehicle_recorded": N_("A vehicle was recorded"),
    "account_tokens_revoked": N_("An account's tokens were revoked"),
    "decision_review_requested": N_("A person asked for a decision to be reviewed"),
    "decision_review_answered": N_("A decision review was answered"),
    "fare_cap_recorded": N_("A fare cap was recorded"),
    "fare_estimate": N_("A fare estimate was given"),
    "regulator_report": N_("A report went to the regulator"),
    "demo.left_open_closed": N_("A demo trip left open was closed"),
}
environment.globals.update(event_names=EVENT_NAMES)


# A rater's pseudonym (`rider-1a2b3c4d`, reputation.pseudonym) as a French page names them: the
# English pages keep the API's spelling, so a driver can match it with what their app shows.
RATER = N_("rider {code}")


def rater_name(rater: str, language: str) -> str:
    """The rater's pseudonym in `language` ("la personne passagère 1a2b3c4d" in French)."""
    if language == "en" or not rater.startswith(pseudonym.PREFIX):
        return rater
    code = rater.removeprefix(pseudonym.PREFIX)
    return translations(language).gettext(RATER).format(code=code)


environment.globals.update(rater_name=rater_name)
