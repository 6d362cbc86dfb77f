"""What /transparency publishes of safety (docs/safety.md): counts by kind and outcome, drills
apart, and the time to acknowledge an alert against the promise it was raised under; never
who."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from coop.db import utcnow
from dispatch.safety.figures import safety_figures
from tests.builders import DOWNTOWN, make_driver, make_rider


async def test_counts_and_times_to_acknowledge_never_who(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    start = utcnow()
    app.state.clock = lambda: start
    rider = await make_rider(client, "Zoé Quintal")
    driver = await make_driver(client, admin_headers)
    ids = [
        (await client.post("/v1/sos", json=DOWNTOWN, headers=who.headers)).json()["id"]
        for who in (rider, rider, driver)
    ]
    await client.post("/v1/sos", json={"drill": True}, headers=rider.headers)
    for alert_id, after_s in zip(ids, (10, 90, 30), strict=True):
        later = start + timedelta(seconds=after_s)
        app.state.clock = lambda later=later: later
        acked = await client.post(
            f"/v1/safety/alerts/{alert_id}/acknowledge", headers=admin_headers
        )
        assert acked.status_code == 200, acked.text
    await client.post(
        f"/v1/safety/alerts/{ids[0]}/resolve", json={"outcome": "real"}, headers=admin_headers
    )
    await client.post(
        f"/v1/safety/alerts/{ids[1]}/resolve",
        json={"outcome": "false_alarm"},
        headers=admin_headers,
    )
    figures = await safety_figures(session)
    assert figures.raised == {"sos": 3} and figures.drills == 1
    assert figures.outcomes == {"real": 1, "false_alarm": 1} and figures.open_now == 1
    assert figures.acknowledged == 3 and figures.median_ack_s == 30.0
    assert figures.within_promise == 2  # 10 s and 30 s within the founding 60 s; 90 s not
    page = (await client.get("/transparency")).text
    section = page[page.index('id="safety-figures"') : page.index('id="register-title"')]
    assert '<dd data-figure="within">66.7%</dd>' in section
    assert '<dd data-figure="sos">3</dd>' in section
    assert "Zoé" not in page and str(rider.id) not in section and str(driver.id) not in section
