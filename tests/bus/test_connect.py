"""connect(): waits for a late server, reconnects after an outage, logs without secrets."""

import asyncio
import logging

import pytest
from nats.errors import NoServersError

from tradefleet.bus.connect import connect
from tradefleet.embedded import EmbeddedNats, free_port


async def test_connect_waits_for_a_server_that_starts_late():
    port = free_port()
    server = EmbeddedNats(port=port)
    attempt = asyncio.create_task(
        connect(f"nats://127.0.0.1:{port}", "late", connect_deadline_s=15)
    )
    await asyncio.sleep(0.6)
    await asyncio.to_thread(server.start)
    try:
        nc = await attempt
        assert nc.is_connected
        await nc.close()
    finally:
        server.stop()


async def test_connect_gives_up_after_the_deadline():
    with pytest.raises(NoServersError):
        await connect(f"nats://127.0.0.1:{free_port()}", "nobody", connect_deadline_s=0.5)


async def test_connect_without_url_says_to_set_nats_url(monkeypatch):
    monkeypatch.delenv("NATS_URL", raising=False)
    with pytest.raises(ValueError, match="set NATS_URL"):
        await connect(None, "x")


async def test_connection_logs_never_show_the_password(caplog):
    caplog.set_level(logging.INFO, logger="tradefleet.bus.connect")
    with pytest.raises(NoServersError):
        await connect(f"nats://svc:hunter2@127.0.0.1:{free_port()}", "x", connect_deadline_s=0.3)
    assert caplog.records and "hunter2" not in caplog.text


async def test_client_reconnects_after_server_restart_and_keeps_publishing(
    make_nats, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="tradefleet.bus.connect")
    server = make_nats(store_dir=tmp_path / "js")
    port = server.port
    nc = await connect(server.url, "restart", reconnect_time_wait=0.2)
    try:
        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(make_nats, port=port, store_dir=tmp_path / "js")
        for _ in range(100):
            if nc.is_connected:
                break
            await asyncio.sleep(0.05)
        assert nc.is_connected
        assert await nc.request("$JS.API.INFO", b"", timeout=5)
        messages = [r.getMessage() for r in caplog.records]
        assert any(m.startswith("disconnected from NATS") for m in messages)
        assert any(m.startswith("reconnected to NATS") for m in messages)
    finally:
        await nc.close()
