"""exsim WebSocket streams: market streams, live SUBSCRIBE, user data, faults, pings."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import ccxt.async_support as ccxt
import ccxt.pro
import pytest
import websockets

from .conftest import BTC, KEY, SECRET, csv_funding, csv_klines

pytestmark = pytest.mark.timeout(60)


def ws_url(base_url: str, path: str) -> str:
    return base_url.replace("http://", "ws://", 1) + path


async def recv_json(ws, timeout: float = 5.0):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def test_kline_stream_matches_csv_rows_field_by_field(base_url, admin):
    rows = csv_klines("BTCUSDT")[:5]
    async with websockets.connect(ws_url(base_url, "/ws/btcusdt@kline_1m")) as ws:
        admin.step(5)
        got = [await recv_json(ws) for _ in range(5)]
    for msg, row in zip(got, rows):
        k = msg["k"]
        assert (msg["e"], msg["s"], k["s"], k["i"], k["x"]) == ("kline", "BTCUSDT", "BTCUSDT", "1m", True)
        assert k["t"] == int(row["open_time"]) and k["T"] == int(row["close_time"])
        assert (k["o"], k["h"], k["l"], k["c"], k["v"]) == \
            (row["open"], row["high"], row["low"], row["close"], row["volume"])
        assert set(k) >= {"t", "T", "s", "i", "f", "L", "o", "c", "h", "l", "v", "n", "x",
                          "q", "V", "Q", "B"}


async def test_combined_stream_wraps_each_payload_with_its_stream_name(base_url, admin):
    url = ws_url(base_url, "/stream?streams=btcusdt@kline_1m/ethusdt@markPrice")
    async with websockets.connect(url) as ws:
        admin.step(1)
        got = {m["stream"]: m["data"] for m in [await recv_json(ws), await recv_json(ws)]}
    assert set(got) == {"btcusdt@kline_1m", "ethusdt@markPrice"}
    assert got["btcusdt@kline_1m"]["k"]["c"] == csv_klines("BTCUSDT")[0]["close"]
    assert got["ethusdt@markPrice"]["e"] == "markPriceUpdate"


async def test_five_minute_klines_close_on_the_fifth_bar_with_aggregated_ohlcv(base_url, admin):
    rows = csv_klines("ETHUSDT")[:5]
    async with websockets.connect(ws_url(base_url, "/ws/ethusdt@kline_5m")) as ws:
        admin.step(5)
        got = [(await recv_json(ws))["k"] for _ in range(5)]
    assert [k["x"] for k in got] == [False, False, False, False, True]
    last = got[-1]
    assert last["t"] == int(rows[0]["open_time"]) and last["T"] == int(rows[0]["open_time"]) + 299_999
    assert last["o"] == rows[0]["open"] and last["c"] == rows[-1]["close"]
    assert Decimal(last["h"]) == max(Decimal(r["high"]) for r in rows)
    assert Decimal(last["l"]) == min(Decimal(r["low"]) for r in rows)
    assert Decimal(last["v"]) == sum(Decimal(r["volume"]) for r in rows)


async def test_mark_price_stream_carries_last_close_and_last_settled_funding_rate(base_url, admin):
    first = csv_klines("BTCUSDT")[0]
    settled = [r for r in csv_funding("BTCUSDT") if int(r["funding_time"]) <= int(first["open_time"])]
    async with websockets.connect(ws_url(base_url, "/ws/btcusdt@markPrice@1s")) as ws:
        admin.step(1)
        msg = await recv_json(ws)
    assert msg["e"] == "markPriceUpdate" and msg["s"] == "BTCUSDT"
    assert Decimal(msg["p"]) == Decimal(first["close"])
    assert Decimal(msg["r"]) == Decimal(settled[-1]["funding_rate"])
    assert msg["T"] == int(first["open_time"]) + 8 * 3600 * 1000  # next 00/08/16 UTC


async def test_book_ticker_stream_quotes_around_the_last_close(base_url, admin):
    close = Decimal(csv_klines("BTCUSDT")[0]["close"])
    async with websockets.connect(ws_url(base_url, "/ws/btcusdt@bookTicker")) as ws:
        admin.step(1)
        msg = await recv_json(ws)
    assert msg["e"] == "bookTicker" and msg["s"] == "BTCUSDT"
    bid, ask = Decimal(msg["b"]), Decimal(msg["a"])
    assert bid <= close <= ask and ask - bid == Decimal("0.1")  # one BTCUSDT tick


async def test_subscribe_and_unsubscribe_on_an_open_socket(base_url, admin):
    async with websockets.connect(ws_url(base_url, "/ws")) as ws:
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["solusdt@kline_1m"], "id": 1}))
        assert await recv_json(ws) == {"result": None, "id": 1}
        admin.step(1)
        assert (await recv_json(ws))["k"]["c"] == csv_klines("SOLUSDT")[0]["close"]
        await ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["solusdt@kline_1m"], "id": 2}))
        assert await recv_json(ws) == {"result": None, "id": 2}
        admin.step(1)
        # Nothing was queued by that step: the next frame is the reply to this request.
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
        assert await recv_json(ws) == {"result": [], "id": 3}


async def test_subscribe_with_an_unknown_stream_replies_an_error_and_subscribes_nothing(base_url, admin):
    async with websockets.connect(ws_url(base_url, "/ws")) as ws:
        await ws.send(json.dumps({"method": "SUBSCRIBE",
                                  "params": ["btcusdt@kline_1m", "dogeusdt@kline_1m"], "id": 9}))
        reply = await recv_json(ws)
        assert reply["id"] == 9 and reply["error"]["code"] == 2
        assert "DOGEUSDT" in reply["error"]["msg"]
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 10}))
        assert await recv_json(ws) == {"result": [], "id": 10}


async def test_unknown_stream_in_the_url_gets_an_error_and_close_code_1008(base_url, admin):
    async with websockets.connect(ws_url(base_url, "/ws/btcusdt@kline_7m")) as ws:
        reply = await recv_json(ws)
        assert reply["error"]["code"] == 2 and "7m" in reply["error"]["msg"]
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd.code == 1008


async def test_server_answers_websocket_pings(base_url, admin):
    async with websockets.connect(ws_url(base_url, "/ws/btcusdt@kline_1m")) as ws:
        latency = await asyncio.wait_for(await ws.ping(), 5)
    assert latency >= 0


async def test_drop_ws_fault_closes_every_connection(base_url, admin):
    async with websockets.connect(ws_url(base_url, "/ws/btcusdt@kline_1m")) as a, \
            websockets.connect(ws_url(base_url, "/stream?streams=ethusdt@markPrice")) as b:
        await asyncio.sleep(0.05)
        assert admin.status()["ws_clients"] == 2
        resp = admin.http.post("/admin/faults/drop-ws")
        assert resp.json() == {"dropped": 2}
        for ws in (a, b):
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            assert closed.value.rcvd.code == 1001
    assert admin.status()["ws_clients"] == 0


async def test_ccxt_pro_watch_ohlcv_receives_the_replayed_bar(base_url, admin):
    ws_base = ws_url(base_url, "/ws")
    ex = ccxt.pro.binanceusdm({"apiKey": KEY, "secret": SECRET,
                               "urls": {"api": {"ws": {"linear": ws_base}}},
                               "options": {"fetchCurrencies": False}})
    from tradefleet.exsim.server import ccxt_urls
    ex.urls["api"].update(ccxt_urls(base_url)["api"])
    try:
        await ex.load_markets()
        watcher = asyncio.ensure_future(ex.watch_ohlcv(BTC, "1m"))
        for _ in range(250):  # until ccxt's SUBSCRIBE has landed
            await asyncio.sleep(0.02)
            if admin.status()["ws_streams"]:
                break
        admin.step(1)
        candles = await asyncio.wait_for(watcher, 5)
    finally:
        await ex.close()
    row = csv_klines("BTCUSDT")[0]
    assert candles[-1][0] == int(row["open_time"]) and candles[-1][4] == float(row["close"])


async def collect(ws, want: set[str], timeout: float = 5.0) -> dict[str, list[dict]]:
    """Read user-data frames until every event type in ``want`` was seen."""
    seen: dict[str, list[dict]] = {}
    while not want <= set(seen):
        msg = await recv_json(ws, timeout)
        seen.setdefault(msg["e"], []).append(msg)
    return seen


async def test_user_data_stream_forwards_order_trade_update_and_account_update(base_url, exchange, admin):
    close = csv_klines("BTCUSDT")[2]["close"]
    admin.step(3)
    key = (await exchange.fapiPrivatePostListenKey())["listenKey"]
    async with websockets.connect(ws_url(base_url, f"/ws/{key}")) as ws:
        await exchange.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "ud-1"})
        seen = await collect(ws, {"ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE"})
    fill = [m["o"] for m in seen["ORDER_TRADE_UPDATE"] if m["o"]["x"] == "TRADE"][-1]
    assert (fill["s"], fill["c"], fill["S"], fill["X"], fill["z"]) == ("BTCUSDT", "ud-1", "BUY", "FILLED", "0.010")
    assert Decimal(fill["L"]) == Decimal(close)
    [position] = seen["ACCOUNT_UPDATE"][-1]["a"]["P"]
    assert (position["s"], position["pa"], seen["ACCOUNT_UPDATE"][-1]["a"]["m"]) == ("BTCUSDT", "0.010", "ORDER")


async def test_conditional_order_streams_algo_update_until_it_triggers(base_url, exchange, admin):
    rows = csv_klines("BTCUSDT")
    admin.step(3)
    await exchange.create_order(BTC, "market", "buy", 0.01)
    stop = Decimal(rows[2]["close"]) - 100
    hit = next(i for i in range(3, len(rows)) if Decimal(rows[i]["low"]) <= stop)
    key = (await exchange.fapiPrivatePostListenKey())["listenKey"]
    async with websockets.connect(ws_url(base_url, f"/stream?streams={key}")) as ws:
        order = await exchange.create_order(BTC, "market", "sell", 0.01, None,
                                            {"stopLossPrice": float(stop), "reduceOnly": True})
        placed = await recv_json(ws)
        assert placed["stream"] == key
        assert placed["data"]["e"] == "ALGO_UPDATE"
        assert (placed["data"]["o"]["aid"], placed["data"]["o"]["X"]) == (int(order["id"]), "NEW")
        admin.step(hit - 3 + 1)
        events = [(await recv_json(ws))["data"] for _ in range(4)]
    kinds = [(e["e"], e["o"]["x"] if e["e"] == "ORDER_TRADE_UPDATE" else e["o"]["X"]) for e in events]
    assert kinds == [("ORDER_TRADE_UPDATE", "NEW"), ("ALGO_UPDATE", "TRIGGERED"),
                     ("ORDER_TRADE_UPDATE", "TRADE"), ("ALGO_UPDATE", "FINISHED")]
    trade = next(e["o"] for e in events if e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["x"] == "TRADE")
    assert (trade["ot"], trade["o"], trade["i"]) == ("STOP_MARKET", "MARKET", int(order["id"]))


async def test_private_path_takes_the_listen_key_as_a_query_parameter(base_url, exchange, admin):
    admin.step(3)
    key = (await exchange.fapiPrivatePostListenKey())["listenKey"]
    async with websockets.connect(ws_url(base_url, f"/private/ws?listenKey={key}")) as ws:
        await exchange.create_order(BTC, "limit", "buy", 0.01, 90_000)
        msg = await recv_json(ws)
    assert (msg["e"], msg["o"]["x"], msg["o"]["X"]) == ("ORDER_TRADE_UPDATE", "NEW", "NEW")


async def test_listen_key_keepalive_close_and_reuse(base_url, exchange, admin):
    key = (await exchange.fapiPrivatePostListenKey())["listenKey"]
    assert (await exchange.fapiPrivatePostListenKey())["listenKey"] == key  # the active one
    assert (await exchange.fapiPrivatePutListenKey())["listenKey"] == key
    assert await exchange.fapiPrivateDeleteListenKey() == {}
    with pytest.raises(ccxt.AuthenticationError, match="-1125"):
        await exchange.fapiPrivatePutListenKey()
    async with websockets.connect(ws_url(base_url, f"/ws/{key}")) as ws:
        assert (await recv_json(ws))["error"]["code"] == 2
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)


async def test_user_data_of_one_account_is_not_sent_to_another(base_url, make_exchange, admin):
    from .conftest import OTHER_KEY, OTHER_SECRET
    one, two = make_exchange(), make_exchange(OTHER_KEY, OTHER_SECRET)
    await one.load_markets()
    await two.load_markets()
    admin.step(3)
    key_two = (await two.fapiPrivatePostListenKey())["listenKey"]
    async with websockets.connect(ws_url(base_url, f"/ws/{key_two}")) as ws:
        await one.create_order(BTC, "limit", "buy", 0.01, 90_000)
        await two.create_order(BTC, "limit", "buy", 0.01, 91_000)
        msg = await recv_json(ws)
    assert msg["o"]["p"] == "91000.00"
