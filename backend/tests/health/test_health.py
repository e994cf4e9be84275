from __future__ import annotations

import time

from tests.conftest import make_settings, start_app


async def test_health_reports_database_pool_and_model(client) -> None:
    r = await client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["database"]["status"] == "ok"
    assert body["database"]["latency_ms"] > 0  # a real round trip to the database
    assert set(body["pool"]) == {"size", "checked_in", "checked_out", "overflow"}
    model = body["model"]
    assert (model["provider"], model["name"], model["status"]) == (
        "offline",
        "offline-rules-1",
        "ok",
    )
    assert body["version"]


async def test_liveness_answers_without_database(client) -> None:
    r = await client.get("/health/live")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_health_is_degraded_quickly_when_database_is_unreachable() -> None:
    # A closed port: nothing listens on 127.0.0.1:9.
    running = await start_app(make_settings("postgresql+asyncpg://postgres@127.0.0.1:9/none"))
    try:
        async with running.client() as c:
            started = time.monotonic()
            r = await c.get("/health")
            elapsed = time.monotonic() - started
            assert r.status_code == 503
            assert r.json()["status"] == "degraded"
            assert r.json()["database"] == {"status": "down", "latency_ms": None}
            assert elapsed < 2.0
            assert (await c.get("/health/live")).status_code == 200
    finally:
        await running.stop()


async def test_openapi_documents_every_route_with_error_answers(client) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if path.startswith("/api/{user_id}"):
                assert {"401", "403", "422"} <= set(op["responses"]), (method, path)
    assert (await client.get("/docs")).status_code == 200


async def test_unknown_route_is_json_404(client) -> None:
    r = await client.get("/nope")
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}


async def test_unexpected_error_is_a_json_500_and_logs_no_stack_trace(database_url, caplog) -> None:
    import logging

    running = await start_app(make_settings(database_url))

    async def explode() -> None:
        raise RuntimeError("secret detail: SELECT * FROM users")

    running.app.add_api_route("/explode", explode)
    try:
        with caplog.at_level(logging.INFO):
            async with running.client() as c:
                r = await c.get("/explode")
        assert r.status_code == 500
        assert r.json() == {"detail": "Internal server error"}
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "SELECT" not in r.text
        [record] = [rec for rec in caplog.records if rec.getMessage() == "unhandled error"]
        assert record.error_type == "RuntimeError"
        assert record.exc_info is None
        text = caplog.text
        assert "Traceback" not in text and "SELECT" not in text and "secret detail" not in text
    finally:
        await running.stop()
