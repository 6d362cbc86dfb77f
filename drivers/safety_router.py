"""A driver's own trip sharing over HTTP: read and change their auto-share policy and trusted
contacts (docs/protocol.md, "Safety: share my trip")."""

from __future__ import annotations

from fastapi import APIRouter

from coop.clock import Now
from coop.dependencies import SessionDep
from coop.trusted_contacts import SharingIn
from drivers import safety
from drivers.dependencies import CurrentDriver

router = APIRouter(prefix="/v1/drivers/me/safety", tags=["drivers"])


@router.get("", response_model=safety.SharingOut)
async def read_my_sharing(driver: CurrentDriver, session: SessionDep) -> safety.SharingOut:
    """Whether your trips are shared by themselves, and your trusted contacts. Riders never
    see them."""
    return (await safety.load_sharing(session, driver.id)).out()


@router.patch("", response_model=safety.SharingOut)
async def update_my_sharing(
    body: SharingIn, driver: CurrentDriver, session: SessionDep, now: Now
) -> safety.SharingOut:
    """Changes the fields given: `auto_share` (always, night, never; `null`: never) and
    `contacts` (at most 5, the whole list, each a name and a phone or an email). With a policy
    that applies when a rider's trip is assigned to you, the service makes your link and sends
    it to your socket (`trip_shared`) for your app to pass on; it sends no message itself."""
    preferences = await safety.update(session=session, driver_id=driver.id, changes=body, now=now)
    await session.commit()
    return preferences.out()
