"""The user-data stream watcher against exsim's listenKey stream: it says which symbol to
sync as soon as a stop fills, and after a dropped socket it reconnects and asks for a
sync of everything."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

import pytest

from tests.workers._execution import first_reach, started_executor
from tests.workers.conftest import csv_klines
from tradefleet.workers.execution import EntryRequest
from tradefleet.workers.execution.userdata import UserDataWatcher, user_stream_base

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def watched(exsim):
    ex, _ = await started_executor(exsim)
    watcher = UserDataWatcher(ex.exchange, exsim.ws_url, ex.symbols, reconnect_max_s=0.5)
    task = asyncio.create_task(watcher.run())
    await asyncio.wait_for(watcher.connected.wait(), 10)
    yield ex, watcher
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await ex.close()


async def test_a_stop_fill_wakes_the_watcher_for_its_symbol_and_sync_reports_it(watched, exsim):
    ex, watcher = watched
    await exsim.step(3)
    rows = csv_klines("BTCUSDT")
    entry = D(rows[2]["close"])
    opened = await ex.open_position(EntryRequest("BTCUSDT", "long", D("0.012"),
                                                 entry * D("0.997"), entry, "BTCUSDT-1-enter_long"))
    assert await watcher.wait(5) == {"BTCUSDT"}  # the entry's own events...
    await asyncio.sleep(0.3)
    assert watcher.changed() <= {"BTCUSDT"}  # ...all of them
    hit = first_reach(rows, 3, opened.stop.stop_price, below=True)
    await exsim.step(hit - 3)
    assert await watcher.wait(0.3) == set()  # nothing happened on the account

    await exsim.step(1)
    assert await watcher.wait(5) == {"BTCUSDT"}
    synced = await ex.sync("BTCUSDT")
    assert (synced.closed, synced.cause) == (True, "stop_filled")


async def test_after_a_dropped_socket_the_watcher_reconnects_and_asks_to_sync_all(watched, exsim):
    ex, watcher = watched
    watcher.changed()
    assert await exsim.drop_ws() >= 1
    assert await watcher.wait(10) == {"BTCUSDT", "ETHUSDT"}
    await asyncio.wait_for(watcher.connected.wait(), 10)
    assert watcher.reconnects >= 1


def test_stream_base_comes_from_the_spec():
    from tests.workers._execution import bot_spec
    from tradefleet.api.tradingbot import TradingBotSpec

    spec = bot_spec("http://exsim:9010").model_copy(
        update={"endpoints": bot_spec("http://x").endpoints.model_copy(
            update={"ws_url": "ws://exsim:9010/"})})
    assert user_stream_base(spec) == "ws://exsim:9010"
    live = TradingBotSpec.model_validate({"venue": "binanceusdm", "mode": "live",
                                          "symbols": ["BTCUSDT"], "strategy": {"name": "ema_cross"},
                                          "credentialsSecretRef": {"name": "k"}})
    assert user_stream_base(live) == "wss://fstream.binance.com"
    with pytest.raises(ValueError, match="endpoints.wsUrl is required"):
        user_stream_base(bot_spec("http://exsim:9010"))
