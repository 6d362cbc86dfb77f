"""Agreement versions: the founding one installed at first start, kept forever, found by time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from bargaining import service
from bargaining.exceptions import AgreementNotFound, NoAgreementInForce
from bargaining.models import AgreementVersion
from bargaining.terms import load_founding_terms, terms_sha256, terms_to_wire
from coop import audit


async def test_the_founding_agreement_is_version_1(
    client: AsyncClient, session: AsyncSession
) -> None:
    response = await client.get("/v1/agreements/current")
    assert response.status_code == 200
    current = response.json()
    assert current["version"] == 1
    assert current["proposal_id"] is None
    assert current["effective_from"] == "1970-01-01T00:00:00Z"
    assert current["terms"] == terms_to_wire(load_founding_terms())
    assert current["sha256"] == terms_sha256(load_founding_terms())
    assert current["terms"]["fares"]["standard"]["base"] == "3.50"
    assert (await client.get("/v1/agreements/1")).json() == current
    assert (await client.get("/v1/agreements")).json() == [current]
    assert (await client.get("/v1/agreements/1/diff/1")).json() == []

    (entry,) = await audit.entries_after(session=session, after=0, limit=10)
    assert (entry.kind, entry.subject) == ("agreement.version", "agreement:1")
    assert entry.content["sha256"] == current["sha256"]


async def test_installing_again_changes_nothing(session: AsyncSession) -> None:
    await service.install_founding(session=session)
    first = await service.get_version(session=session, version=1)
    await service.install_founding(session=session)
    assert await session.scalar(select(func.count()).select_from(AgreementVersion)) == 1
    assert (await service.get_version(session=session, version=1)).sha256 == first.sha256


async def test_no_version_in_force_before_any_is_installed(session: AsyncSession) -> None:
    with pytest.raises(NoAgreementInForce):
        await service.in_force(session=session, at=datetime.now(UTC))
    with pytest.raises(AgreementNotFound):
        await service.get_version(session=session, version=1)
    with pytest.raises(ValueError, match="timezone-aware"):
        await service.in_force(session=session, at=datetime(2026, 1, 1))


async def test_in_force_gives_the_terms_to_price_with(session: AsyncSession) -> None:
    await service.install_founding(session=session)
    version = await service.in_force(session=session, at=datetime(2001, 1, 1, tzinfo=UTC))
    assert version.version == 1
    assert version.terms == load_founding_terms()
    assert version.sha256 == terms_sha256(version.terms)


async def test_versions_are_immutable(session: AsyncSession) -> None:
    await service.install_founding(session=session)
    for statement in (
        "UPDATE agreement_version SET sha256 = 'x'",
        "DELETE FROM agreement_version",
    ):
        with pytest.raises(DBAPIError, match="immutable"):
            await session.execute(text(statement))
        await session.rollback()
    assert (await service.get_version(session=session, version=1)).sha256 == terms_sha256(
        load_founding_terms()
    )
