"""The data register: every kind of personal data the co-op keeps, declared once, here.

GET /v1/transparency/data renders this declaration, and a test checks it against every table of
the schema (each column is either declared here as personal data or declared not personal), so
the register cannot drift from the models.
"""

from __future__ import annotations

from dataclasses import dataclass

from coop.messages import N_

ALL_COLUMNS = "*"

# Who may read, in the words the register uses.
THE_DRIVER = N_("the driver themself")
THE_RIDER = N_("the rider themself")
ADMINS = N_("co-op administrators, through their admin access")
NOBODY = N_("nobody through the service")
TRIP_RIDER = N_("the rider of a trip the driver accepted")
REVIEWERS = N_("reviewers (drivers elected to review appeals), for an appeal before them")
THE_RATED_DRIVER = N_("the rated driver, with the rider shown only as a pseudonym")
TRIP_PARTIES = N_("the trip's rider and driver")
ANYONE_AGGREGATE = N_("anyone, only as aggregate counts")

WHILE_ACCOUNT = N_("as long as the account exists; removed with it")
WHILE_MEMBER = N_("as long as the membership exists; removed with it")


@dataclass(frozen=True)
class Storage:
    """Where one kind of data is kept: a table and its columns, or another store."""

    table: str | None
    columns: tuple[str, ...] = (ALL_COLUMNS,)
    other: str | None = None  # e.g. Redis, for data that never reaches a table

    def describe(self) -> str:
        if self.table is None:
            return self.other or ""
        what = "every column" if self.columns == (ALL_COLUMNS,) else ", ".join(self.columns)
        return f"PostgreSQL table {self.table} ({what})"


EXPORT_PATHS = {"driver": "GET /v1/drivers/me/export", "rider": "GET /v1/riders/me/export"}


@dataclass(frozen=True)
class InExport:
    """Where one kind of data appears in a person's export: the audience and the section."""

    audience: str  # "driver" or "rider"
    section: str

    def describe(self) -> str:
        return f"`{EXPORT_PATHS[self.audience]}` section `{self.section}`"


@dataclass(frozen=True)
class DataKind:
    key: str
    description: str
    purpose: str
    stored: tuple[Storage, ...]
    retention: str
    readers: tuple[str, ...]
    # The sections of the exports that give the person this data (a test checks the sections
    # exist, and that every section of an export is declared here).
    exported: tuple[InExport, ...] = ()


