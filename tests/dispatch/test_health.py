"""Operations endpoints, and readiness while PostgreSQL or Redis is really down."""

from __future__ import annotations

from pathlib import Path

from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from sqlalchemy.engine import make_url

from coop.settings import Settings
from server.app import create_app
from tests.servers import SocketProxy, ThrowawayRedis


async def test_healthz(client: AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_when_everything_is_up(client: AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}


async def test_metrics_are_prometheus_text(client: AsyncClient) -> None:
    await client.get("/healthz")
    response = await client.get("/metrics")
    assert response.status_code == 200
    # The Prometheus text format as docs/protocol.md names it, version and all.
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    documented = (Path(__file__).parents[2] / "docs" / "protocol.md").read_text()
    assert "`text/plain; version=0.0.4; charset=utf-8`" in documented
    assert 'coop_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in (
        response.text
    )


async def test_readyz_is_503_while_postgres_is_down(settings: Settings, short_tmp: Path) -> None:
    url = make_url(settings.database_url)
    host = url.query.get("host") or url.host or ""
    proxy = SocketProxy(short_tmp / ".s.PGSQL.5432", str(host), url.port or 5432)
    await proxy.start()
    proxied = url.set(host=None, port=None).update_query_dict({"host": str(short_tmp)})
    app = create_app(settings.model_copy(update={"database_url": proxied.render_as_string(False)}))
    async with (
        LifespanManager(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http,
    ):
        assert (await http.get("/readyz")).status_code == 200
        await proxy.stop()
        down = await http.get("/readyz")
        assert down.status_code == 503
        assert down.headers["content-type"] == "application/problem+json"
        body = down.json()
        assert body["checks"]["redis"] == "ok"
        assert body["checks"]["database"].startswith("unreachable")
        assert body["detail"] == "Unreachable: database"
        await proxy.start()
        assert (await http.get("/readyz")).status_code == 200  # and it recovers by itself
    await proxy.stop()


async def test_readyz_is_503_while_redis_is_down(settings: Settings, short_tmp: Path) -> None:
    redis = ThrowawayRedis(short_tmp)
    await redis.start()
    app = create_app(settings.model_copy(update={"redis_url": redis.url}))
    try:
        async with (
            LifespanManager(app),
            AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http,
        ):
            assert (await http.get("/readyz")).status_code == 200
            redis.stop()
            down = await http.get("/readyz")
            assert down.status_code == 503
            assert down.json()["checks"]["database"] == "ok"
            assert down.json()["checks"]["redis"].startswith("unreachable")
            await redis.start()
            assert (await http.get("/readyz")).status_code == 200
    finally:
        redis.stop()


async def test_a_request_whose_database_connection_dies_gets_a_problem_not_a_crash(
    settings: Settings, short_tmp: Path
) -> None:
    # A failover closes every pooled connection under the workers: the request that finds its
    # connection dead gets the documented 503, and closing its session (a rollback on that dead
    # connection) must not turn it into an unhandled error.
    from tests.builders import make_rider

    url = make_url(settings.database_url)
    host = url.query.get("host") or url.host or ""
    proxy = SocketProxy(short_tmp / ".s.PGSQL.5432", str(host), url.port or 5432)
    await proxy.start()
    proxied = url.set(host=None, port=None).update_query_dict({"host": str(short_tmp)})
    app = create_app(settings.model_copy(update={"database_url": proxied.render_as_string(False)}))
    async with (
        LifespanManager(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http,
    ):
        rider = await make_rider(http)
        assert (await http.get("/v1/riders/me", headers=rider.headers)).status_code == 200
        await proxy.stop()
        down = await http.get("/v1/riders/me", headers=rider.headers)
        assert down.status_code == 503
        assert down.headers["content-type"] == "application/problem+json"
        await proxy.start()
        assert (await http.get("/v1/riders/me", headers=rider.headers)).status_code == 200
    await proxy.stop()
