"""Every request the fuzzing ever found to be answered wrongly, kept as an explicit case with the
answer the protocol documents (docs/testing.md, Fuzzing). `make fuzz` adds to this list."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from tests.builders import make_driver, make_rider


@dataclass(frozen=True)
class Finding:
    found: str  # when, and by what run (the seed, if schemathesis gave one)
    caller: str  # anonymous, rider, driver or admin
    method: str
    path: str
    body: bytes | None
    status: int  # the documented answer
    problem_type: str
    headers: dict[str, str] = field(default_factory=dict)


FINDINGS = [
    Finding(
        found="2026-12, a clean clone's make test (schemathesis, seed 20261130 with --max-time)",
        caller="anonymous",
        method="POST",
        path="/v1/riders",
        headers={"Content-Type": "application/json"},
        body=b"\xb1$J\xf3\x9e,",
        status=422,
        problem_type="validation_error",
    ),
]


@pytest.mark.parametrize("finding", FINDINGS, ids=lambda f: f"{f.method} {f.path} {f.found}")
async def test_each_finding_gets_its_documented_answer(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], finding: Finding
) -> None:
    callers = {
        "anonymous": {},
        "admin": admin_headers,
        "rider": (await make_rider(client)).headers,
        "driver": (await make_driver(client, admin_headers)).headers,
    }
    response = await client.request(
        finding.method,
        finding.path,
        content=finding.body,
        headers={**callers[finding.caller], **finding.headers},
    )
    assert response.status_code == finding.status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == finding.problem_type
    documented = app.openapi()["paths"][finding.path][finding.method.lower()]["responses"]
    assert str(finding.status) in documented