REGISTER: tuple[DataKind, ...] = (
    DataKind(
        key="rider_account",
        description=N_(
            "A rider's name, the first name they chose to show drivers (if any), and "
            "when the account was opened"
        ),
        purpose=N_("to know who requested a trip, and to let the driver greet them"),
        stored=(Storage("rider"),),
        retention=WHILE_ACCOUNT,
        readers=(
            THE_RIDER,
            N_(
                "the driver of their trip (only the first name the rider chose to share; never "
                "the account id or the name)"
            ),
        ),
        exported=(InExport("rider", "account"),),
    ),
    DataKind(
        key="driver_identity",
        description=N_("A driver's name, union member number and account dates"),
        purpose=N_("to know which member drives, and that they are a member"),
        stored=(Storage("driver", ("id", "name", "member_number", "created_at", "name_folded")),),
        retention=WHILE_MEMBER,
        readers=(
            THE_DRIVER,
            N_(
                "the rider of a trip the driver accepted (the name and account id, never the "
                "member number)"
            ),
        ),
        exported=(InExport("driver", "account"),),
    ),
    DataKind(
        key="driver_membership",
        description=N_(
            "A driver's membership status and roles (committee, reviewer), and whether "
            "the account belongs to a simulated city"
        ),
        purpose=N_("to know who may drive, vote, propose terms or review appeals"),
        stored=(Storage("driver", ("status", "committee", "reviewer", "simulated")),),
        retention=WHILE_MEMBER,
        readers=(THE_DRIVER,),
        exported=(InExport("driver", "account"),),
    ),
    DataKind(
        key="driver_status_changes",
        description=N_("Each decision changing a driver's status, with its written reason"),
        purpose=N_("so that no status changes without a recorded decision by a person"),
        stored=(Storage("driver_status_change"),),
        retention=WHILE_MEMBER,
        readers=(THE_DRIVER, ADMINS),
        exported=(InExport("driver", "status_changes"),),
    ),
    DataKind(
        key="vehicle",
        description=N_("A driver's vehicle: plate, seats, wheelchair access, make, model, colour"),
        purpose=N_("to offer trips the vehicle suits, and so riders recognise it"),
        stored=(
            Storage(
                "driver_vehicle",
                ("driver_id", "plate", "seats", "wheelchair_accessible", "make", "model", "colour"),
            ),
        ),
        retention=WHILE_MEMBER,
        readers=(THE_DRIVER, TRIP_RIDER),
        exported=(InExport("driver", "account"), InExport("driver", "qualification")),
    ),
    DataKind(
        key="vehicle_register",
        description=N_(
            "A car's register as the law asks for it: identification number, year, owner, "
            "odometer at registration, mechanical inspection due date"
        ),
        purpose=N_("to offer trips only in a car the law allows (docs/jurisdiction.md)"),
        stored=(
            Storage("driver_vehicle", ("vin", "year", "owner", "odometer_km", "inspection_due_on")),
        ),
        retention=WHILE_MEMBER,
        readers=(THE_DRIVER, ADMINS),
        exported=(InExport("driver", "qualification"),),
    ),
    DataKind(
        key="driver_qualification",
        description=N_(
            "A driver's legal qualification as an operator recorded it from the documents (no "
            "scan): licence file number, training certificate date, criminal-record check date "
            "and outcome, authorization expiry; and each recording of it and of the car, as kept"
        ),
        purpose=N_("to offer trips only to a driver the law allows (docs/jurisdiction.md)"),
        stored=(Storage("driver_qualification"), Storage("driver_register_entry")),
        retention=WHILE_MEMBER,
        readers=(THE_DRIVER, ADMINS),
        exported=(InExport("driver", "qualification"),),
    ),
    DataKind(
        key="access_tokens",
        description=N_(
            "The hash of each access token and which account it opens (never the token)"
        ),
        purpose=N_("to recognise a caller"),
        stored=(Storage("auth_token"),),
        retention=WHILE_ACCOUNT,
        readers=(
            N_(
                "nobody through the service (the account holder's export lists the role, "
                "creation, expiry and revocation dates of each of their tokens, never a hash)"
            ),
        ),
        exported=(InExport("driver", "access_tokens"), InExport("rider", "access_tokens")),
    ),
    DataKind(
        key="passkeys",
        description=N_(
            "Each passkey's public key, credential id, signature counter, the name its owner "
            "gave it and when it was added and last used (never a private key: that stays on "
            "the person's device)"
        ),
        purpose=N_("to let a person sign in to the pages without typing a token"),
        stored=(Storage("passkey"),),
        retention=N_("until its owner removes it; removed with the account"),
        readers=(N_("the account holder, on their own page"),),
    ),
    DataKind(
        key="recovery_links",
        description=N_(
            "The hash of each one-time sign-in link an operator issued, for which account, by "
            "which operator, when it was issued, when it expires and when it was used"
        ),
        purpose=N_(
            "to let a person who lost their token and passkeys back in, and to show "
            "them every link issued for their account"
        ),
        stored=(Storage("recovery_link"),),
        retention=WHILE_ACCOUNT,
        readers=(N_("the account holder, on their own page (never the link)"), ADMINS),
    ),
    DataKind(
        key="rate_limit_counters",
        description=N_(
            "The client address of each account creation and of recent requests made without "
            "an account, the times of an account's recent requests, and which sockets it has open"
        ),
        purpose=N_("to stop floods of accounts and requests (docs/security.md)"),
        stored=(
            Storage(
                None,
                other="Redis: rate-limit windows keyed by client address (an IPv6 one by its "
                "/64) or account id, the ids of open sockets per account, and per account a "
                "count of ballot requests per UTC day, without their times, until the next day "
                "ends",
            ),
        ),
        retention=N_(
            "the length of the limit's window (an hour for account creation, a minute "
            "for requests); open-socket entries until the socket closes"
        ),
        readers=(NOBODY,),
    ),
    DataKind(
        key="trips",
        description=N_(
            "Each trip: who rode and who drove, pickup and drop-off, the times of each "
            "step, the quote, the metered fare, the driver's pay and the co-op's commission"
        ),
        purpose=N_("to run the trip, price it under the agreement and pay the driver"),
        stored=(Storage("trip"),),
        retention=N_(
            "kept as the co-op's record of trips, fares and pay; not deleted automatically"
        ),
        readers=(
            N_(
                "the trip's rider and driver (a driver's export of their trips leaves out the "
                "rider's account id)"
            ),
            N_(
                "the co-op's operators (an admin token), in the hourly floor's review list: "
                "which driver drove which rider account, how often, how new the account was, "
                "and how far the pickup was from the driver"
            ),
        ),
        exported=(InExport("driver", "trips_driven"), InExport("rider", "trips_requested")),
    ),
    DataKind(
        key="trip_request_keys",
        description=N_(
            "The Idempotency-Key a rider's app sent with a trip request, and a hash of that request"
        ),
        purpose=N_("so a retried request never books a second trip"),
        stored=(Storage("trip_request_key"),),
        retention=N_("kept with the trip it created"),
        readers=(N_("the rider themself, in their export"),),
        exported=(InExport("rider", "idempotency_keys"),),
    ),
    DataKind(
        key="offers",
        description=N_(
            "Each trip offered to a driver: pickup distance and time, the driver's time "
            "waiting since their last trip, why they were offered it (when fairness decided it, "
            "with the wait and shift earnings of the unnamed nearer driver it passed over), and "
            "whether they accepted, declined or let it expire (declining carries no penalty)"
        ),
        purpose=N_("to dispatch, and to explain every offer"),
        stored=(Storage("trip_offer"),),
        retention=N_("kept with the trip"),
        readers=(THE_DRIVER,),
        exported=(InExport("driver", "offers_received"),),
    ),
    DataKind(
        key="driver_presence",
        description=N_(
            "A driver's latest position, heading, speed, whether they are available, and when "
            "their current shift began and how long they have been online in it"
        ),
        purpose=N_(
            "to offer each trip to the nearest available drivers, and to weigh the earnings per "
            "online hour of their shift (the agreement's earnings credit)"
        ),
        stored=(
            Storage("location_driver_position"),
            Storage(
                None,
                other="a worker's memory, until the next write to the database (a fraction of a "
                "second); positions sent to a rider pass through Redis pub/sub, which keeps none",
            ),
        ),
        retention=N_(
            "one row per driver, overwritten by each new position; removed with the membership"
        ),
        readers=(
            N_("the driver themself, in their export"),
            N_("the matcher (a program, not a person)"),
            N_(
                "the rider of the driver's current trip, while the driver comes and during the trip"
            ),
        ),
        exported=(InExport("driver", "positions"),),
    ),
    DataKind(
        key="trip_trails",
        description=N_("The positions a driver reported while holding a trip"),
        purpose=N_(
            "the rider's live view of the car, and the metered distance the fare is priced on"
        ),
        stored=(Storage("location_trail_point"),),
        retention=N_("kept with the trip"),
        readers=(
            N_("the driver themself, in their export"),
            N_("the trip's rider, live, while the driver comes and during the trip"),
        ),
        exported=(InExport("driver", "positions"),),
    ),
    DataKind(
        key="ballots",
        description=N_("A member's place on a vote's roll, and their ballot on it"),
        purpose=N_("one member, one vote"),
        stored=(Storage("bargaining_ballot"), Storage("bargaining_sealed_ballot")),
        retention=N_(
            "the roll is kept with the proposal; a choice is stored under a voter tag that only "
            "the service can link to the member, and only until the vote closes (the key is then "
            "destroyed), after which it is kept, unlinkable, for anyone to recount"
        ),
        readers=(
            N_(
                "the member themself, until the close; only the totals are published; not even a "
                "database operator can tell whose choice is whose (docs/agreement.md)"
            ),
        ),
        exported=(InExport("driver", "ballots"),),
    ),
    DataKind(
        key="proposers",
        description=N_("Which committee member opened a proposal to change the agreement"),
        purpose=N_("so the committee answers for the proposals it puts to the members"),
        stored=(Storage("bargaining_proposal", ("proposed_by",)),),
        retention=N_("kept with the proposal; cleared if the member's account is removed"),
        readers=(N_("the member themself, in their export"),),
        exported=(InExport("driver", "proposals_made"),),
    ),
    DataKind(
        key="pay_statements",
        description=N_(
            "A driver's statement of each closed pay period: every trip and cancellation fee "
            "on it (times, distance, fare, commission, earnings, engaged time) and the totals "
            "(the floor due, the top-up, the pay)"
        ),
        purpose=N_(
            "to pay the driver what the agreement says, at least the hourly floor, and show it"
        ),
        stored=(Storage("pay_statement"), Storage("pay_statement_line")),
        retention=N_("kept with the co-op's books: a closed statement never changes"),
        readers=(THE_DRIVER, N_("anyone, only as totals of periods with 5 drivers or more")),
        exported=(InExport("driver", "pay_statements"),),
    ),
    DataKind(
        key="patronage_shares",
        description=N_(
            "A member's patronage in a period (engaged time, earnings or trips) and "
            "their share of a dividend, proposed or allocated"
        ),
        purpose=N_("to return the co-op's surplus to members in proportion to their work, by vote"),
        stored=(Storage("patronage_line"), Storage("bargaining_proposal", ("patronage",))),
        retention=N_("kept with the co-op's books: the ledger is append-only"),
        readers=(
            N_("the member themself"),
            N_("anyone, as each line's measure and share without a name or id"),
        ),
        exported=(InExport("driver", "patronage"),),
    ),
    DataKind(
        key="rateable_trips",
        description=N_("For each completed trip: who rode, who drove, when it ended"),
        purpose=N_("so the trip's rider, and only they, can rate it within the rating window"),
        stored=(Storage("reputation_rateable_trip"),),
        retention=WHILE_ACCOUNT,
        readers=(THE_RIDER,),
        exported=(InExport("rider", "completed_trips_on_record"),),
    ),
    DataKind(
        key="ratings",
        description=N_("Stars, comment and tags a rider gave a driver for a trip"),
        purpose=N_("to give drivers feedback and compute the score the agreement defines"),
        stored=(Storage("reputation_rating"),),
        retention=N_("as long as the account exists; removed with it (of the rider or the driver)"),
        readers=(THE_RIDER, THE_RATED_DRIVER, REVIEWERS, ANYONE_AGGREGATE),
        exported=(
            InExport("rider", "ratings_given"),
            InExport("driver", "ratings_received"),
            InExport("driver", "reputation"),
        ),
    ),
    DataKind(
        key="appeals",
        description=N_("A driver's appeal of a rating, its statement, and the decision and reason"),
        purpose=N_("so every rating can be contested before a person"),
        stored=(Storage("reputation_appeal"),),
        retention=WHILE_MEMBER,
        readers=(THE_DRIVER, REVIEWERS, ANYONE_AGGREGATE),
        exported=(
            InExport("driver", "appeals_filed"),
            InExport("driver", "appeals_decided_as_reviewer"),
        ),
    ),
    DataKind(
        key="support_cases",
        description=N_(
            "A note that a driver's score fell below the support threshold, and the "
            "note of the person who reached out"
        ),
        purpose=N_("so a person offers support; never to deactivate anyone"),
        stored=(Storage("reputation_support_case"),),
        retention=WHILE_MEMBER,
        readers=(THE_DRIVER, ADMINS, ANYONE_AGGREGATE),
        exported=(InExport("driver", "support_cases"),),
    ),
    DataKind(
        key="trip_quotes",
        description=N_(
            "Each quote a rider asked for: what it was for, the price and maximum shown, when "
            "it expires, and the trip the rider consented to it for"
        ),
        purpose=N_(
            "to charge no more than the maximum the rider consented to (docs/jurisdiction.md)"
        ),
        stored=(Storage("trip_quote"),),
        retention=N_(
            "an unused quote until the rider asks for another after it expired; a consented "
            "one as long as its trip"
        ),
        readers=(THE_RIDER, ADMINS),
    ),
    DataKind(
        key="capacity_line",
        description=N_(
            "That a driver waits for a place under the authorization's cap of cars in service, "
            "and since when"
        ),
        purpose=N_("to admit waiting drivers first-come when a car leaves (docs/jurisdiction.md)"),
        stored=(Storage("matching_capacity_wait"),),
        retention=N_("while the driver waits; removed when admitted or off duty"),
        readers=(THE_DRIVER, ADMINS),
    ),
    DataKind(
        key="decision_reviews",
        description=N_(
            "A request for a person's review of an automated decision: which decision, the trip "
            "or offer it concerned, what the person wrote, and the answer"
        ),
        purpose=N_("so any automated decision can be looked at again by a person"),
        stored=(Storage("reputation_decision_review"),),
        retention=WHILE_ACCOUNT,
        readers=(N_("the person who asked"), ADMINS, ANYONE_AGGREGATE),
        exported=(InExport("driver", "decision_reviews"), InExport("rider", "decision_reviews")),
    ),
    DataKind(
        key="trip_share_links",
        description=N_(
            "The links a rider, or a driver for their own safety, made so others can follow a "
            "trip: which trip, who made it (rider or driver), when, whether it was made by the "
            "rider's auto-share policy, when it was revoked and when it was first opened; the "
            "link itself only as a hash"
        ),
        purpose=N_(
            "to show the trip to whoever holds the link, to end it when its maker revokes it or "
            "30 minutes after the trip, and to tell its maker once when it is first opened"
        ),
        stored=(Storage("safety_trip_share"),),
        retention=N_(
            "as long as the trip's record; the link opens nothing from 30 minutes after the "
            "trip ends"
        ),
        readers=(
            N_("the party who made the link"),
            N_(
                "anyone holding the link, until 30 minutes after the trip ends: the driver's "
                "first name and approved photo, the car (make, model, colour, plate), the "
                "trip's state and, while "
                "the trip is open, the car's position, where it is heading and the ETA; never an "
                "account id, the rider's name, the fare, nor an address after the trip ends"
            ),
        ),
        exported=(InExport("rider", "trip_shares"), InExport("driver", "trip_shares")),
    ),
    DataKind(
        key="ride_checks",
        description=N_(
            "A ride check: what the service noticed on a trip (a long stop, a drive away from the "
            "destination, a trip not started, an end far away), when and where, the figures that "
            "made it ask, each party's answer (ok or help) and when, and whether it went to a "
            "person"
        ),
        purpose=N_(
            "to ask both parties whether everything is all right, and to have a person help "
            "when one asks for help or nobody answers (docs/safety.md)"
        ),
        stored=(Storage("safety_ride_check"),),
        retention=N_("kept with the trip"),
        readers=(ADMINS,),
    ),
    DataKind(
        key="ride_check_watch",
        description=N_(
            "What the ride check remembers of a trip under way: the car's newest position, where "
            "it stands if stopped, its least distance to the destination"
        ),
        purpose=N_("to notice a long stop or a drive away across the service's restarts"),
        stored=(Storage("safety_ride_watch"),),
        retention=N_("until the trip ends; emptied then"),
        readers=(NOBODY,),
    ),
    DataKind(
        key="safety_alerts",
        description=N_(
            "Each SOS, unanswered ride check and safety case: who raised it (rider or driver), "
            "the trip and its rider and driver, the car's plate and description, a flag's "
            "reason, the raiser's words, when it was raised, acknowledged and resolved, by "
            "which operator, and the outcome (real, false alarm, drill)"
        ),
        purpose=N_(
            "so a person answers every alert and reviews every case; never to act against "
            "anyone by itself, and a false alarm counts against no one"
        ),
        stored=(Storage("safety_alert"),),
        retention=N_(
            "two years after it is resolved (a real incident may be needed by the person or "
            "the police); drills and false alarms 90 days after"
        ),
        readers=(ADMINS, ANYONE_AGGREGATE),
    ),
    DataKind(
        key="safety_alert_positions",
        description=N_(
            "Where the person who raised an SOS was when they raised it and every 2 s until it "
            "was resolved, and the car's last known position"
        ),
        purpose=N_("so the person who answers an SOS knows where to send help"),
        stored=(Storage("safety_alert_position"),),
        retention=N_("as long as the alert (above); no position is taken once it is resolved"),
        readers=(ADMINS,),
    ),
    DataKind(
        key="safety_alert_notes",
        description=N_("The operators' notes on an alert or a case, and who wrote them"),
        purpose=N_("so whoever takes an alert or case over knows what was done"),
        stored=(Storage("safety_alert_note"),),
        retention=N_("as long as the alert (above)"),
        readers=(ADMINS,),
    ),
    DataKind(
        key="push_devices",
        description=N_(
            "Each device registered for push notifications: its push service's address for it "
            "and its encryption keys, its platform and language, the token it was registered "
            "with, when it was registered and last pushed to; and the kinds of push the account "
            "chose"
        ),
        purpose=N_(
            "to reach a phone whose app is in the background with an offer or a change it must "
            "act on (docs/push.md)"
        ),
        stored=(Storage("push_device"), Storage("push_preference")),
        retention=N_(
            "until the device is removed, the token it was registered with is revoked, or its "
            "push service says the subscription ended; the choice of kinds as long as the account"
        ),
        readers=(N_("the account holder (never the address or keys: they are only used to push)"),),
    ),
    DataKind(
        key="driver_photo",
        description=N_(
            "A driver's photo as the service re-encoded it (no metadata of the file sent: no "
            "place, device or time), its size and digest, whether a person approved or "
            "rejected it, when, which operator account, and the reason of a rejection"
        ),
        purpose=N_("so a rider recognises the driver who comes for them (docs/safety.md)"),
        stored=(Storage("driver_photo"),),
        retention=N_(
            "as long as the membership exists; a new upload replaces it, and it is removed "
            "with the account"
        ),
        readers=(
            THE_DRIVER,
            ADMINS,
            N_(
                "the rider of a trip the driver accepted, once approved, while the driver is "
                "coming and the ride lasts"
            ),
        ),
        exported=(InExport("driver", "photo"),),
    ),
    DataKind(
        key="pickup_pin",
        description=N_(
            "The four-digit PIN of a trip whose rider asked for one, how many wrong PINs the "
            "driver sent, and when the rider confirmed their car in the app"
        ),
        purpose=N_("so the rider gets into the car that was sent for them (docs/safety.md)"),
        stored=(Storage("trip_pin"),),
        retention=N_(
            "the digits until the ride starts, or until the matcher's next sweep (seconds) "
            "after a trip ends without its ride; the count and the confirmation as long as "
            "the trip"
        ),
        readers=(
            N_(
                "the trip's rider, while the trip waits for its pickup (never the driver, a "
                "log, the audit log or an export)"
            ),
        ),
    ),
    DataKind(
        key="rider_safety_preferences",
        description=N_(
            "A rider's safety choices: the PIN policy, the trip-sharing policy, and up to five "
            "trusted contacts (a name and a phone number or an email address each)"
        ),
        purpose=N_(
            "to ask for a PIN at pickup as the rider chose, and to share their trips with "
            "the people they chose (docs/safety.md)"
        ),
        stored=(Storage("rider_safety"),),
        retention=WHILE_ACCOUNT,
        readers=(THE_RIDER,),
        exported=(InExport("rider", "safety"),),
    ),
    DataKind(
        key="driver_safety_preferences",
        description=N_(
            "A driver's trip-sharing choices, for their own safety: the trip-sharing policy "
            "and up to five trusted contacts (a name and a phone number or an email address "
            "each)"
        ),
        purpose=N_("to share the driver's trips with the people they chose (docs/safety.md)"),
        stored=(Storage("driver_safety"),),
        retention=WHILE_ACCOUNT,
        readers=(THE_DRIVER,),
        exported=(InExport("driver", "safety"),),
    ),
)


