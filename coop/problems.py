"""The one RFC 9457 problem body: every error the service answers is built here, over HTTP (the
handlers of `coop.errors`, which re-exports it), at the ASGI level (`coop.bodysize`,
`coop.observability`), or in a refused socket handshake. It imports nothing of the service, so
the modules below `coop.errors` can use it too."""

from __future__ import annotations

import json
from typing import Any

PROBLEM_JSON = "application/problem+json"


def problem_body(status: int, type_: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    """The RFC 9457 body of every error the service answers, over HTTP or a socket handshake."""
    return {"type": type_, "title": title, "status": status, "detail": detail, **extra}


def problem_bytes(status: int, type_: str, title: str, detail: str, **extra: Any) -> bytes:
    """The body as the ASGI-level answers send it (`json.dumps`' default separators)."""
    return json.dumps(problem_body(status, type_, title, detail, **extra)).encode()
