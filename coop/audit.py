"""The audit log: an append-only table whose entries form a hash chain anyone can verify.

Any package appends to it inside its own transaction (`append`), so an entry exists exactly when
the decision it records was committed. Entries hold no personal data: ids, versions, counts and
outcomes only. The construction is documented in docs/audit.md; in short, per entry:

    digest = sha256(canonical(content))
    hash   = sha256(canonical({seq, at, kind, subject, digest, prev_hash}))

where canonical(x) is the UTF-8 JSON of x with sorted keys and no spaces, and the first entry's
prev_hash is 64 zeros. Shared infrastructure: this module imports no domain package.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import BigInteger, DateTime, String, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from coop import paging
from coop.db import Base, create_engine, create_sessionmaker, utcnow
from coop.dependencies import SessionDep

GENESIS_HASH = "0" * 64
# pg_advisory_xact_lock key serialising appends ("coopaudt" in ASCII): two concurrent appends
# would otherwise both read the same last entry and fork the chain.
AUDIT_LOCK_KEY = 0x636F6F7061756474
_VERIFY_PAGE = 1000

JsonValue = str | int | bool | None | list["JsonValue"] | dict[str, "JsonValue"]


class AuditEntry(Base):
    __tablename__ = "audit_entry"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200))
    content: Mapped[dict[str, Any]] = mapped_column(JSONB)
    digest: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


def canonical(value: object) -> bytes:
    """UTF-8 JSON, keys sorted, no spaces: the bytes that are hashed."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def format_at(at: datetime) -> str:
    """The one spelling of a time in the chain: UTC, microseconds, `Z`."""
    if at.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalise_content(value: object, path: str = "content") -> JsonValue:
    """Content as plain JSON: ids, decimals and times become strings; floats are refused."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        raise TypeError(f"{path}: floats are not allowed in audit content (use a string)")
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return format_at(value)
    if isinstance(value, Mapping):
        out: dict[str, JsonValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path}: keys must be strings")
            out[key] = normalise_content(item, f"{path}.{key}")
        return out
    if isinstance(value, Sequence):
        return [normalise_content(item, f"{path}[{i}]") for i, item in enumerate(value)]
    raise TypeError(f"{path}: {type(value).__name__} is not allowed in audit content")


def content_digest(content: Mapping[str, object]) -> str:
    return sha256_hex(canonical(content))


def entry_hash(*, seq: int, at: str, kind: str, subject: str, digest: str, prev_hash: str) -> str:
    return sha256_hex(
        canonical(
            {
                "seq": seq,
                "at": at,
                "kind": kind,
                "subject": subject,
                "digest": digest,
                "prev_hash": prev_hash,
            }
        )
    )


async def append(
    *,
    session: AsyncSession,
    kind: str,
    subject: str,
    content: dict[str, object],
    at: datetime | None = None,
) -> AuditEntry:
    """Adds an entry to the chain in the caller's transaction, dated `at` (the caller's clock;
    the system's for the callers that pass none yet); the caller commits."""
    if not kind or len(kind) > 64 or not subject or len(subject) > 200:
        raise ValueError("kind (1..64 chars) and subject (1..200 chars) are required")
    normalised = normalise_content(content)
    assert isinstance(normalised, dict)
    # Held until the caller's transaction ends, so the next append sees this entry.
    await session.execute(select(func.pg_advisory_xact_lock(AUDIT_LOCK_KEY)))
    last = (
        await session.execute(
            select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
        )
    ).first()
    seq = last.seq + 1 if last else 1
    prev_hash = last.hash if last else GENESIS_HASH
    at = at if at is not None else utcnow()
    digest = content_digest(normalised)
    entry = AuditEntry(
        seq=seq,
        at=at,
        kind=kind,
        subject=subject,
        content=normalised,
        digest=digest,
        prev_hash=prev_hash,
        hash=entry_hash(
            seq=seq,
            at=format_at(at),
            kind=kind,
            subject=subject,
            digest=digest,
            prev_hash=prev_hash,
        ),
    )
    session.add(entry)
    await session.flush()
    return entry


@dataclass(frozen=True)
class VerificationResult:
    ok: bool
    entries: int  # how many entries were checked and found sound
    first_bad_seq: int | None
    reason: str | None
    head_hash: str  # the hash of the last sound entry (64 zeros for an empty log)