@dataclass(frozen=True)
class NotPersonal:
    """Columns that hold no personal data, and why; '*' means every column not named above."""

    table: str
    why: str
    columns: tuple[str, ...] = (ALL_COLUMNS,)


NOT_PERSONAL: tuple[NotPersonal, ...] = (
    NotPersonal(
        "matching_leader_epoch",
        "which worker process leads a region's matcher, numbered; about no one",
    ),
    NotPersonal(
        "trip_fare_cap",
        "the fare caps the Minister declared, as recorded: public decisions, about no one",
    ),
    NotPersonal(
        "agreement_version",
        "the collective agreement's terms; public, about no one",
    ),
    NotPersonal(
        "bargaining_proposal",
        "the proposed terms, their rationale, the vote's totals: public, about no one "
        "(except the proposer, declared above)",
    ),
    NotPersonal(
        "bargaining_ballot_key",
        "a random salt per open vote, deleted when it closes; about no one",
    ),
    NotPersonal(
        "pay_period",
        "the calendar of pay periods and the floor that applied; about no one",
    ),
    NotPersonal(
        "patronage_allocation",
        "a dividend's totals (surplus, reserve, how many members): public, about no one",
    ),
    NotPersonal(
        "audit_entry",
        "ids of decisions, versions, counts and outcomes only; never a name, reason or statement",
    ),
    NotPersonal(
        "matching_travel_cell",
        "the travel-time model: metres, seconds and a count of trips summed per map cell and hour "
        "of the week, over every driver; about no one",
    ),
    NotPersonal(
        "matching_travel_model",
        "when the travel-time model was recomputed and how far through the completed trips it "
        "read (the id and end time of the last one); no person",
    ),
    NotPersonal(
        "bargaining_impact_replay",
        "a proposal's impact replayed on recent days: figures over all drivers and riders (shares, "
        "means, percentiles, Gini coefficients, totals), the days' dates; about no one",
    ),
)

