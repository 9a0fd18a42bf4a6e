"""/metrics, /healthz and /readyz served per component on a free port."""

import httpx
import pytest
from prometheus_client import Counter

from tradefleet.telemetry.metrics import Health, new_registry, serve_metrics


@pytest.fixture
async def served():
    registry = new_registry()
    health = Health()
    server = await serve_metrics(registry, health, port=0, host="127.0.0.1")
    async with httpx.AsyncClient(base_url=server.url) as client:
        yield registry, health, client
    await server.stop()


async def test_metrics_endpoint_exposes_a_registered_counter(served):
    registry, _, client = served
    Counter("order_reject", "Orders rejected by the venue", ["bot"], registry=registry).labels(
        "a"
    ).inc(3)
    r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert 'order_reject_total{bot="a"} 3.0' in r.text


async def test_healthz_flips_to_503_with_reason_when_unhealthy(served):
    _, health, client = served
    assert (await client.get("/healthz")).status_code == 200
    health.live.fail("websocket down for 120s; restart")
    r = await client.get("/healthz")
    assert r.status_code == 503
    assert r.json() == {
        "status": "fail",
        "reason": "websocket down for 120s; restart",
        "checks": {},
    }


async def test_readyz_starts_not_ready_until_the_component_says_so(served):
    _, health, client = served
    r = await client.get("/readyz")
    assert (r.status_code, r.json()["reason"]) == (503, "starting")
    health.ready.ok()
    assert (await client.get("/readyz")).status_code == 200


async def test_a_failing_check_makes_the_probe_fail_and_names_it(served):
    _, health, client = served
    health.ready.ok()
    health.ready.add_check("nats", lambda: "not connected to NATS")
    r = await client.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"] == {"nats": "not connected to NATS"}


async def test_two_components_serve_separate_registries_in_one_process():
    a, b = new_registry(), new_registry()
    Counter("ingest", "klines", registry=a).inc()
    Counter("ingest", "klines", registry=b)  # same name, no clash
    sa = await serve_metrics(a, host="127.0.0.1")
    sb = await serve_metrics(b, host="127.0.0.1")
    try:
        async with httpx.AsyncClient() as c:
            ra, rb = (
                (await c.get(sa.url + "/metrics")).text,
                (await c.get(sb.url + "/metrics")).text,
            )
        assert sa.port != sb.port and "ingest_total 1.0" in ra and "ingest_total 0.0" in rb
    finally:
        await sa.stop()
        await sb.stop()


async def test_port_in_use_is_reported_with_advice(served):
    registry, _, client = served
    port = int(str(client.base_url).rsplit(":", 1)[1])
    with pytest.raises(
        OSError, match=f"cannot serve metrics on 127.0.0.1:{port}.*0 for a free one"
    ):
        await serve_metrics(registry, host="127.0.0.1", port=port)
