"""Finding an account, for the operators: by a part of the name (case and accents aside), a
driver's member number or the exact id, across every kind of account; and what an operator
needs to know of one. `GET /v1/accounts` and `GET /v1/accounts/{account_id}` (operators only)
and the operators' pages (`/admin`) call the same functions.

Riders and drivers are two domains that never import each other, so each searches its own table
(`riders.service.search`, `drivers.service.search`) in one order (the folded name, then the id:
`coop.search`), and this composition merges their pages: a keyset page of each, merged, is a
keyset page of all.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from coop import paging
from coop.auth import Admin, AuthToken, Role, is_live
from coop.clock import Now
from coop.dependencies import SessionDep
from coop.passkeys import Passkey
from coop.recovery import AccountNotFound, RecoveryLink
from coop.search import Match
from coop.settings import Settings
from coop.state import CoreState, state_of
from dispatch.safety.models import SafetyAlert
from drivers import service as drivers_service
from drivers.models import Driver
from riders import service as riders_service
from riders.models import Rider

LISTING = "accounts"
# As far back as the person's own page lists the links issued for them.
RECOVERY_LINKS_SHOWN = timedelta(days=90)
QUERY_MAX_CHARS = 200

Kind = Literal["driver", "rider", "operator"]


class AccountOut(BaseModel):
    """An account as the operators find it."""

    id: uuid.UUID
    kind: Kind = Field(description="`operator`: a personal admin account (found by id only)")
    name: str | None = Field(description="null for an operator, who has no name on record")
    status: Literal["active", "inactive"] | None = Field(description="a driver's; null otherwise")
    member_number: str | None = Field(description="a driver's; null otherwise")
    created_at: datetime


class RecoveryLinkIssued(BaseModel):
    """A one-time sign-in link issued for the account (never the link itself)."""

    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None


class AccountDetail(AccountOut):
    """What an operator needs before acting on an account."""

    live_tokens: int = Field(description="tokens neither revoked nor expired (page sessions too)")
    passkeys: int
    open_safety_cases: int = Field(
        description="SOS alerts and safety cases not resolved in which the account is a party"
    )
    recovery_links: list[RecoveryLinkIssued] = Field(
        description="the sign-in links issued for the account in the last 90 days, newest first "
        "(the person sees the same list on their page)"
    )


def _out(match: Match) -> AccountOut:
    return AccountOut.model_validate(match, from_attributes=True)


async def find(*, session: AsyncSession, account_id: uuid.UUID) -> Match | None:
    """The account with this id, whatever its kind; None if there is none."""
    driver = await session.get(Driver, account_id)
    if driver is not None:
        return Match(
            kind="driver",
            id=driver.id,
            name=driver.name,
            status=driver.status.value,
            member_number=driver.member_number,
            created_at=driver.created_at,
        )
    rider = await session.get(Rider, account_id)
    if rider is not None:
        return Match("rider", rider.id, rider.name, None, None, rider.created_at)
    # A personal admin account is no row of its own: its tokens say it exists.
    first = await session.scalar(
        select(func.min(AuthToken.created_at)).where(
            AuthToken.subject_id == account_id, AuthToken.role == Role.admin
        )
    )
    if first is not None:
        return Match("operator", account_id, None, None, None, first)
    return None


async def search(
    *,
    session: AsyncSession,
    query: str,
    kind: Kind | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[AccountOut], str | None]:
    """Accounts whose name holds `query` (case and accents aside; a driver's exact member number
    too), in the order of their folded name, a page at a time; an id finds its account alone,
    an operator included. An empty query lists every rider and driver."""
    # What cannot be in a name (a NUL, a control character) cannot be searched for either;
    # PostgreSQL would refuse a NUL in a text parameter.
    query = "".join(char for char in query if char.isprintable()).strip()
    try:
        as_id = uuid.UUID(query)
    except ValueError:
        as_id = None
    if as_id is not None:
        found = await find(session=session, account_id=as_id)
        if found is None or (kind is not None and found.kind != kind):
            return [], None
        return [_out(found)], None
    after = paging.decode_cursor(cursor, LISTING, (str, uuid.UUID)) if cursor else None
    matches: list[Match] = []
    if kind in (None, "driver"):
        matches += await drivers_service.search(
            session=session, query=query, after=after, limit=limit + 1
        )
    if kind in (None, "rider"):
        matches += await riders_service.search(
            session=session, query=query, after=after, limit=limit + 1
        )
    matches.sort(key=lambda match: match.sort_key)
    page, next_cursor = paging.page_of(matches, limit, lambda match: match.sort_key, LISTING)
    return [_out(match) for match in page], next_cursor


async def detail(
    *, session: AsyncSession, settings: Settings, account_id: uuid.UUID, now: datetime
) -> AccountDetail:
    """An account with what an operator weighs before acting: live tokens, passkeys, open
    safety cases."""
    found = await find(session=session, account_id=account_id)
    if found is None:
        raise AccountNotFound()
    tokens = await session.scalars(
        select(AuthToken).where(AuthToken.subject_id == account_id, AuthToken.revoked_at.is_(None))
    )
    live = sum(1 for token in tokens if is_live(token, settings, now))
    passkeys = await session.scalar(
        select(func.count()).select_from(Passkey).where(Passkey.subject_id == account_id)
    )
    cases = await session.scalar(
        select(func.count())
        .select_from(SafetyAlert)
        .where(
            SafetyAlert.resolved_at.is_(None),
            SafetyAlert.drill.is_(False),
            or_(SafetyAlert.rider_id == account_id, SafetyAlert.driver_id == account_id),
        )
    )
    links = await session.scalars(
        select(RecoveryLink)
        .where(
            RecoveryLink.subject_id == account_id,
            RecoveryLink.issued_at >= now - RECOVERY_LINKS_SHOWN,
        )
        .order_by(RecoveryLink.issued_at.desc())
    )
    return AccountDetail(
        **_out(found).model_dump(),
        live_tokens=live,
        passkeys=int(passkeys or 0),
        open_safety_cases=int(cases or 0),
        recovery_links=[
            RecoveryLinkIssued(
                issued_at=link.issued_at, expires_at=link.expires_at, used_at=link.used_at
            )
            for link in links
        ],
    )


router = APIRouter(prefix="/v1/accounts", tags=["accounts"])


@router.get("", response_model=list[AccountOut])
async def list_accounts(
    request: Request,
    response: Response,
    session: SessionDep,
    _: Admin,
    q: Annotated[
        str,
        Query(
            max_length=QUERY_MAX_CHARS,
            description="a part of the name (case and accents aside), a driver's member number, "
            "or an account's id; empty: every rider and driver",
        ),
    ] = "",
    kind: Annotated[Literal["driver", "rider"] | None, Query()] = None,
    limit: paging.LimitQuery = paging.DEFAULT_LIMIT,
    cursor: paging.CursorQuery = None,
) -> list[AccountOut]:
    """Finds accounts (operators only), by name, member number or id, a page at a time in the
    order of the name (docs/protocol.md, "Paging")."""
    found, next_cursor = await search(
        session=session, query=q, kind=kind, limit=limit, cursor=cursor
    )
    paging.set_next(request, response, next_cursor)
    return found


@router.get("/{account_id}", response_model=AccountDetail)
async def read_account(
    account_id: uuid.UUID, request: Request, session: SessionDep, _: Admin, now: Now
) -> AccountDetail:
    """An account, whatever its kind, with its live tokens, passkeys and open safety cases
    (operators only)."""
    settings = state_of(request.app, CoreState).settings
    return await detail(session=session, settings=settings, account_id=account_id, now=now)