class ChainEntry(Protocol):
    """What verification reads of an entry: a row of the table or an `AuditEntry`."""

    @property
    def seq(self) -> int: ...
    @property
    def at(self) -> datetime: ...
    @property
    def kind(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def content(self) -> dict[str, Any]: ...
    @property
    def digest(self) -> str: ...
    @property
    def prev_hash(self) -> str: ...
    @property
    def hash(self) -> str: ...


def check_entry(entry: ChainEntry, *, expected_seq: int, prev_hash: str) -> str | None:
    """Why this entry breaks the chain, or None if it is sound."""
    if entry.seq != expected_seq:
        return f"expected seq {expected_seq}, found {entry.seq}: an entry is missing"
    if entry.digest != content_digest(entry.content):
        return "the content does not match its digest"
    if entry.prev_hash != prev_hash:
        return "prev_hash is not the hash of the entry before"
    recomputed = entry_hash(
        seq=entry.seq,
        at=format_at(entry.at),
        kind=entry.kind,
        subject=entry.subject,
        digest=entry.digest,
        prev_hash=entry.prev_hash,
    )
    if entry.hash != recomputed:
        return "the hash does not match the entry"
    return None


async def verify(*, session: AsyncSession) -> VerificationResult:
    """Walks the whole chain from the first entry; reports the first entry that breaks it."""
    checked = 0
    prev_hash = GENESIS_HASH
    after = 0
    while True:
        # Plain rows, not ORM objects: a long log is walked in pages, never held in memory.
        page: Sequence[ChainEntry] = (
            await session.execute(
                select(*AuditEntry.__table__.columns)
                .where(AuditEntry.seq > after)
                .order_by(AuditEntry.seq)
                .limit(_VERIFY_PAGE)
            )
        ).all()
        if not page:
            return VerificationResult(True, checked, None, None, prev_hash)
        for entry in page:
            reason = check_entry(entry, expected_seq=checked + 1, prev_hash=prev_hash)
            if reason is not None:
                return VerificationResult(False, checked, entry.seq, reason, prev_hash)
            checked += 1
            prev_hash = entry.hash
            after = entry.seq


async def verify_database(database_url: str) -> VerificationResult:
    """Verifies the chain of the database at `database_url` (the CLI's `verify-audit`)."""
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with create_sessionmaker(engine)() as session:
            return await verify(session=session)
    finally:
        await engine.dispose()


def describe(result: VerificationResult) -> str:
    if result.ok:
        return f"audit log intact: {result.entries} entries, head hash {result.head_hash}"
    return (
        f"audit log BROKEN at seq {result.first_bad_seq}: {result.reason} "
        f"({result.entries} entries before it are sound, last sound hash {result.head_hash})"
    )


class AuditEntryOut(BaseModel):
    seq: int
    at: str
    kind: str
    subject: str
    content: dict[str, Any]
    digest: str
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryOut:
        return cls(
            seq=entry.seq,
            at=format_at(entry.at),
            kind=entry.kind,
            subject=entry.subject,
            content=entry.content,
            digest=entry.digest,
            prev_hash=entry.prev_hash,
            hash=entry.hash,
        )


async def entries_after(*, session: AsyncSession, after: int, limit: int) -> list[AuditEntry]:
    """Up to `limit` entries with seq > after, in order."""
    rows = await session.scalars(
        select(AuditEntry).where(AuditEntry.seq > after).order_by(AuditEntry.seq).limit(limit)
    )
    return list(rows)


async def latest_entries(
    *, session: AsyncSession, limit: int, before: int | None = None
) -> list[AuditEntry]:
    """The `limit` newest entries (below `seq` `before`, when given), newest first."""
    query = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)
    if before is not None:
        query = query.where(AuditEntry.seq < before)
    return list(await session.scalars(query))


router = APIRouter(prefix="/v1/audit", tags=["transparency"])

# The audit log's own bounds predate the common paging convention and are kept (docs/protocol.md).
AUDIT_DEFAULT_LIMIT = 100
AUDIT_MAX_LIMIT = 1000


@router.get("", response_model=list[AuditEntryOut])
async def read_audit_log(
    request: Request,
    response: Response,
    session: SessionDep,
    after: Annotated[
        int, Query(ge=0, le=paging.BIGINT_MAX, description="Entries with seq above this")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=AUDIT_MAX_LIMIT)] = AUDIT_DEFAULT_LIMIT,
    cursor: paging.CursorQuery = None,
) -> list[AuditEntryOut]:
    """The log, oldest first; page with `after` = the last seq you have, or with the
    `X-Next-Cursor` of the previous page. Anyone may read it."""
    if cursor is not None:
        (cursor_seq,) = paging.decode_cursor(cursor, "audit", (int,))
        after = max(after, cursor_seq)
    entries = await entries_after(session=session, after=after, limit=limit + 1)
    page, next_cursor = paging.page_of(entries, limit, lambda entry: (entry.seq,), "audit")
    paging.set_next(request, response, next_cursor)
    return [AuditEntryOut.of(entry) for entry in page]
