"""Market-data feed against a real exsim (HTTP + WebSocket) and a real NATS JetStream.

Each test starts :class:`Feed` in-process, steps exsim's replay bar by bar, and reads what
landed in the MARKET and DLQ streams. Malformed and out-of-order frames are injected by a
WebSocket relay sitting between the feed and exsim (exsim itself only sends good frames).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
import websockets
from nats.js.errors import NotFoundError
from prometheus_client.parser import text_string_to_metric_families

from tradefleet.bus import codec, subjects
from tradefleet.bus.market_messages import decode_market
from tradefleet.bus.streams import DLQ, MARKET
from tradefleet.workers.marketdata import Feed, FeedConfig

from .conftest import ExsimHandle, SYMBOLS, csv_funding, csv_klines

HOUR_MS = 3_600_000
START_MS = 1746403200000  # 2025-05-05 00:00 UTC, first bar of the bundled data


# -- helpers -----------------------------------------------------------------------------


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0,
                     what: str = "condition") -> None:
    """Poll ``check`` until true; fail naming ``what`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def counts(js: Any, stream: str = MARKET, filter_: str = ">") -> dict[str, int]:
    """Messages per subject stored in ``stream``."""
    try:
        info = await js.stream_info(stream, subjects_filter=filter_)
    except NotFoundError:
        return {}
    return dict(info.state.subjects or {})


async def stored(js: Any, subject: str, stream: str = MARKET) -> list[Any]:
    """Every message on ``subject`` in ``stream``, oldest first (raw JetStream messages)."""
    out, seq = [], 1
    while True:
        try:
            msg = await js.get_msg(stream, seq=seq, subject=subject, next=True)
        except NotFoundError:
            return out
        out.append(msg)
        seq = msg.seq + 1


async def wait_counts(js: Any, want: dict[str, int], timeout: float = 20.0) -> None:
    async def done() -> bool:
        have = await counts(js)
        return all(have.get(s, 0) >= n for s, n in want.items())
    await eventually(done, timeout, f"stored messages {want}")


def kline_subject(symbol: str, interval: str = "1m") -> str:
    return subjects.kline("exsim", symbol, interval)


def metric(feed: Feed, name: str, **labels: str) -> float:
    value = feed.metrics.registry.get_sample_value(name, {"venue": "exsim", **labels})
    return 0.0 if value is None else value


def kline_frame(row: dict[str, str], symbol: str = "BTCUSDT", **overrides: Any) -> str:
    """A Binance combined-stream closed-kline frame built from a CSV row."""
    k = {"t": int(row["open_time"]), "T": int(row["close_time"]), "s": symbol, "i": "1m",
         "f": -1, "L": -1, "o": row["open"], "c": row["close"], "h": row["high"],
         "l": row["low"], "v": row["volume"], "n": 0, "x": True, "q": "0", "V": "0", "Q": "0",
         "B": "0"}
    k.update(overrides)
    data = {"e": "kline", "E": int(row["close_time"]) + 1, "s": symbol, "k": k}
    return orjson.dumps({"stream": f"{symbol.lower()}@kline_1m", "data": data}).decode()


class Relay:
    """WebSocket relay between the feed and exsim: forwards exsim's frames both ways and
    lets a test inject raw frames into the feed's connection."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.clients: set[Any] = set()
        self.server: Any = None
        self.url = ""
        self.muted = False  # drop exsim's frames instead of forwarding them
        self.dropped = 0

    async def __aenter__(self) -> "Relay":
        self.server = await websockets.serve(self._handle, "127.0.0.1", 0)
        port = next(iter(self.server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, client: Any) -> None:
        async with websockets.connect(self.upstream + client.request.path) as up:
            self.clients.add(client)

            async def pump(src: Any, dst: Any, mutable: bool) -> None:
                with contextlib.suppress(websockets.ConnectionClosed):
                    async for frame in src:
                        if mutable and self.muted:
                            self.dropped += 1
                            continue
                        await dst.send(frame)

            tasks = [asyncio.create_task(pump(up, client, True)),
                     asyncio.create_task(pump(client, up, False))]
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self.clients.discard(client)
                for t in tasks:
                    t.cancel()

    def freeze(self) -> None:
        """Stop reading from the connected feeds: their pings go unanswered."""
        for client in self.clients:
            client.transport.pause_reading()

    async def inject(self, text: str) -> None:
        assert self.clients, "no feed connected to the relay"
        for client in list(self.clients):
            await client.send(text)


@pytest.fixture
async def start_feed(nats_url: str, exsim: ExsimHandle, js: Any) -> AsyncIterator[Callable[..., Awaitable[Feed]]]:
    """Start feeds on exsim; each is connected and live when returned; all stopped after."""
    running: list[tuple[Feed, asyncio.Task[None]]] = []

    async def start(**overrides: Any) -> Feed:
        settings: dict[str, Any] = {
            "venue": "exsim", "ws_url": exsim.ws_url, "rest_url": exsim.rest_url,
            "symbols": list(SYMBOLS), "intervals": ["1m"], "streams": ["kline"],
            "nats_url": nats_url, "idle_timeout_s": None, "book_min_interval_ms": 0,
            "backoff": {"min_s": 1.0, "max_s": 1.0, "jitter": 0.0},
        }
        settings.update(overrides)
        feed = Feed(FeedConfig.model_validate(settings))
        task = asyncio.create_task(feed.run())
        running.append((feed, task))
        done, _ = await asyncio.wait({task, asyncio.create_task(feed.wait_connected())},
                                     return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # start-up failed: raise it here
        return feed

    yield start
    for feed, task in running:
        await feed.stop()
        await task


def assert_klines_equal_csv(msgs: list[Any], symbol: str, first: int, n: int) -> None:
    """The stored bodies equal CSV rows ``first .. first+n-1`` of ``symbol``, field by field."""
    rows = csv_klines(symbol)[first:first + n]
    bodies = [decode_market(m.data, m.subject) for m in msgs]
    assert [b.open_time for b in bodies] == [int(r["open_time"]) for r in rows]
    for body, row in zip(bodies, rows):
        got = {"open_time": str(body.open_time), "open": format(body.open, "f"),
               "high": format(body.high, "f"), "low": format(body.low, "f"),
               "close": format(body.close, "f"), "volume": format(body.volume, "f"),
               "close_time": str(body.close_time)}
        assert got == dict(row)
        assert (body.venue, body.symbol, body.interval, body.closed) == ("exsim", symbol, "1m", True)


# -- klines ----------------------------------------------------------------------------------


async def test_klines_of_three_symbols_on_one_connection_equal_the_csv_rows(start_feed, exsim, js):
    await start_feed()
    assert (await exsim.status())["ws_clients"] == 1
    await exsim.step(5)
    await wait_counts(js, {kline_subject(s): 5 for s in SYMBOLS})
    for symbol in SYMBOLS:
        msgs = await stored(js, kline_subject(symbol))
        assert_klines_equal_csv(msgs, symbol, 0, 5)
        assert [m.headers[codec.MSG_ID] for m in msgs] == [
            f"exsim:{symbol}:1m:{START_MS + i * 60_000}" for i in range(5)]


async def test_each_configured_interval_gets_its_closed_bars_only(start_feed, exsim, js):
    await start_feed(symbols=["ETHUSDT"], intervals=["1m", "5m"])
    await exsim.step(12)  # two 5m bars close; the third is still forming
    await wait_counts(js, {kline_subject("ETHUSDT"): 12, kline_subject("ETHUSDT", "5m"): 2})
    await asyncio.sleep(0.2)
    assert (await counts(js))[kline_subject("ETHUSDT", "5m")] == 2
    rows = csv_klines("ETHUSDT")
    bars = [decode_market(m.data, m.subject)
            for m in await stored(js, kline_subject("ETHUSDT", "5m"))]
    for bar, chunk in zip(bars, (rows[0:5], rows[5:10])):
        assert (bar.open_time, bar.close_time) == (int(chunk[0]["open_time"]),
                                                   int(chunk[-1]["close_time"]))
        assert bar.open == Decimal(chunk[0]["open"]) and bar.close == Decimal(chunk[-1]["close"])
        assert bar.high == max(Decimal(r["high"]) for r in chunk)
        assert bar.low == min(Decimal(r["low"]) for r in chunk)
        assert bar.volume == sum(Decimal(r["volume"]) for r in chunk)


async def test_restarting_the_feed_mid_replay_publishes_no_duplicate_and_loses_no_bar(
        start_feed, exsim, js):
    feed = await start_feed()
    await exsim.step(3)
    await wait_counts(js, {kline_subject(s): 3 for s in SYMBOLS})
    await feed.stop()
    await exsim.step(4)  # closed while no feed runs
    again = await start_feed()
    await exsim.step(2)
    await wait_counts(js, {kline_subject(s): 9 for s in SYMBOLS})
    await asyncio.sleep(0.3)  # a duplicate would arrive now
    assert await counts(js) == {kline_subject(s): 9 for s in SYMBOLS}
    assert (await exsim.status())["bars_replayed"] == 9 * len(SYMBOLS)
    for symbol in SYMBOLS:
        assert_klines_equal_csv(await stored(js, kline_subject(symbol)), symbol, 0, 9)
    assert metric(again, "md_backfill_total", kind="kline") == 4 * len(SYMBOLS)


async def test_a_first_start_backfills_the_configured_number_of_recent_bars(start_feed, exsim, js):
    await exsim.step(5)
    await start_feed(symbols=["SOLUSDT"], initial_backfill_bars=3)
    await exsim.step(1)
    await wait_counts(js, {kline_subject("SOLUSDT"): 4})
    assert_klines_equal_csv(await stored(js, kline_subject("SOLUSDT")), "SOLUSDT", 2, 4)


async def test_websocket_drop_is_survived_and_the_gap_is_backfilled_in_order(start_feed, exsim, js):
    feed = await start_feed()
    await exsim.step(2)
    await wait_counts(js, {kline_subject(s): 2 for s in SYMBOLS})
    assert await exsim.drop_ws() == 1
    await exsim.step(5)  # the feed is waiting out its 1 s backoff: these bars are not streamed
    await feed.wait_connected(count=2)
    await exsim.step(2)
    await wait_counts(js, {kline_subject(s): 9 for s in SYMBOLS})
    assert await counts(js) == {kline_subject(s): 9 for s in SYMBOLS}
    for symbol in SYMBOLS:
        assert_klines_equal_csv(await stored(js, kline_subject(symbol)), symbol, 0, 9)
    assert metric(feed, "md_reconnects_total", reason="closed") == 1
    assert metric(feed, "md_backfill_total", kind="kline") == 5 * len(SYMBOLS)


async def test_a_bar_missed_on_a_live_connection_is_backfilled_before_the_next_one(
        start_feed, exsim, js):
    async with Relay(exsim.ws_url) as relay:
        feed = await start_feed(ws_url=relay.url, symbols=["BTCUSDT"])
        await exsim.step(2)
        await wait_counts(js, {kline_subject("BTCUSDT"): 2})
        relay.muted = True  # bar 2 is lost on the way
        await exsim.step(1)
        await eventually(lambda: _async(relay.dropped == 1), what="bar 2 dropped by the relay")
        relay.muted = False
        await exsim.step(1)  # bar 3 arrives live: bar 2 must be fetched first
        await wait_counts(js, {kline_subject("BTCUSDT"): 4})
        assert_klines_equal_csv(await stored(js, kline_subject("BTCUSDT")), "BTCUSDT", 0, 4)
        assert metric(feed, "md_backfill_total", kind="kline") == 1
        assert feed.connections == 1


async def _async(value: bool) -> bool:
    return value


# -- dead letters ------------------------------------------------------------------------------


async def test_malformed_frames_are_dead_lettered_and_the_feed_keeps_running(start_feed, exsim, js):
    async with Relay(exsim.ws_url) as relay:
        feed = await start_feed(ws_url=relay.url, symbols=["BTCUSDT"])
        rows = csv_klines("BTCUSDT")
        await relay.inject("{not json")
        bad = kline_frame(rows[0], h="1.0")  # high below low: not a valid bar
        await relay.inject(bad)
        await eventually(lambda: _async(metric(feed, "md_dead_letters_total", reason="malformed") == 2),
                         what="two dead letters")
        garbage = (await stored(js, "dlq.md.exsim.ws", stream=DLQ))[0]
        assert garbage.data == b"{not json"
        assert garbage.headers[codec.DLQ_ERROR].startswith("not JSON")
        invalid = (await stored(js, subjects.dlq(kline_subject("BTCUSDT")), stream=DLQ))[0]
        assert invalid.data == bad.encode()
        assert "high" in invalid.headers[codec.DLQ_ERROR]
        await exsim.step(2)
        await wait_counts(js, {kline_subject("BTCUSDT"): 2})
        assert_klines_equal_csv(await stored(js, kline_subject("BTCUSDT")), "BTCUSDT", 0, 2)
        assert metric(feed, "md_reconnects_total", reason="error") == 0
        assert feed.connections == 1


async def test_out_of_order_kline_is_dead_lettered_and_an_equal_one_counted_as_duplicate(
        start_feed, exsim, js):
    async with Relay(exsim.ws_url) as relay:
        feed = await start_feed(ws_url=relay.url, symbols=["BTCUSDT"])
        rows = csv_klines("BTCUSDT")
        await exsim.step(3)
        await wait_counts(js, {kline_subject("BTCUSDT"): 3})
        old = kline_frame(rows[0])
        await relay.inject(old)
        await relay.inject(kline_frame(rows[2]))
        await eventually(lambda: _async(metric(feed, "md_duplicates_total", kind="kline") == 1),
                         what="the equal bar counted")
        [dead] = await stored(js, subjects.dlq(kline_subject("BTCUSDT")), stream=DLQ)
        assert dead.data == old.encode()
        assert dead.headers[codec.DLQ_ERROR].startswith("out of order")
        assert metric(feed, "md_out_of_order_total", kind="kline") == 1
        await exsim.step(1)
        await wait_counts(js, {kline_subject("BTCUSDT"): 4})
        assert_klines_equal_csv(await stored(js, kline_subject("BTCUSDT")), "BTCUSDT", 0, 4)


# -- mark price, funding, book -------------------------------------------------------------------


async def test_mark_price_and_best_bid_ask_are_published_per_update(start_feed, exsim, js):
    await start_feed(symbols=["BTCUSDT"], streams=["mark", "book"])
    assert (await exsim.status())["ws_clients"] == 2  # /market and /public, as Binance routes
    await exsim.step(2)
    mark_subject = subjects.market("exsim", "BTCUSDT", "mark")
    book_subject = subjects.market("exsim", "BTCUSDT", "book")
    await wait_counts(js, {mark_subject: 2, book_subject: 2})
    marks = [decode_market(m.data, m.subject) for m in await stored(js, mark_subject)]
    rows = csv_klines("BTCUSDT")
    assert [m.mark_price for m in marks] == [Decimal(rows[0]["close"]), Decimal(rows[1]["close"])]
    assert {m.next_funding_time for m in marks} == {START_MS + 8 * HOUR_MS}
    books = [decode_market(m.data, m.subject) for m in await stored(js, book_subject)]
    assert all(0 < b.bid_price < b.ask_price and b.bid_qty > 0 for b in books)
    assert await counts(js, filter_="md.exsim.BTCUSDT.kline.>") == {}


async def test_single_routing_carries_every_stream_on_one_connection(start_feed, exsim, js):
    await start_feed(symbols=["BTCUSDT", "ETHUSDT"], streams=["kline", "mark", "book"],
                     ws_routing="single")
    assert (await exsim.status())["ws_clients"] == 1
    await exsim.step(1)
    await wait_counts(js, {subjects.market("exsim", s, k): 1
                           for s in ("BTCUSDT", "ETHUSDT") for k in ("mark", "book")}
                      | {kline_subject(s): 1 for s in ("BTCUSDT", "ETHUSDT")})


def _recorded_funding(symbol: str, hour_ms: int) -> Decimal:
    [row] = [r for r in csv_funding(symbol) if hour_ms <= int(r["funding_time"]) < hour_ms + 60_000]
    return Decimal(row["funding_rate"])


async def test_funding_is_published_when_the_0800_and_1600_utc_settlements_pass(start_feed, exsim, js):
    await start_feed(symbols=["BTCUSDT"], streams=["funding"])
    funding_subject = subjects.market("exsim", "BTCUSDT", "funding")
    await exsim.step(480)  # up to 07:59: no settlement passed since the feed started
    await asyncio.sleep(0.5)
    assert await counts(js, filter_=funding_subject) == {}
    await exsim.step(481)  # 08:00 ... 16:00
    await wait_counts(js, {funding_subject: 2}, timeout=60)
    msgs = await stored(js, funding_subject)
    bodies = [decode_market(m.data, m.subject) for m in msgs]
    at_08, at_16 = START_MS + 8 * HOUR_MS, START_MS + 16 * HOUR_MS
    assert [b.funding_time for b in bodies] == [at_08, at_16]
    assert [b.funding_rate for b in bodies] == [_recorded_funding("BTCUSDT", at_08),
                                                _recorded_funding("BTCUSDT", at_16)]
    assert [m.headers[codec.MSG_ID] for m in msgs] == [f"exsim:BTCUSDT:funding:{at_08}",
                                                       f"exsim:BTCUSDT:funding:{at_16}"]


async def test_funding_settled_while_the_feed_was_down_is_backfilled_on_restart(start_feed, exsim, js):
    feed = await start_feed(symbols=["BTCUSDT"], streams=["funding"])
    funding_subject = subjects.market("exsim", "BTCUSDT", "funding")
    await exsim.step(481)
    await wait_counts(js, {funding_subject: 1}, timeout=60)
    await feed.stop()
    await exsim.step(480)  # 16:00 settles while no feed runs
    await start_feed(symbols=["BTCUSDT"], streams=["funding"])
    await exsim.step(1)
    await wait_counts(js, {funding_subject: 2})
    bodies = [decode_market(m.data, m.subject) for m in await stored(js, funding_subject)]
    at_16 = START_MS + 16 * HOUR_MS
    assert bodies[1].funding_time == at_16
    assert bodies[1].funding_rate == _recorded_funding("BTCUSDT", at_16)


# -- metrics and health ---------------------------------------------------------------------------


async def test_metrics_endpoint_exposes_ws_uptime_ingest_rate_and_reconnects(start_feed, exsim, js):
    feed = await start_feed(metrics_port=0)
    await exsim.step(2)
    await wait_counts(js, {kline_subject(s): 2 for s in SYMBOLS})
    assert feed.metrics_server is not None
    async with httpx.AsyncClient(base_url=feed.metrics_server.url) as http:
        health = await http.get("/healthz")
        text = (await http.get("/metrics")).text
    assert health.status_code == 200
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(text) for s in fam.samples}
    venue = (("venue", "exsim"),)
    assert samples[("ws_uptime", venue)] > 0
    assert samples[("ingest_rate", venue)] > 0
    assert samples[("ws_connected", venue)] == 1
    assert samples[("md_messages_total", (("kind", "kline"), ("venue", "exsim")))] == 2 * len(SYMBOLS)
    assert samples[("md_published_total", (("kind", "kline"), ("venue", "exsim")))] == 2 * len(SYMBOLS)
    assert samples[("md_reconnects_total", (("reason", "closed"), ("venue", "exsim")))] == 0


async def test_reconnects_are_counted_on_metrics(start_feed, exsim, js):
    feed = await start_feed(metrics_port=0)
    await exsim.drop_ws()
    await feed.wait_connected(count=2)
    assert feed.metrics_server is not None
    async with httpx.AsyncClient(base_url=feed.metrics_server.url) as http:
        text = (await http.get("/metrics")).text
    assert 'md_reconnects_total{reason="closed",venue="exsim"} 1.0' in text


# -- watchdog and outages ---------------------------------------------------------------------


async def test_a_silent_connection_is_replaced_after_the_idle_timeout(start_feed, exsim, js):
    feed = await start_feed(idle_timeout_s=0.3, backoff={"min_s": 0.05, "max_s": 0.05})
    await feed.wait_connected(count=2, timeout=10)  # the replay is paused: nothing arrives
    assert metric(feed, "md_reconnects_total", reason="idle") >= 1
    await exsim.step(1)
    await wait_counts(js, {kline_subject(s): 1 for s in SYMBOLS})


async def test_a_connection_that_stops_answering_pings_is_replaced(start_feed, exsim, js):
    async with Relay(exsim.ws_url) as relay:
        feed = await start_feed(ws_url=relay.url, ping_interval_s=0.2, ping_timeout_s=0.3,
                                backoff={"min_s": 0.05, "max_s": 0.05})
        relay.freeze()
        await feed.wait_connected(count=2, timeout=15)
        assert metric(feed, "md_reconnects_total", reason="ping") == 1
        await exsim.step(1)
        await wait_counts(js, {kline_subject(s): 1 for s in SYMBOLS})


async def test_a_failing_rest_backfill_is_retried_until_the_gap_is_filled(start_feed, exsim, js):
    feed = await start_feed(rest_retries=0, backoff={"min_s": 0.2, "max_s": 0.2, "jitter": 0})
    await exsim.step(2)
    await wait_counts(js, {kline_subject(s): 2 for s in SYMBOLS})
    await exsim.fault(http_5xx_rate=1.0)
    await exsim.drop_ws()
    await exsim.step(3)
    await eventually(lambda: _async(metric(feed, "md_reconnects_total", reason="backfill") >= 2),
                     what="back-fill failures answered by reconnects")
    assert (await counts(js))[kline_subject("BTCUSDT")] == 2  # nothing out of order meanwhile
    await exsim.clear_faults()
    await feed.wait_connected(count=2)
    await exsim.step(1)
    await wait_counts(js, {kline_subject(s): 6 for s in SYMBOLS})
    for symbol in SYMBOLS:
        assert_klines_equal_csv(await stored(js, kline_subject(symbol)), symbol, 0, 6)


@pytest.mark.slow
async def test_a_nats_outage_is_survived_without_losing_a_bar(make_nats, exsim, tmp_path):
    import nats

    server = make_nats(store_dir=tmp_path / "js")
    port = server.port
    feed = Feed(FeedConfig(
        venue="exsim", ws_url=exsim.ws_url, rest_url=exsim.rest_url, symbols=["BTCUSDT"],
        streams=["kline"], nats_url=server.url, idle_timeout_s=None, publish_timeout_s=1.0,
        backoff={"min_s": 0.2, "max_s": 0.5}))
    task = asyncio.create_task(feed.run())
    try:
        await feed.wait_connected()
        await exsim.step(2)
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await wait_counts(js, {kline_subject("BTCUSDT"): 2})
        await nc.close()
        server.stop()
        await exsim.step(3)  # streamed while JetStream is down: publishing fails
        await eventually(lambda: _async(metric(feed, "md_reconnects_total", reason="publish") >= 1),
                         what="a failed publish answered by a reconnect")
        server = make_nats(port=port, store_dir=tmp_path / "js")
        await feed.wait_connected(count=2, timeout=60)
        await exsim.step(1)
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await wait_counts(js, {kline_subject("BTCUSDT"): 6})
        assert_klines_equal_csv(await stored(js, kline_subject("BTCUSDT")), "BTCUSDT", 0, 6)
        await nc.close()
    finally:
        await feed.stop()
        await task


# -- command line ---------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_cli_command_runs_a_feed_until_sigterm(exsim, nats_url, js):
    import signal
    import sys

    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tradefleet.cli", "marketdata", "--venue", "exsim",
        "--ws-url", exsim.ws_url, "--rest-url", exsim.rest_url, "--symbols", "btcusdt,ETHUSDT",
        "--interval", "1m", "--streams", "kline", "--nats-url", nats_url,
        "--metrics-port", str(port), "--idle-timeout", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            async def ready() -> bool:
                if proc.returncode is not None:
                    raise AssertionError((await proc.stderr.read()).decode())
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False
            await eventually(ready, timeout=30, what="the feed's /readyz")
        await exsim.step(2)
        await wait_counts(js, {kline_subject("BTCUSDT"): 2, kline_subject("ETHUSDT"): 2})
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()[-2000:]
    logs = [orjson.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    assert {"component": "marketdata", "msg": "market-data feed stopped"}.items() <= logs[-1].items()


def test_cli_refuses_bad_options_naming_the_field():
    from typer.testing import CliRunner

    from tradefleet.cli import app

    result = CliRunner().invoke(app, [
        "marketdata", "--venue", "exsim", "--ws-url", "http://x", "--rest-url", "http://y",
        "--symbols", "BTCUSDT"])
    assert result.exit_code == 2
    assert "ws_url" in result.output


async def test_stop_during_start_up_returns_while_nats_is_unreachable(exsim):
    feed = Feed(FeedConfig(venue="exsim", ws_url=exsim.ws_url, rest_url=exsim.rest_url,
                           symbols=["BTCUSDT"], nats_url=f"nats://127.0.0.1:{_free_port()}"))
    task = asyncio.create_task(feed.run())
    await asyncio.sleep(0.5)  # retrying the first NATS connection (deadline 60 s)
    await asyncio.wait_for(feed.stop(), 5)
    await asyncio.wait_for(task, 5)
    assert feed.connections == 0


async def test_healthz_fails_while_the_venue_stays_unreachable(nats_url, exsim, js):
    feed = Feed(FeedConfig(venue="exsim", ws_url=f"ws://127.0.0.1:{_free_port()}",
                           rest_url=exsim.rest_url, symbols=["BTCUSDT"], nats_url=nats_url,
                           metrics_port=0, max_disconnected_s=0.3,
                           backoff={"min_s": 0.05, "max_s": 0.1}))
    task = asyncio.create_task(feed.run())
    try:
        await eventually(lambda: _async(metric(feed, "md_reconnects_total", reason="connect") >= 2),
                         what="refused connections answered by reconnects")
        await asyncio.sleep(0.3)
        assert feed.metrics_server is not None
        async with httpx.AsyncClient(base_url=feed.metrics_server.url) as http:
            live, ready = await http.get("/healthz"), await http.get("/readyz")
        assert (live.status_code, ready.status_code) == (503, 503)
        assert "cannot open the market connection" in live.json()["reason"]
    finally:
        await feed.stop()
        await task
