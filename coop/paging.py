"""Paged lists: a bounded `limit`, an opaque `cursor`, and the next page named in headers.

One convention for every list of the API (docs/protocol.md, "Paging"):

- `?limit=` 1-500, default 50 (`LimitQuery`); `?cursor=` the value the previous page gave
  (`CursorQuery`). Anything else is `422 validation_error` naming `query.limit` or
  `query.cursor`.
- The body stays what v1 defined, a JSON array: a plain GET answers the first page.
- When there is a next page, the answer carries `X-Next-Cursor: <cursor>` and
  `Link: <...same query, cursor=...>; rel="next"`. The last page carries neither.
- Pages are keyset pages: a cursor holds the sort key of the last item served, so an item
  inserted or removed meanwhile never shifts a page (nothing is skipped or served twice
  that existed throughout). A cursor belongs to its list: another list's cursor is refused.
- A cursor is signed (a truncated HMAC under the key `install_cursor_key` sets), so one the
  service did not give, made up or altered, is refused even when it decodes to a key.

Integer query parameters everywhere are bounded (`BoundedInt` below), so no number reaches the
database that it cannot hold.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

from fastapi import Query, Request, Response
from sqlalchemy import ColumnElement, and_, or_

from coop.errors import UnprocessableEntity

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# The largest value of a PostgreSQL bigint: a bound for any integer that meets the database.
BIGINT_MAX = 2**63 - 1
CURSOR_MAX_CHARS = 512

LimitQuery = Annotated[
    int,
    Query(
        ge=1, le=MAX_LIMIT, description=f"Items per page, 1-{MAX_LIMIT} (default {DEFAULT_LIMIT})"
    ),
]
CursorQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=CURSOR_MAX_CHARS,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Where the page starts: the X-Next-Cursor of the previous page",
    ),
]

T = TypeVar("T")

# The tag that ends every cursor: the first 16 bytes of HMAC-SHA256 of the rest, unpadded
# URL-safe base64 (22 characters).
_TAG_BYTES = 16
_TAG_CHARS = 22
# Until the app installs the key every worker shares, a key of this process alone: cursors
# still work within it, and one from anywhere else is refused rather than trusted.
_cursor_key = secrets.token_bytes(32)


def install_cursor_key(key: bytes) -> None:
    """Sets the key cursors are signed with: the app factory derives it from a service key, so
    a cursor given by one worker is good on every other, and after a restart."""
    global _cursor_key
    _cursor_key = key


def _tag(payload: str) -> str:
    digest = hmac.new(_cursor_key, payload.encode(), hashlib.sha256).digest()[:_TAG_BYTES]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


# How each kind of key value travels in a cursor, and back.
_ENCODERS: dict[type, Callable[[Any], Any]] = {
    datetime: lambda value: value.isoformat(),
    date: lambda value: value.isoformat(),
    uuid.UUID: str,
    int: int,
    str: str,
}


class BadCursor(UnprocessableEntity):
    """A cursor this list did not give (or that was altered)."""

    def __init__(self) -> None:
        super().__init__(
            "query.cursor: not a cursor of this list; use the X-Next-Cursor of its previous page",
            errors=[{"field": "query.cursor", "reason": "Not a cursor of this list"}],
        )


def encode_cursor(listing: str, key: Sequence[Any]) -> str:
    values = [_ENCODERS[type(value) if type(value) in _ENCODERS else str](value) for value in key]
    raw = json.dumps([listing, *values], separators=(",", ":")).encode()
    payload = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return payload + _tag(payload)


def decode_cursor(cursor: str, listing: str, types: Sequence[type]) -> tuple[Any, ...]:
    """The key a cursor holds, typed; `BadCursor` for anything this list did not give."""
    payload, tag = cursor[:-_TAG_CHARS], cursor[-_TAG_CHARS:]
    if not payload or not hmac.compare_digest(tag, _tag(payload)):
        raise BadCursor()  # not one this service gave: made up, altered or truncated
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        decoded = json.loads(raw)
        if not isinstance(decoded, list) or decoded[:1] != [listing]:
            raise BadCursor()
        values = decoded[1:]
        if len(values) != len(types):
            raise BadCursor()
        key: list[Any] = []
        for kind, value in zip(types, values, strict=True):
            if kind is datetime:
                parsed = datetime.fromisoformat(value)
                if parsed.tzinfo is None:
                    raise BadCursor()
                key.append(parsed)
            elif kind is date:
                if not isinstance(value, str):
                    raise BadCursor()
                key.append(date.fromisoformat(value))
            elif kind is uuid.UUID:
                key.append(uuid.UUID(value))
            elif kind is int:
                if not isinstance(value, int) or isinstance(value, bool):
                    raise BadCursor()
                if not -BIGINT_MAX - 1 <= value <= BIGINT_MAX:
                    raise BadCursor()
                key.append(value)
            else:
                if not isinstance(value, str):
                    raise BadCursor()
                key.append(value)
        return tuple(key)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, AttributeError) as exc:
        raise BadCursor() from exc


def after_key(columns: Sequence[tuple[Any, bool]], key: Sequence[Any]) -> ColumnElement[bool]:
    """The rows strictly after `key` in the order of `columns` (each `(column, descending)`):
    (c1 after v1) or (c1 = v1 and c2 after v2) or ..."""
    clauses = []
    for position, (column, descending) in enumerate(columns):
        equal = [columns[i][0] == key[i] for i in range(position)]
        beyond = column < key[position] if descending else column > key[position]
        clauses.append(and_(*equal, beyond))
    return or_(*clauses)


def page_of(
    items: Sequence[T], limit: int, sort_key: Callable[[T], Sequence[Any]], listing: str
) -> tuple[list[T], str | None]:
    """The first `limit` of `items` (fetched as `limit + 1` to know if more follow) and the cursor
    of the next page, or None on the last."""
    page = list(items[:limit])
    if len(items) <= limit or not page:
        return page, None
    return page, encode_cursor(listing, sort_key(page[-1]))


def set_next(request: Request, response: Response, cursor: str | None) -> None:
    """Names the next page in `X-Next-Cursor` and a `Link` header, when there is one."""
    if cursor is None:
        return
    url = request.url.include_query_params(cursor=cursor)
    response.headers["X-Next-Cursor"] = cursor
    response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'


def keyed_after(
    items: Sequence[T],
    key: Callable[[T], tuple[Any, ...]],
    cursor_key: tuple[Any, ...] | None,
    *,
    descending: bool,
) -> list[T]:
    """For lists built in memory (already sorted by `key`): the items after `cursor_key`."""
    if cursor_key is None:
        return list(items)
    if descending:
        return [item for item in items if key(item) < cursor_key]
    return [item for item in items if key(item) > cursor_key]
