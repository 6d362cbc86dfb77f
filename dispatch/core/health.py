"""Operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from dispatch.core.errors import problem_response
from dispatch.core.state import CoreState, state_of

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


@router.get("/readyz", responses={503: {"description": "PostgreSQL or Redis unreachable"}})
async def readyz(request: Request) -> JSONResponse:
    """PostgreSQL and Redis are reachable; 503 names the one that is not."""
    database, redis = await asyncio.gather(
        _run_check(_check_database, request), _run_check(_check_redis, request)
    )
    checks = {"database": database, "redis": redis}
    if all(value == "ok" for value in checks.values()):
        return JSONResponse({"status": "ready", "checks": checks})
    down = ", ".join(name for name, value in checks.items() if value != "ok")
    return problem_response(503, "not_ready", "Not ready", f"Unreachable: {down}", checks=checks)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    return Response(
        generate_latest(state_of(request.app, CoreState).metrics.registry),
        media_type=CONTENT_TYPE_LATEST,
    )