NONE_SOLD = N_(
    "No personal data is sold, rented, or shared with advertisers or data brokers. It is used "
    "only to run the service and the co-op, as each entry says."
)
READERS_NOTE = N_(
    "Readers are who can read the data through the service. Besides them, the co-op's database "
    "operators can read any table; they do so only to keep the service running."
)


def personal_columns() -> dict[str, set[str]]:
    """table -> columns the register names as personal data ('*' for all)."""
    declared: dict[str, set[str]] = {}
    for kind in REGISTER:
        for storage in kind.stored:
            if storage.table is not None:
                declared.setdefault(storage.table, set()).update(storage.columns)
    return declared


def not_personal_columns() -> dict[str, set[str]]:
    """table -> columns declared to hold no personal data ('*' for all)."""
    declared: dict[str, set[str]] = {}
    for entry in NOT_PERSONAL:
        declared.setdefault(entry.table, set()).update(entry.columns)
    return declared


def to_markdown() -> str:
    """The register as the Markdown page docs/data-register.md (a test keeps the two equal)."""
    lines = [
        "# Data register",
        "",
        "<!-- Generated by `python -m reputation.data_register` from reputation/data_register.py;"
        " edit that file, not this one. -->",
        "",
        "Every kind of personal data the co-op keeps, where, for how long, and who can read it. "
        "The service publishes the same register at `GET /v1/transparency/data`, and a test "
        "checks it against every column of every table, so it cannot fall behind the code.",
        "",
        f"**{NONE_SOLD}**",
        "",
        READERS_NOTE,
        "",
    ]
    for kind in REGISTER:
        lines += [
            f"## {kind.description}",
            "",
            f"- Kind: `{kind.key}`",
            f"- Why: {kind.purpose}",
            "- Where: " + "; ".join(storage.describe() for storage in kind.stored),
            f"- For how long: {kind.retention}",
            "- Who can read it: " + "; ".join(kind.readers),
            "- In the export: "
            + ("; ".join(place.describe() for place in kind.exported) or "not exported"),
            "- Sold: never",
            "",
        ]
    lines += ["## Kept, but not personal", ""]
    for entry in NOT_PERSONAL:
        what = "every column" if entry.columns == (ALL_COLUMNS,) else ", ".join(entry.columns)
        if entry.columns == (ALL_COLUMNS,) and entry.table in personal_columns():
            what = "every other column"
        lines.append(f"- `{entry.table}` ({what}): {entry.why}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(to_markdown(), end="")
