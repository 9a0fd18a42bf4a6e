"""The shared ``exsim`` fixture keeps the contract other worker tests rely on."""

from __future__ import annotations

import json

import websockets

from .conftest import ExsimHandle, csv_klines


async def test_step_replays_bars_that_ccxt_then_reads_over_rest(exsim: ExsimHandle) -> None:
    status = await exsim.step(3)
    assert status["stepped"] == 3
    client = exsim.ccxt_client()
    try:
        rows = await client.fetch_ohlcv("BTC/USDT:USDT", "1m", limit=10)
    finally:
        await client.close()
    want = csv_klines("BTCUSDT")[:3]
    assert [r[0] for r in rows] == [int(k["open_time"]) for k in want]


async def test_reset_rewinds_the_replay_to_the_first_bar(exsim: ExsimHandle) -> None:
    first = (await exsim.status())["replay_clock"]
    await exsim.step(5)
    await exsim.reset()
    assert (await exsim.status())["replay_clock"] == first


async def test_ccxt_client_is_signed_with_account_one(exsim: ExsimHandle) -> None:
    client = exsim.ccxt_client()
    try:
        balance = await client.fetch_balance()
    finally:
        await client.close()
    assert balance["USDT"]["total"] == 10000


async def test_drop_ws_closes_connected_sockets(exsim: ExsimHandle) -> None:
    async with websockets.connect(f"{exsim.ws_url}/stream?streams=btcusdt@kline_1m") as ws:
        await exsim.step(1)
        frame = json.loads(await ws.recv())
        assert frame["stream"] == "btcusdt@kline_1m"
        assert await exsim.drop_ws() == 1
        await ws.wait_closed()
        assert ws.close_code == 1001


async def test_fault_sets_rest_fault_injection(exsim: ExsimHandle) -> None:
    settings = await exsim.fault(http_5xx_rate=1.0)
    assert settings["http_5xx_rate"] == 1.0
    status = await exsim.status()
    assert status["faults"]["http_5xx_rate"] == 1.0
