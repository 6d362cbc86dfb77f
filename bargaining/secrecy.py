"""Ballot secrecy at rest: who voted what is known only while the vote is open, and only to the
service.

Each open proposal has a random 256-bit salt in `bargaining_ballot_key`. Its ballot key is
HMAC-SHA256 of the proposal's id and salt under the service's master key (`COOP_BALLOT_KEY`,
which is never stored in the database). A ballot is stored as (proposal, voter tag, choice), the
tag being HMAC-SHA256 of the member's id under the ballot key:

- while the vote is open, the service recomputes a member's tag to replace their choice or show
  it to them; a reader of the database, lacking the master key, cannot;
- at the close the salt is deleted in the transaction that counts the vote: from then on the
  tags are random-looking strings that no one, the service included, can link to anyone;
- the tally stays a plain count of the choices in `bargaining_sealed_ballot`, which anyone with
  the database can redo.

Threat model: docs/agreement.md, "Ballot secrecy".
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

from bargaining.models import BallotChoice

SALT_BYTES = 32
_KEY_CONTEXT = b"coop.ballot-key.v1\x00"
_TAG_CONTEXT = b"coop.voter-tag.v1\x00"


def new_salt() -> bytes:
    return secrets.token_bytes(SALT_BYTES)


def ballot_key(master: bytes, proposal_id: uuid.UUID, salt: bytes) -> bytes:
    return hmac.new(master, _KEY_CONTEXT + proposal_id.bytes + salt, hashlib.sha256).digest()


def voter_tag(key: bytes, driver_id: uuid.UUID) -> bytes:
    return hmac.new(key, _TAG_CONTEXT + driver_id.bytes, hashlib.sha256).digest()


@dataclass(frozen=True)
class OwnBallot:
    """A member's own ballot as they may see it: on the roll or not, their choice while the
    vote is open, and `sealed` once it has closed (the link to them is gone). No date: a ballot
    keeps none (docs/agreement.md, "Ballot secrecy")."""

    eligible: bool
    choice: BallotChoice | None
    sealed: bool
