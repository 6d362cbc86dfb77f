"""Operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from sqlalchemy import text

from coop.auth import Role, bearer_from_headers, is_bootstrap_token, resolve
from coop.clients import AddressAllowList, client_host
from coop.errors import Forbidden, problem_response
from coop.state import CoreState, state_of

router = APIRouter(tags=["operations"])

CHECK_TIMEOUT_S = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


async def _check_database(request: Request) -> str:
    async with state_of(request.app, CoreState).engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    return "ok"


async def _check_redis(request: Request) -> str:
    await state_of(request.app, CoreState).redis.ping()
    return "ok"


async def _run_check(check: Any, request: Request) -> str:
    try:
        result: str = await asyncio.wait_for(check(request), CHECK_TIMEOUT_S)
        return result
    except TimeoutError:
        return f"unreachable: no answer within {CHECK_TIMEOUT_S:g} s"
    except Exception as exc:  # any failure to reach it is the answer, not a crash
        return f"unreachable: {type(exc).__name__}: {exc}"[:300]


async def may_read_operations(request: Request) -> bool:
    """From an address of `COOP_METRICS_ALLOW`, or with an admin token: the operators' view
    (metrics, and which dependency is down and why) is not for everyone."""
    settings = request.app.state.settings
    if client_host(request.scope) in AddressAllowList(settings.metrics_allow):
        return True
    token = bearer_from_headers(request.headers.get("authorization"))
    if not token:
        return False
    try:
        async with request.app.state.sessionmaker() as session:
            principal = await resolve(session=session, token=token, settings=settings)
    except Exception:  # the database is away: only the bootstrap token can be checked
        return is_bootstrap_token(token, settings.admin_token)
    return principal is not None and principal.role is Role.admin


@router.get(
    "/readyz",
    responses={503: {"description": "PostgreSQL or Redis unreachable"}},
)
async def readyz(request: Request) -> JSONResponse:
    """PostgreSQL and Redis are reachable; 503 names the one that is not. Which one, and why,
    only for the operators (`COOP_METRICS_ALLOW` or an admin token); others get the status."""
    database, redis = await asyncio.gather(
        _run_check(_check_database, request), _run_check(_check_redis, request)
    )
    checks = {"database": database, "redis": redis}
    detailed = await may_read_operations(request)
    if all(value == "ok" for value in checks.values()):
        return JSONResponse(
            {"status": "ready", "checks": checks} if detailed else {"status": "ready"}
        )
    down = ", ".join(name for name, value in checks.items() if value != "ok")
    if detailed:
        return problem_response(
            503, "not_ready", "Not ready", f"Unreachable: {down}", checks=checks
        )
    return problem_response(503, "not_ready", "Not ready", "The service is not ready")


METRICS_CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


@router.get("/metrics", responses={403: {"description": "Not from an allowed address"}})
async def metrics(request: Request) -> Response:
    """Prometheus text format; from `COOP_METRICS_ALLOW` or with an admin token."""
    if not await may_read_operations(request):
        raise Forbidden(
            "Metrics are read from the operators' addresses (COOP_METRICS_ALLOW) "
            "or with an admin token"
        )
    # The classic text format, version 0.0.4, as docs/protocol.md says: what `generate_latest`
    # writes (names escaped to underscores). The library's "latest" content type announces
    # version 1.0.0, a format this body is not, and changed under us once already.
    return Response(
        generate_latest(state_of(request.app, CoreState).metrics.registry),
        media_type=METRICS_CONTENT_TYPE,
    )
