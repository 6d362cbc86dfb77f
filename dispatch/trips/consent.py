"""A rider's consent to a maximum price, before any driver is told (docs/jurisdiction.md).

Québec's law (T-11.2 ss. 93-98) lets a dispatcher price a trip by a technological means only if
the rider knows in writing the most it can cost before consenting to it. So a quote is a record:
`POST /v1/quotes` keeps what the rider was shown (the estimate, the maximum fare the meter may
reach, the dues and taxes the law adds, and the maximum total), under an unguessable id that
expires; `POST /v1/trips` with that id is the rider's consent, and the trip takes its price terms
from the record, not from a new computation. A quote is consented to once.

The maximum is the agreement's own cap (`bargaining.fares.over_quote_cap`: the quote plus the
class's `max_over_quote_percent`), with the jurisdiction's dues and taxes on it
(`coop.levies`): a fare never exceeds the cap, and what the law adds grows with the fare, so
the rider is never billed more than the consented `max_total`.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Integer, Numeric, String, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bargaining import fares
from bargaining.terms import QUOTE_VALID_S_BEFORE_TERM, Terms
from coop.db import Base
from coop.errors import Conflict
from coop.jurisdiction import Profile
from coop.levies import Charges, charges


class QuoteRequired(Conflict):
    type = "quote_required"
    title = "A trip is requested with the id of a quote the rider consents to"


class QuoteExpired(Conflict):
    type = "quote_expired"
    title = "The quote has expired: ask for a new one"


class QuoteMismatch(Conflict):
    type = "quote_mismatch"
    title = "The quote is for another pickup, destination or class"


class QuoteUsed(Conflict):
    type = "quote_used"
    title = "The quote was already consented to for another trip"


class TripQuote(Base):
    """What a rider was shown before consenting: kept as shown, consented to at most once."""

    __tablename__ = "trip_quote"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    rider_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("rider.id", ondelete="CASCADE"), index=True
    )
    # The sha256 of the ask (pickup, dropoff, class) as `trip_ask_digest` writes it.
    ask_sha256: Mapped[str] = mapped_column(String(64))
    # The fare engine's quote as shown (`total` is the estimate).
    quote: Mapped[dict[str, Any]] = mapped_column(JSONB)
    agreement_version: Mapped[int] = mapped_column(Integer)
    max_fare: Mapped[Decimal] = mapped_column(Numeric(9, 2))
    max_total: Mapped[Decimal] = mapped_column(Numeric(9, 2))
    # The law's lines on the maximum: [{kind, code, name: {fr, en}, amount, percent}].
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    jurisdiction: Mapped[str] = mapped_column(String(40))
    jurisdiction_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    consented_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    trip_id: Mapped[uuid.UUID | None] = mapped_column(unique=True, default=None)


def trip_ask_digest(ask: dict[str, Any]) -> str:
    """The fingerprint of what a quote is for: the same JSON as the rider sent, canonical."""
    canonical = json.dumps(ask, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def valid_s(terms: Terms) -> int:
    return terms.dispatch.quote_valid_s or QUOTE_VALID_S_BEFORE_TERM


def _lines(billed: Charges) -> list[dict[str, Any]]:
    return [
        {
            "kind": levy.kind,
            "code": levy.code,
            "name": {"fr": levy.name.fr, "en": levy.name.en},
            "amount": f"{levy.amount:.2f}",
            "percent": None if levy.percent is None else f"{levy.percent.normalize():f}",
        }
        for levy in billed.levies
    ]


async def record(
    *,
    session: AsyncSession,
    rider_id: uuid.UUID,
    ask: dict[str, Any],
    quote: dict[str, Any],
    terms: Terms,
    service_class: str,
    profile: Profile,
    now: datetime,
    ceiling: Decimal | None = None,
) -> TripQuote:
    """Keeps the quote `rider_id` is shown, with its maximum (held under `ceiling`, the law's
    declared cap for this route, if any), until it expires (committed by the caller)."""
    max_fare = fares.over_quote_cap(
        terms, service_class=service_class, quote_total=Decimal(str(quote["total"]))
    )
    if ceiling is not None:
        max_fare = min(max_fare, ceiling)
    billed = charges(profile, max_fare)
    row = TripQuote(
        id=uuid.uuid4(),
        rider_id=rider_id,
        ask_sha256=trip_ask_digest(ask),
        quote=quote,
        agreement_version=int(quote["agreement_version"]),
        max_fare=max_fare,
        max_total=billed.total,
        lines=_lines(billed),
        jurisdiction=profile.key,
        jurisdiction_version=profile.version,
        created_at=now,
        expires_at=now + timedelta(seconds=valid_s(terms)),
    )
    session.add(row)
    await session.flush()
    return row


async def consent(
    *,
    session: AsyncSession,
    rider_id: uuid.UUID,
    quote_id: uuid.UUID,
    ask: dict[str, Any],
    now: datetime,
) -> TripQuote:
    """The rider's quote `quote_id`, locked, checked to be theirs, open, unused and for this
    ask; the caller records the trip on it (`bind`) in the same transaction."""
    row = await session.scalar(
        select(TripQuote)
        .where(TripQuote.id == quote_id, TripQuote.rider_id == rider_id)
        .with_for_update()
    )
    if row is None:  # unknown, or another rider's: the same answer, so ids cannot be probed
        raise QuoteRequired(f"No quote {quote_id} of yours: ask POST /v1/quotes for one")
    if row.trip_id is not None:
        raise QuoteUsed(f"Quote {quote_id} was consented to for trip {row.trip_id}")
    if now >= row.expires_at:
        raise QuoteExpired(f"Quote {quote_id} expired at {row.expires_at.isoformat()}")
    if row.ask_sha256 != trip_ask_digest(ask):
        raise QuoteMismatch(
            f"Quote {quote_id} is for another pickup, destination or class than this request"
        )
    return row


def bind(row: TripQuote, *, trip_id: uuid.UUID, now: datetime) -> None:
    """Records that the rider consented to `row` for `trip_id`."""
    row.trip_id = trip_id
    row.consented_at = now
