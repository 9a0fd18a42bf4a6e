"""Bot worker end to end: real exsim (over real ccxt), real marketdata feed, real JetStream.

Data path under test: exsim replays the bundled BTCUSDT 1m klines → WebSocket →
``tradefleet.workers.marketdata.Feed`` → ``md.exsim.BTCUSDT.*`` (stream MARKET) → the bot's
durable consumer → strategy → sizing → local risk check → executor (ccxt) → exsim; the bot's
events land on ``fleet.test.{bot}.*`` (stream FLEET).

The replay never runs on its own: :meth:`Stack.step` replays one bar and waits until every
running bot has processed it, so each test is deterministic.

``traded`` (module scope) runs one bot over 200+ bars once and records everything; several
tests read that record (trading, protective stops after every step, trace ids, metrics,
clean shutdown). The other tests run their own short replays.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any, Self

import ccxt.async_support as ccxt_async
import httpx
import orjson
import pytest
import pytest_asyncio
from nats.js.errors import NotFoundError
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tradefleet.exsim.server import ccxt_urls
from tradefleet.workers.bot.commands import send_command
from tradefleet.workers.bot.config import BotOptions, Credentials
from tradefleet.workers.bot.market import durable_name
from tradefleet.workers.bot.worker import BotWorker
from tradefleet.workers.execution import NullHooks
from tradefleet.workers.marketdata import Feed, FeedConfig
from tradefleet.workers.risk.client import RiskServiceClient
from tradefleet.workers.strategies import Action, Bar, build_strategy

from tradefleet.api import TradingBot
from tradefleet.bus import connect, ensure_streams
from tradefleet.bus.fleet_messages import Phase
from tradefleet.bus.streams import DLQ, FLEET, MARKET, RISK
from tradefleet.telemetry import setup_tracing

pytestmark = pytest.mark.slow

NS = "test"
SYM = "BTCUSDT"
BTC = "BTC/USDT:USDT"
DATA = Path(__file__).resolve().parents[2] / "data" / "binance-um"


def manifest(name: str, rest_url: str, strategy: dict, **spec: Any) -> TradingBot:
    """A paper TradingBot on exsim trading BTCUSDT 1m."""
    body = {"venue": "exsim", "mode": "paper", "symbols": [SYM], "interval": "1m",
            "strategy": strategy, "endpoints": {"restUrl": rest_url},
            "sizing": {"riskPctPerTrade": 1, "maxPositionNotionalUsdt": 4000},
            "risk": {"lossStreakLimit": 100}, "heartbeatIntervalS": 1}
    body.update(spec)
    return TradingBot.model_validate({"apiVersion": "tradefleet.io/v1alpha1", "kind": "TradingBot",
                                      "metadata": {"name": name, "namespace": NS}, "spec": body})


class Run:
    """One bot worker running as an asyncio task."""

    def __init__(self, worker: BotWorker) -> None:
        self.worker = worker
        self.task = asyncio.create_task(worker.run(), name=f"bot:{worker.bot.key}")

    @property
    def trader(self):
        return self.worker.trader

    async def started(self, timeout: float = 60) -> Run:
        waiter = asyncio.create_task(self.worker.started.wait())
        done, _ = await asyncio.wait({waiter, self.task}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        if self.task in done:
            waiter.cancel()
            raise AssertionError(f"bot exited during start-up with {self.task.result()}")
        assert waiter in done, "bot did not start in time"
        return self

    async def stop(self) -> int:
        """SIGTERM path: clean stop; the exit code."""
        self.worker.request_stop("test")
        return await asyncio.wait_for(self.task, 60)

    async def crash(self) -> None:
        """Cancel the task: no clean stop, no final status (a killed pod)."""
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass


class Stack:
    """exsim (reset), a clean JetStream, the marketdata feed, a fleet.> recorder and ccxt."""

    def __init__(self, rest_url: str, api_key: str, api_secret: str, nats_url: str,
                 symbols: tuple[str, ...] = (SYM,)) -> None:
        self.rest_url, self.api_key, self.api_secret = rest_url, api_key, api_secret
        self.symbols = list(symbols)
        self.nats_url = nats_url
        self.runs: list[Run] = []
        self.messages: list[tuple[str, dict, dict]] = []
        self.clock = 0

    async def __aenter__(self) -> Self:
        self.nc = await connect(self.nats_url, name="test:bot-stack", connect_deadline_s=10)
        self.js = self.nc.jetstream(timeout=10)
        await self._drop_streams()  # replayed bars reuse msg ids: start from empty streams
        await ensure_streams(self.js)
        self.admin = httpx.AsyncClient(base_url=self.rest_url, timeout=60)
        status = await self._admin("POST", "/admin/reset")
        self.clock = status["replay_clock"]
        await self.nc.subscribe("fleet.>", cb=self._record)
        self.feed = Feed(FeedConfig(
            venue="exsim", ws_url="ws" + self.rest_url[len("http"):], rest_url=self.rest_url,
            symbols=self.symbols, intervals=["1m"], streams=["kline", "mark", "funding"],
            nats_url=self.nats_url, idle_timeout_s=None))
        self.feed_task = asyncio.create_task(self.feed.run())
        await self.feed.wait_connected(timeout=30)
        self.exchange = ccxt_async.binanceusdm({
            "apiKey": self.api_key, "secret": self.api_secret, "urls": ccxt_urls(self.rest_url),
            "options": {"fetchCurrencies": False}, "enableRateLimit": False})
        await self.exchange.load_markets()
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Each step bounded and independent: a slow one must not leave the rest (and the
        # NATS connection) open for the next test.
        steps = [*(run.crash() for run in self.runs if not run.task.done()), self.feed.stop(),
                 self.exchange.close(), self.admin.aclose(), self._drop_streams()]
        slow = []
        for step in steps:
            started = time.monotonic()
            try:
                async with asyncio.timeout(30):
                    await step
            except Exception as err:  # noqa: BLE001 - reported below, teardown goes on
                slow.append(f"{step.__qualname__}: {type(err).__name__} {err}")
            if time.monotonic() - started > 10:
                slow.append(f"{step.__qualname__} took {time.monotonic() - started:.1f} s")
        await self.nc.close()
        assert not slow, f"teardown problems: {slow}"

    async def _drop_streams(self) -> None:
        for name in (MARKET, FLEET, RISK, DLQ):
            try:
                await self.js.delete_stream(name)
            except NotFoundError:
                pass

    async def _admin(self, method: str, path: str, json: Any = None) -> dict:
        resp = await self.admin.request(method, path, json=json)
        assert resp.status_code == 200, f"{path}: {resp.status_code} {resp.text}"
        return resp.json()

    async def _record(self, msg: Any) -> None:
        self.messages.append((msg.subject, orjson.loads(msg.data), dict(msg.headers or {})))

    def kind(self, kind: str, bot: str | None = None) -> list[dict]:
        """Recorded bodies of ``fleet.test.{bot}.{kind}``."""
        return [b for s, b, _ in self.messages
                if s.endswith("." + kind) and (bot is None or s.split(".")[2] == bot)]

    async def start_bot(self, bot: TradingBot, hooks: Any = None, risk: Any = None,
                        **options: Any) -> Run:
        opts = BotOptions(nats_url=self.nats_url, metrics_port=0, metrics_host="127.0.0.1",
                          exchange_options={"enableRateLimit": False}, **options)
        worker = BotWorker(bot, opts, credentials=Credentials(self.api_key, self.api_secret),
                           hooks=hooks, risk=risk)
        run = Run(worker)
        self.runs.append(run)
        return await run.started()

    async def step(self, n: int = 1, wait: list[Run] | None = None, after=None) -> None:
        """Replay ``n`` bars one at a time; after each, wait until every running bot (or
        ``wait``) processed it, then call ``after()`` if given."""
        for _ in range(n):
            status = await self._admin("POST", "/admin/replay/step", {"bars": 1})
            self.clock = status["replay_clock"]
            for run in (wait if wait is not None else [r for r in self.runs if not r.task.done()]):
                await self.processed(run)
            if after is not None:
                await after()

    async def processed(self, run: Run, timeout: float = 20) -> None:
        """Wait until ``run`` processed the bar closing just before the replay clock (on
        every symbol it trades)."""
        deadline = time.monotonic() + timeout
        while run.trader is None or min(run.trader.last_close.get(x, -1) for x in
                                        run.worker.bot.spec.symbols) < self.clock - 1:
            if run.task.done():
                raise AssertionError(f"bot ended: {run.task.result()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"bot did not process bar {self.clock - 1} within {timeout} s")
            await asyncio.sleep(0.002)

    async def settled(self, bot: str, timeout: float = 20) -> Any:
        """Wait until bot ``bot``'s consumer has nothing pending or unacked (the mark price
        of the last step arrives after its kline); returns the ConsumerInfo."""
        await asyncio.sleep(0.2)
        deadline = time.monotonic() + timeout
        while True:
            info = await self.js.consumer_info(MARKET, durable_name(NS, bot))
            if info.num_pending == 0 and info.num_ack_pending == 0:
                return info
            if time.monotonic() > deadline:
                raise AssertionError(f"consumer of {bot} not settled: {info}")
            await asyncio.sleep(0.02)

    async def wait_for(self, predicate, timeout: float = 20, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.01)

    async def protection(self) -> list[str]:
        """Problems with the account's protection now: every open position must have a
        reduce-only STOP_MARKET (conditional) order on the other side covering its size."""
        problems = []
        positions = [p for p in await self.exchange.fetch_positions([BTC])
                     if float(p.get("contracts") or 0) > 0]
        stops = await self.exchange.fetch_open_orders(BTC, params={"trigger": True})
        for p in positions:
            close_side = "sell" if p["side"] == "long" else "buy"
            # ccxt reports a conditional STOP_MARKET as type "market" with a trigger price;
            # Binance's own orderType tells a stop from a take-profit.
            mine = [o for o in stops if o["side"] == close_side
                    and o["info"].get("orderType") == "STOP_MARKET"
                    and (o.get("reduceOnly") or o["info"].get("closePosition"))]
            cover = sum(float(o["amount"] or 0) for o in mine)
            if any(o["info"].get("closePosition") for o in mine):
                cover = float("inf")
            if cover + 1e-12 < float(p["contracts"]):
                problems.append(f"clock {self.clock}: {p['side']} {p['contracts']} covered by "
                                f"stops for only {cover}: {[(o['type'], o['side'], o['amount']) for o in stops]}")
        return problems

    async def exchange_orders(self) -> list[dict]:
        """Every order of the account on BTCUSDT: plain and conditional."""
        plain = await self.exchange.fetch_orders(BTC, limit=1000)
        algo = await self.exchange.fetch_orders(BTC, limit=1000, params={"trigger": True})
        return plain + algo

    async def position(self) -> dict | None:
        ps = [p for p in await self.exchange.fetch_positions([BTC])
              if float(p.get("contracts") or 0) > 0]
        return ps[0] if ps else None


@pytest.fixture
async def stack(exsim, nats_url) -> Any:
    async with Stack(exsim.rest_url, exsim.api_key, exsim.api_secret, nats_url) as s:
        yield s


# -- one traded replay, recorded ---------------------------------------------------------------

EMA_FAST_FLIP = {"name": "ema_cross",
                 "params": {"ema_fast": 3, "ema_slow": 8, "allow_shorts": True, "stop_pct": 0.003}}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def traded(exsim_thread, nats_url) -> dict:
    """ema_cross 3/8 with shorts and a 0.3 % stop plus a 1.5 R take-profit tier over 200
    bars (then until a position is open), checking the account's protection after every
    step; then a clean stop. Everything is torn down before the tests read the record (a
    module-scoped loop sits idle while other tests run: nothing may stay connected)."""
    key, secret = exsim_thread.config.api_keys[0]
    spans = InMemorySpanExporter()
    setup_tracing("tradefleet-tests", span_exporter=spans)
    async with Stack(exsim_thread.base_url, key, secret, nats_url) as s:
        bot = manifest("traded", s.rest_url, EMA_FAST_FLIP,
                       execution={"tpTiers": [{"r": 1.5, "fraction": 0.5}], "trailing": False})
        run = await s.start_bot(bot)
        problems: list[str] = []
        checks = 0

        async def check() -> None:
            nonlocal checks
            checks += 1
            problems.extend(await s.protection())

        await s.step(200, after=check)
        for _ in range(100):  # end with a position open, to see it survive the shutdown
            if not run.trader.executor.position(SYM).is_flat:
                break
            await s.step(1, after=check)
        async with httpx.AsyncClient(base_url=run.worker.metrics_url) as http:
            metrics = (await http.get("/metrics")).text
            health = (await http.get("/healthz")).status_code
        counters = run.trader.counters.model_copy()
        code = await run.stop()
        await asyncio.sleep(0.3)  # let the recorder receive the final status
        record = {
            "stack": s, "problems": problems, "checks": checks, "metrics": metrics,
            "health": health, "exit_code": code, "counters": counters,
            "orders": await s.exchange_orders(),
            "trades": await s.exchange.fetch_my_trades(BTC, limit=1000),
            "position_after_stop": await s.position(),
            "protection_after_stop": await s.protection(),
            "headers": list(s.messages),
            "spans": [(x.name, format(x.context.trace_id, "032x"),
                       x.parent.span_id if x.parent else None) for x in spans.get_finished_spans()],
        }
    spans.shutdown()  # stop collecting: the provider is process-wide
    return record


def test_bot_trades_the_bundled_btcusdt_replay_end_to_end(traded):
    s = traded["stack"]
    signals = s.kind("signal", "traded")
    executed = [x for x in signals if x["disposition"] == "executed"]
    assert len(executed) >= 5, Counter(x["disposition"] for x in signals)
    entries = [o for o in s.kind("order", "traded") if o["purpose"] == "entry"]
    assert entries and all(o["status"] == "filled" for o in entries)
    # Every entry the bot reports is an order on the exchange under its client order id.
    on_exchange = {o["clientOrderId"]: o for o in traded["orders"]}
    for o in entries:
        assert on_exchange[o["client_order_id"]]["status"] == "closed"
        assert Decimal(str(on_exchange[o["client_order_id"]]["filled"])) == Decimal(o["qty"])
    # Every trade on the exchange was published as a fill, once.
    fills = s.kind("fill", "traded")
    assert sorted(f["trade_id"] for f in fills) == sorted(str(t["id"]) for t in traded["trades"])
    assert len({f["trade_id"] for f in fills}) == len(fills)


def test_every_open_position_has_a_protective_stop_after_every_step(traded):
    assert traded["checks"] >= 200
    assert traded["problems"] == []


def test_stops_and_take_profits_are_reduce_only_orders_sized_to_the_position(traded):
    s = traded["stack"]
    orders = s.kind("order", "traded")
    stops = [o for o in orders if o["purpose"] == "stop" and o["status"] == "new"]
    tps = [o for o in orders if o["purpose"] == "take_profit" and o["status"] == "new"]
    entries = {o["signal_id"]: o for o in orders if o["purpose"] == "entry"}
    assert stops and tps
    for o in stops + tps:
        assert o["reduce_only"] and o["stop_price"] is not None
        entry = entries[o["signal_id"]]
        assert o["side"] != entry["side"]
    # The first stop of a position covers the whole entry (later legs "stop-N" are resized
    # to what the take-profit left).
    first = [o for o in stops if o["client_order_id"].endswith("-stop")]
    assert first and all(Decimal(o["qty"]) == Decimal(entries[o["signal_id"]]["filled_qty"])
                         for o in first)


def test_realized_pnl_in_status_is_the_sum_of_fills_net_of_fees(traded):
    s = traded["stack"]
    fills = s.kind("fill", "traded")
    net = sum(Decimal(f["realized_pnl"]) - Decimal(f["fee"]) for f in fills)
    final = s.kind("status", "traded")[-1]
    assert Decimal(final["realized_pnl"]) == net
    assert traded["counters"].trades_won + traded["counters"].trades_lost > 0


def test_a_signals_trace_id_is_on_its_signal_order_and_fill_messages(traded):
    s = traded["stack"]
    signals = [x for x in s.kind("signal", "traded") if x["disposition"] == "executed"]
    orders, fills = s.kind("order", "traded"), s.kind("fill", "traded")
    checked = 0
    for sig in signals:
        tid = sig["trace_id"]
        assert tid and len(tid) == 32
        mine_o = [o for o in orders if o["signal_id"] == sig["signal_id"]
                  and o["purpose"] in ("entry", "reverse", "exit")]
        mine_f = [f for f in fills if f["signal_id"] == sig["signal_id"]
                  and f["purpose"] in ("entry", "reverse", "exit")]
        assert mine_o and mine_f
        assert {o["trace_id"] for o in mine_o} == {tid}
        assert {f["trace_id"] for f in mine_f} == {tid}
        checked += 1
    assert checked >= 5
    # The risk check, the order and the fill are spans of the signal's trace.
    by_trace: dict[str, set[str]] = {}
    for name, tid, _ in traded["spans"]:
        by_trace.setdefault(tid, set()).add(name)
    for sig in signals:
        names = by_trace[sig["trace_id"]]
        assert {"signal", "fill"} <= names and names & {"order.entry", "order.reverse"}, names
        if sig["action"] != "exit":
            assert "risk.check" in names
    # The W3C context in the NATS headers carries the same trace id.
    for subject, body, headers in traded["headers"]:
        if subject.endswith((".signal", ".order", ".fill")) and body.get("trace_id"):
            assert headers["traceparent"].split("-")[1] == body["trace_id"]


def test_metrics_and_health_are_served_with_the_seed_names(traded):
    text = traded["metrics"]
    assert traded["health"] == 200
    for line in ('bot_up{bot="test/traded"} 1.0', "order_latency_ms_count",
                 'order_reject_rate{bot="test/traded"} 0.0', "pnl_realized{", "pnl_unrealized{",
                 "pnl_day_usdt{", 'position_qty{bot="test/traded",symbol="BTCUSDT"}',
                 'signals_total{action="enter_long"'):
        assert line in text, line
    bars = [ln for ln in text.splitlines() if ln.startswith("bars_processed_total{")]
    assert bars and float(bars[0].split()[-1]) >= 200


def test_sigterm_stop_leaves_the_position_with_its_stop_and_says_so(traded):
    s = traded["stack"]
    assert traded["exit_code"] == 0
    final = s.kind("status", "traded")[-1]
    assert final["stopped"] is True
    assert "1 open position(s) left with their protective stops" in final["reason"]
    assert traded["position_after_stop"] is not None
    assert traded["protection_after_stop"] == []


# -- restart -------------------------------------------------------------------------------------

def reference_signals(strategy: dict, bars: int) -> list[tuple[int, str]]:
    """(close time, action) of the pure strategy over the first ``bars`` recorded klines."""
    import csv
    import gzip

    [path] = sorted((DATA / "klines").glob(f"{SYM}-1m-*.csv.gz"))
    s = build_strategy(strategy["name"], SYM, strategy["params"])
    out = []
    with gzip.open(path, "rt", newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            if i >= bars:
                break
            sig = s.on_bar(Bar(int(row["open_time"]), float(row["open"]), float(row["high"]),
                               float(row["low"]), float(row["close"]), float(row["volume"]),
                               int(row["close_time"])))
            if sig is not None:
                out.append((sig.close_time, sig.action.value))
    return out


LONG_ONLY = {"name": "ema_cross",
             "params": {"ema_fast": 3, "ema_slow": 8, "allow_shorts": False, "stop_pct": 0.05}}


async def test_killed_and_restarted_bot_neither_loses_a_bar_nor_doubles_an_order(stack):
    s = stack
    bot = manifest("restart", s.rest_url, LONG_ONLY)
    runs: list[Run] = []

    class KillOnSecondEntry(NullHooks):
        """Cancels the bot the moment its second entry is acknowledged: mid-bar, before the
        bar is acked (a pod killed at the worst moment)."""

        entries = 0

        def order_latency(self, symbol: str, purpose: str, latency_ms: float) -> None:
            if purpose == "entry":
                self.entries += 1
                if self.entries == 2:
                    runs[0].task.cancel()

    runs.append(await s.start_bot(bot, hooks=KillOnSecondEntry(), ack_wait_s=1.0))
    first = runs[0]
    steps = 0
    while not first.task.done():
        status = await s._admin("POST", "/admin/replay/step", {"bars": 1})
        s.clock, steps = status["replay_clock"], steps + 1
        await s.wait_for(lambda: first.task.done() or first.trader.last_close.get(SYM, -1)
                         >= s.clock - 1, what="bar processed")
        assert steps < 400, "no second entry"
    await first.crash()
    # Whatever the killed bot managed to send, take the stop away: the next instance must
    # find the position unprotected and protect it before anything else.
    await s.exchange.cancel_all_orders(BTC, params={"trigger": True})
    assert await s.protection() != []
    before = await s.js.consumer_info(MARKET, durable_name(NS, "restart"))
    # Bars keep coming while the bot is down.
    for _ in range(20):
        await s.step(1, wait=[])
    second = await s.start_bot(bot, ack_wait_s=1.0)
    assert await s.protection() == []  # rehydrated: the position got its stop at start
    await s.processed(second, timeout=30)
    await s.step(120)
    steps += 140
    await s.settled("restart")
    await second.stop()

    info = await s.js.consumer_info(MARKET, durable_name(NS, "restart"))
    stream = await s.js.stream_info(MARKET, subjects_filter=f"md.exsim.{SYM}.kline.1m")
    published = stream.state.subjects[f"md.exsim.{SYM}.kline.1m"]
    assert published == steps
    # No bar lost: everything delivered was acked, nothing pending.
    assert info.num_pending == 0 and info.num_ack_pending == 0
    assert info.ack_floor.stream_seq == info.delivered.stream_seq > before.ack_floor.stream_seq
    # ...and each bar went through a strategy exactly once across the two processes.
    assert first.trader.counters.bars_processed + second.trader.counters.bars_processed == published
    assert second.trader.counters.warmup_bars > 0  # warmed from MARKET up to the ack floor
    # No order doubled, and exactly the reference strategy's entries and exits happened.
    orders = await s.exchange_orders()
    ids = [o["clientOrderId"] for o in orders]
    assert len(ids) == len(set(ids)), Counter(ids).most_common(3)
    expected = reference_signals(LONG_ONLY, steps)
    entries = [o for o in orders if o["clientOrderId"].endswith("-entry")]
    exits = [o for o in orders if o["clientOrderId"].endswith("-exit")]
    assert len(entries) == sum(1 for _, a in expected if a == Action.ENTER_LONG.value)
    assert len(exits) == sum(1 for _, a in expected if a == Action.EXIT.value)
    assert all(o["status"] == "closed" for o in entries + exits)


async def test_warm_up_reads_rest_history_and_places_no_order(stack):
    s = stack
    await s.step(60, wait=[])  # history the bot has never seen, and the stream is read live
    await s.js.purge_stream(MARKET)  # the stream lacks that history: REST must supply it
    run = await s.start_bot(manifest("warm", s.rest_url, LONG_ONLY))
    strategy = run.trader.strategies[SYM]
    assert strategy.ready
    assert run.trader.counters.warmup_bars >= 58
    assert run.trader.counters.bars_processed == 0
    assert await s.exchange_orders() == []
    assert s.kind("signal", "warm") == []
    await s.step(1)
    assert run.trader.counters.bars_processed == 1


# -- commands ------------------------------------------------------------------------------------

TRAILING = {"name": "keltner_breakout",
            "params": {"ema_period": 10, "atr_period": 10, "keltner_mult": 0.5,
                       "allow_shorts": True, "atr_stop_mult": 2.0, "atr_trail_mult": 1.0}}


async def _step_until(s: Stack, predicate, limit: int = 600, what: str = "condition") -> None:
    for _ in range(limit):
        if predicate():
            return
        await s.step(1)
    raise AssertionError(f"{what} did not happen within {limit} bars")


async def test_pause_stops_new_entries_but_stops_still_trail(stack):
    s = stack
    run = await s.start_bot(manifest("pause", s.rest_url, TRAILING,
                                     execution={"trailing": True}))
    await _step_until(s, lambda: not run.trader.executor.position(SYM).is_flat, what="an entry")
    await send_command(s.js, NS, "pause", "pause", reason="test")
    await s.wait_for(lambda: run.trader.phase is Phase.PAUSED, what="Paused")
    paused_at = len(s.messages)
    moves_before = run.trader.counters.stop_moves

    def done() -> bool:
        refused = [x for x in s.kind("signal", "pause")
                   if x["disposition"] == "paused" and x["action"] != "exit"]
        return bool(refused) and run.trader.counters.stop_moves > moves_before
    await _step_until(s, done, what="a refused entry and a trailed stop while paused")

    after = [b for subj, b, _ in s.messages[paused_at:] if subj.endswith(".order")]
    assert not [o for o in after if o["purpose"] == "entry"]
    assert [o for o in after if o["purpose"] == "trail" and o["status"] == "new"]
    status = [x for x in s.kind("status", "pause") if x["phase"] == "Paused"]
    assert status and "pause command" in status[-1]["reason"]
    assert await s.protection() == []


async def test_drain_leaves_the_bot_flat_without_orders_and_its_status_says_so(stack):
    s = stack
    run = await s.start_bot(manifest("drain", s.rest_url, EMA_FAST_FLIP,
                                     execution={"tpTiers": [{"r": 3, "fraction": 0.5}]}))
    await _step_until(s, lambda: not run.trader.executor.position(SYM).is_flat, what="an entry")
    await send_command(s.js, NS, "drain", "drain", reason="test")
    await s.wait_for(lambda: run.trader.phase is Phase.PAUSED, what="drained and Paused")
    assert await s.position() is None
    assert await s.exchange.fetch_open_orders(BTC) == []
    assert await s.exchange.fetch_open_orders(BTC, params={"trigger": True}) == []
    await asyncio.sleep(0.2)
    final = s.kind("status", "drain")[-1]
    assert final["phase"] == "Paused" and final["reason"].startswith("drained: flat, no open orders")
    assert final["positions"] == []
    entries = sum(1 for o in s.kind("order", "drain") if o["purpose"] == "entry")
    await s.step(60)  # stays paused: signals keep coming, no entry is placed
    assert sum(1 for o in s.kind("order", "drain") if o["purpose"] == "entry") == entries
    assert [x for x in s.kind("signal", "drain") if x["disposition"] == "paused"]


async def test_kill_command_flattens_and_halts_until_resume(stack):
    s = stack
    run = await s.start_bot(manifest("kill", s.rest_url, EMA_FAST_FLIP))
    await _step_until(s, lambda: not run.trader.executor.position(SYM).is_flat, what="an entry")
    await send_command(s.js, NS, "kill", "kill", reason="test")
    await s.wait_for(lambda: run.trader.phase is Phase.HALTED, what="Halted")
    assert await s.position() is None
    assert run.trader.reason.startswith("killed: kill command")
    await send_command(s.js, NS, "kill", "resume")
    await s.wait_for(lambda: run.trader.phase is Phase.RUNNING, what="Running")
    await _step_until(s, lambda: not run.trader.executor.position(SYM).is_flat,
                      what="an entry after resume")


async def test_spec_paused_starts_paused_and_survives_a_restart(stack):
    s = stack
    bot = manifest("specpaused", s.rest_url, EMA_FAST_FLIP, paused=True)
    run = await s.start_bot(bot)
    assert run.trader.phase is Phase.PAUSED
    await _step_until(s, lambda: any(x["disposition"] == "paused"
                                     for x in s.kind("signal", "specpaused")),
                      what="a signal while paused")
    assert not [o for o in s.kind("order", "specpaused") if o["purpose"] == "entry"]
    await send_command(s.js, NS, "specpaused", "resume")
    await s.wait_for(lambda: run.trader.phase is Phase.RUNNING, what="Running after resume")
    await run.stop()
    again = await s.start_bot(bot)  # the stored resume does not override spec.paused
    assert again.trader.phase is Phase.PAUSED


# -- guards --------------------------------------------------------------------------------------

async def test_entries_fail_closed_when_the_risk_service_does_not_answer(stack):
    s = stack
    risk = RiskServiceClient(s.nc, timeout_ms=200)  # no risk service runs: no responders
    run = await s.start_bot(manifest("noriskservice", s.rest_url, EMA_FAST_FLIP), risk=risk)
    await _step_until(s, lambda: len(s.kind("signal", "noriskservice")) >= 3,
                      what="three signals")
    signals = s.kind("signal", "noriskservice")
    assert {x["disposition"] for x in signals} == {"risk_blocked"}
    assert all("fail closed" in x["disposition_reason"] for x in signals)
    assert s.kind("order", "noriskservice") == [] and await s.exchange_orders() == []
    assert run.trader.counters.risk_blocks == len(signals)


async def test_loss_streak_halts_entries_until_resume(stack):
    s = stack
    run = await s.start_bot(manifest("streak", s.rest_url, EMA_FAST_FLIP,
                                     risk={"lossStreakLimit": 2, "lossStreakCooldownMin": 0}))
    await _step_until(s, lambda: run.trader.phase is Phase.HALTED, what="the loss streak halt")
    assert run.trader.ledger.loss_streak == 2
    assert "loss streak: 2 consecutive losing trades" in run.trader.reason
    halted = s.kind("status", "streak")[-1]
    assert halted["phase"] == "Halted" and halted["loss_streak"] == 2
    entries = sum(1 for o in s.kind("order", "streak") if o["purpose"] == "entry")
    await _step_until(s, lambda: any(x["disposition"] == "paused" and x["action"] != "exit"
                                     for x in s.kind("signal", "streak")),
                      what="an entry signal while halted")
    assert sum(1 for o in s.kind("order", "streak") if o["purpose"] == "entry") == entries
    await send_command(s.js, NS, "streak", "resume")
    await s.wait_for(lambda: run.trader.phase is Phase.RUNNING, what="Running after resume")
    assert run.trader.ledger.loss_streak == 0


async def test_loss_streak_halt_lifts_after_its_cooldown_in_market_time(stack):
    s = stack
    run = await s.start_bot(manifest("cooldown", s.rest_url, EMA_FAST_FLIP,
                                     risk={"lossStreakLimit": 2, "lossStreakCooldownMin": 20}))
    await _step_until(s, lambda: run.trader.phase is Phase.HALTED, what="the loss streak halt")
    assert "resume after 20 min of market time" in run.trader.reason
    halted_at = max(run.trader.last_close.values())
    await s.step(10)
    assert run.trader.phase is Phase.HALTED  # 10 bars (minutes) in: still cooling down
    await _step_until(s, lambda: run.trader.phase is Phase.RUNNING, what="the cooldown's end")
    assert max(run.trader.last_close.values()) >= halted_at + 20 * 60_000 - 60_000
    assert run.trader.ledger.loss_streak == 0


@pytest.fixture
async def two_symbol_stack(exsim, nats_url) -> Any:
    async with Stack(exsim.rest_url, exsim.api_key, exsim.api_secret, nats_url,
                     symbols=(SYM, "ETHUSDT")) as s:
        yield s


async def test_one_bot_consumes_every_bar_of_each_of_its_symbols(two_symbol_stack):
    s = two_symbol_stack
    run = await s.start_bot(manifest("pair", s.rest_url, LONG_ONLY, symbols=[SYM, "ETHUSDT"]))
    await s.step(40)
    assert run.trader.counters.bars_processed == 80
    for sym in (SYM, "ETHUSDT"):
        assert run.trader.strategies[sym].state()["bars"] == 40
        assert run.trader.last_close[sym] == s.clock - 1


async def test_cli_bot_process_runs_and_stops_cleanly_on_sigterm(stack, tmp_path):
    s = stack
    config = tmp_path / "bot.yaml"
    config.write_text(f"""\
apiVersion: tradefleet.io/v1alpha1
kind: TradingBot
metadata: {{name: cli, namespace: {NS}}}
spec:
  venue: exsim
  symbols: [{SYM}]
  strategy: {{name: ema_cross, params: {{ema_fast: 3, ema_slow: 8}}}}
  endpoints: {{restUrl: "{s.rest_url}"}}
""")
    env = {**os.environ, "NATS_URL": s.nats_url, "EXSIM_API_KEY": s.api_key,
           "EXSIM_API_SECRET": s.api_secret, "LOG_LEVEL": "WARNING"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tradefleet.cli", "bot", "--config", str(config),
        "--metrics-port", "0", env=env, stderr=asyncio.subprocess.PIPE)
    try:
        await s.wait_for(lambda: any(x["phase"] == "Running" for x in s.kind("status", "cli")),
                         timeout=60, what="the bot process to report Running")
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    stderr = (await proc.stderr.read()).decode()
    assert code == 0, stderr
    await s.wait_for(lambda: s.kind("status", "cli")[-1]["stopped"], what="the final status")
    assert "stopped (SIGTERM)" in s.kind("status", "cli")[-1]["reason"]
    assert s.api_secret not in stderr
