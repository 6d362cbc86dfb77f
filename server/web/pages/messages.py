"""The pages' words that a template does not hold: the refusals, the reasons and the names
of states, marked for the catalogue and translated where they are shown."""

from __future__ import annotations

from reputation.tags import TAGS
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
