"""docs/protocol.md against the service: every route of /openapi.json, every message of
/asyncapi.json and every problem type is named in it, and its example of one trip is what the
service really says, request by request and frame by frame.

The example is written by this test: `PROTOCOL_EXAMPLE=write make test PYTEST_ARGS="-q
tests/test_protocol_doc.py"` drives the trip and rewrites the section between its markers.
Without it, the test fails when the sequence of requests and frames in the document is no longer
the one the service produces.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.client import ClientConnection, connect

from coop.errors import ProblemError
from coop.settings import Settings
from server.app import create_app
from tests.builders import DOWNTOWN, live_server, make_driver, make_rider

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"
BEGIN = "<!-- trip_example: begin -->"
END = "<!-- trip_example: end -->"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
STEP_RE = re.compile(r"^\*\*(\d+)\. (Rider|Driver) (→|←) `([^`]+)`\*\*", re.MULTILINE)


def _template(path: str) -> str:
    """A path with its parameters blanked: `/v1/trips/{id}/start` and `/v1/trips/{trip_id}/start`
    name the same route."""
    return re.sub(r"\{[^}/]*\}", "{}", path)


def _doc() -> str:
    return DOC.read_text(encoding="utf-8")


# --- every route, message and problem type is in the document ---------------------------------


async def test_every_route_of_the_openapi_document_is_in_protocol_md(client: AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    doc = _doc()
    named = {
        (method, _template(path.rstrip(".,;:)").split("?")[0]))
        for method, path in re.findall(
            r"\b(" + "|".join(METHODS) + r")\s+`?(/[A-Za-z0-9_\-./{}]*)", doc
        )
    }
    operations = [(method.upper(), path) for path, item in spec["paths"].items() for method in item]
    assert len(operations) > 100
    missing = [
        f"{method} {path}" for method, path in operations if (method, _template(path)) not in named
    ]
    assert not missing, f"routes docs/protocol.md does not name (as METHOD /path): {missing}"


async def test_every_websocket_message_of_the_asyncapi_document_is_in_protocol_md(
    client: AsyncClient,
) -> None:
    spec = (await client.get("/asyncapi.json")).json()
    doc = _doc()
    names = {message["name"] for message in spec["components"]["messages"].values()}
    assert {"hello", "offer", "trip", "driver_location", "location"} <= names
    missing = sorted(name for name in names if f'"type": "{name}"' not in doc)
    assert not missing, f'frames docs/protocol.md never shows as {{"type": "..."}}: {missing}'


def _problem_classes(base: type[ProblemError]) -> list[type[ProblemError]]:
    found: list[type[ProblemError]] = []
    for subclass in base.__subclasses__():
        found += [subclass, *_problem_classes(subclass)]
    return found


# `conflict`: the base of every 409, never answered as itself.
NOT_OF_THE_API = {"conflict"}


async def test_every_problem_type_is_in_protocol_md(app: Any) -> None:
    doc = _doc()
    types = {problem.type for problem in _problem_classes(ProblemError)} - NOT_OF_THE_API
    assert len(types) > 80
    missing = sorted(t for t in types if not re.search(r"`[^`\n]*\b" + t + r"\b[^`\n]*`", doc))
    assert not missing, f"problem types docs/protocol.md never names: {missing}"


def _anchor(heading: str) -> str:
    """The anchor a Markdown renderer (GitHub's) gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_link_into_protocol_md_lands_on_a_heading() -> None:
    doc = _doc()
    anchors = {_anchor(heading) for heading in re.findall(r"^#{1,4} (.+)$", doc, re.MULTILINE)}
    root = DOC.parent.parent
    sources = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    sources += sorted((root / "server").rglob("*.html")) + sorted((root / "server").rglob("*.py"))
    links = [
        (source.name, anchor)
        for source in sources
        for anchor in re.findall(r"protocol\.md#([\w\-]+)", source.read_text(encoding="utf-8"))
    ]
    links += [("protocol.md", anchor) for anchor in re.findall(r"\]\(#([\w\-]+)\)", doc)]
    assert len(links) > 20
    broken = sorted({link for link in links if link[1] not in anchors})
    assert not broken, f"links to no heading of docs/protocol.md: {broken}"


# --- the example of one trip ---------------------------------------------------------------


@dataclass
class Step:
    """One request and its answer, or one frame, as the example shows it."""

    actor: str  # "Rider" or "Driver"
    arrow: str  # → the party speaks (a request, a frame sent); ← the party hears (a frame)
    label: str  # "POST /v1/trips" or a frame's type
    body: Any = None
    status: int | None = None
    answer: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    answer_headers: dict[str, str] = field(default_factory=dict)

    def key(self) -> tuple[str, str, str]:
        return (self.actor, self.arrow, UUID_RE.sub("{id}", self.label))


@dataclass
class Party:
    actor: str
    token: str
    connection: ClientConnection


EXPECTED_WITHIN_S = 15.0


class Transcript:
    """What both parties said and heard, in order."""

    def __init__(self, http: AsyncClient) -> None:
        self.http = http
        self.steps: list[Step] = []

    async def call(
        self,
        party: Party,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        expect: int = 200,
    ) -> Any:
        response = await self.http.request(
            method,
            path,
            json=body,
            headers={"Authorization": f"Bearer {party.token}", **(headers or {})},
        )
        assert response.status_code == expect, response.text
        shown = {
            name: response.headers[name]
            for name in ("x-next-cursor", "idempotent-replayed")
            if name in response.headers
        }
        self.steps.append(
            Step(
                party.actor,
                "→",
                f"{method} {path}",
                body=body,
                status=response.status_code,
                answer=response.json(),
                headers=headers or {},
                answer_headers=shown,
            )
        )
        return response.json()

    async def send(self, party: Party, frame: dict[str, Any]) -> None:
        await party.connection.send(json.dumps(frame))
        self.steps.append(Step(party.actor, "→", frame["type"], body=frame))

    async def hear(self, party: Party, *expected: str, quiet_s: float = 0.4) -> None:
        """The frames `party` receives: the `expected` ones (waited for, however busy the
        machine), then anything else until the socket has been quiet for `quiet_s`. Pings, which
        come on their own clock, are answered and left out."""
        waiting = list(expected)
        while True:
            try:
                raw = await asyncio.wait_for(
                    party.connection.recv(), EXPECTED_WITHIN_S if waiting else quiet_s
                )
            except TimeoutError:
                assert not waiting, f"{party.actor} never heard {waiting}"
                return
            frame = json.loads(raw)
            if frame["type"] == "ping":
                await party.connection.send(json.dumps({"type": "pong"}))
                continue
            self.steps.append(Step(party.actor, "←", frame["type"], body=frame))
            if waiting and frame["type"] == waiting[0]:
                waiting.pop(0)


@asynccontextmanager
async def _party(base_url: str, actor: str, token: str) -> AsyncIterator[Party]:
    path = "/v1/ws/driver" if actor == "Driver" else "/v1/ws/rider"
    url = base_url.replace("http://", "ws://", 1) + path
    async with connect(
        url,
        additional_headers={"Authorization": f"Bearer {token}"},
        compression=None,
        open_timeout=10,
        ping_interval=None,
    ) as connection:
        yield Party(actor, token, connection)


# The driver waits 30 m south of the pickup, comes to it, then drives north at 20 m/s: one report
# every 110 ms (the service takes one per 100 ms at most), each a believable move.
WAITING = {"lat": round(DOWNTOWN["lat"] - 0.00027, 6), "lon": DOWNTOWN["lon"]}
RIDE = [
    {"lat": round(DOWNTOWN["lat"] + 0.00002 * i, 6), "lon": DOWNTOWN["lon"]} for i in range(1, 6)
]
DESTINATION = {"lat": 45.5225, "lon": -73.58}


async def _one_trip(settings: Settings, admin_headers: dict[str, str]) -> list[Step]:
    """Drives one trip through the real service, both parties on their sockets."""
    app = create_app(settings)
    async with (
        live_server(app) as base_url,
        AsyncClient(base_url=base_url, timeout=30.0) as http,
        AsyncExitStack() as stack,
    ):
        rider_account = await make_rider(http, "Rosa Lavoie")
        driver_account = await make_driver(http, admin_headers, name="Dana Tremblay")
        said = Transcript(http)

        driver = await stack.enter_async_context(_party(base_url, "Driver", driver_account.token))
        await said.hear(driver, "hello")
        await said.send(driver, {"type": "location", **WAITING, "heading": 0, "speed_mps": 0.0})
        await said.send(driver, {"type": "availability", "available": True})
        await said.hear(driver, "availability")
        await _settle(app)

        rider = await stack.enter_async_context(_party(base_url, "Rider", rider_account.token))
        await said.hear(rider, "hello")
        ask = {"pickup": DOWNTOWN, "dropoff": DESTINATION}
        quote = await said.call(rider, "POST", "/v1/quotes", ask)
        trip = await said.call(
            rider,
            "POST",
            "/v1/trips",
            {**ask, "quote_id": quote["quote_id"]},
            headers={"Idempotency-Key": "3f1d1c52-5b1e-4d4b-9d61-1f0c9b7e2a10"},
            expect=201,
        )
        await said.hear(rider, "trip")
        await said.hear(driver)

        # The matcher's next batch (every `dispatch.batch_interval_s`) offers the trip.
        report = await app.state.matcher.run_batch()
        assert len(report.offers) == 1
        await said.hear(rider)
        await said.hear(driver, "offer")
        offer_id = report.offers[0].id
        await said.call(driver, "POST", f"/v1/offers/{offer_id}/accept")
        await said.hear(rider, "trip")
        await said.hear(driver, "trip")

        await said.send(driver, {"type": "location", **DOWNTOWN, "heading": 0, "speed_mps": 5.0})
        await _settle(app)
        await said.hear(rider, "driver_location")
        await said.hear(driver)
        await said.call(driver, "POST", f"/v1/trips/{trip['id']}/arrived")
        await said.hear(rider, "trip")
        await said.hear(driver, "trip")
        await said.call(driver, "POST", f"/v1/trips/{trip['id']}/start")
        await said.hear(rider, "trip")
        await said.hear(driver, "trip")

        for position in RIDE:
            await said.send(driver, {"type": "location", **position, "speed_mps": 20.0})
            await asyncio.sleep(0.11)
        await _settle(app)
        await said.hear(rider, "driver_location")
        await said.hear(driver)
        await said.call(driver, "POST", f"/v1/trips/{trip['id']}/complete")
        await said.hear(rider, "trip")
        await said.hear(driver, "trip")
        await said.send(driver, {"type": "availability", "available": False})
        await said.hear(driver, "availability")

        await said.call(rider, "GET", f"/v1/trips/{trip['id']}/receipt")
        await said.call(
            rider,
            "POST",
            f"/v1/trips/{trip['id']}/rating",
            {"stars": 5, "comment": "Merci, très bon trajet", "tags": []},
            expect=201,
        )
        await said.call(rider, "GET", "/v1/riders/me/trips?limit=10")
        return said.steps


async def _settle(app: Any) -> None:
    """The positions sent so far reach the matcher and the rider: the service has read the
    frames (they travel on their own), then the ingest flushes, as it does every
    `COOP_LOCATION_FLUSH_INTERVAL_MS` when it runs on its own."""
    await asyncio.sleep(0.3)
    await app.state.locations.flush()


def _json(value: Any, depth: int = 0) -> str:
    """JSON as a person reads it: what fits on a line stays on one, the rest one member a line."""
    flat = json.dumps(value, ensure_ascii=False)
    if len(flat) + 2 * depth <= 96 or not isinstance(value, dict | list) or not value:
        return flat
    pad = "  " * (depth + 1)
    if isinstance(value, dict):
        members = [
            f"{pad}{json.dumps(key, ensure_ascii=False)}: {_json(item, depth + 1)}"
            for key, item in value.items()
        ]
        return "{\n" + ",\n".join(members) + "\n" + "  " * depth + "}"
    items = [pad + _json(item, depth + 1) for item in value]
    return "[\n" + ",\n".join(items) + "\n" + "  " * depth + "]"


def render(steps: list[Step]) -> str:
    """The example as docs/protocol.md shows it."""
    out: list[str] = []
    for number, step in enumerate(steps, start=1):
        out.append(f"**{number}. {step.actor} {step.arrow} `{step.label}`**\n")
        if step.status is None:
            out.append(f"```json\n{_json(step.body)}\n```\n")
            continue
        method, path = step.label.split(" ", 1)
        request = [f"{method} {path}", f"Authorization: Bearer <{step.actor.lower()}'s token>"]
        request += [f"{name}: {value}" for name, value in step.headers.items()]
        if step.body is not None:
            request.append("Content-Type: application/json\n\n" + _json(step.body))
        out.append("```http\n" + "\n".join(request) + "\n```\n")
        answer = [f"{step.status}"] + [f"{k}: {v}" for k, v in step.answer_headers.items()]
        out.append("Answer: `" + "`, `".join(answer) + "`\n")
        out.append(f"```json\n{_json(step.answer)}\n```\n")
    return "\n".join(out)


def documented_steps(doc: str) -> list[tuple[str, str, str]]:
    start, end = doc.index(BEGIN), doc.index(END)
    return [
        (actor, arrow, UUID_RE.sub("{id}", label))
        for _, actor, arrow, label in STEP_RE.findall(doc[start:end])
    ]


async def test_the_example_of_one_trip_is_what_the_service_says(
    settings: Settings, engine: AsyncEngine, admin_headers: dict[str, str]
) -> None:
    steps = await _one_trip(settings, admin_headers)
    kinds = [step.key() for step in steps]
    # The story itself: both parties hear every status of the trip, in order.
    for actor in ("Rider", "Driver"):
        statuses = [
            step.body["trip"]["status"]
            for step in steps
            if step.actor == actor and step.label == "trip" and step.arrow == "←"
        ]
        expected = ["requested", "assigned", "arrived", "in_progress", "completed"]
        assert statuses == (expected if actor == "Rider" else expected[1:]), (actor, statuses)
    assert ("Rider", "←", "driver_location") in kinds
    assert ("Driver", "←", "offer") in kinds

    doc = _doc()
    if os.environ.get("PROTOCOL_EXAMPLE") == "write":
        start, end = doc.index(BEGIN) + len(BEGIN), doc.index(END)
        DOC.write_text(doc[:start] + "\n" + render(steps) + doc[end:], encoding="utf-8")
        doc = _doc()
    assert documented_steps(doc) == kinds, (
        "docs/protocol.md's example of one trip is no longer what the service says; rewrite it "
        'with PROTOCOL_EXAMPLE=write make test PYTEST_ARGS="-q tests/test_protocol_doc.py"'
    )
    # Every JSON block of the example parses: a client author can paste it.
    section = doc[doc.index(BEGIN) : doc.index(END)]
    for block in re.findall(r"```json\n(.*?)\n```", section, re.DOTALL):
        json.loads(block)
    assert str(uuid.UUID(steps[-1].answer[0]["id"]))
