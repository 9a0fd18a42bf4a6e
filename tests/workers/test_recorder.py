"""The recorder over real NATS JetStream and real PostgreSQL: what lands in which table.

Each test runs a Recorder in-process against the session's nats-server (fresh streams) and
a fresh empty database, publishes real message bodies, and reads the rows back.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from decimal import Decimal as D

import httpx
import orjson
import pytest

from tradefleet.bus import codec, subjects
from tradefleet.bus.fleet_messages import (
    Command,
    CommandMsg,
    FillMsg,
    OrderMsg,
    Phase,
    PositionMsg,
    SignalDisposition,
    SignalMsg,
    StatusMsg,
    command_msg_id,
    fill_msg_id,
    order_msg_id,
    position_msg_id,
    signal_msg_id,
)
from tradefleet.bus.publish import publish
from tradefleet.telemetry.metrics import serve_metrics
from tradefleet.workers.recorder.cli import build_config
from tests.workers._recorder import (
    T0,
    kline,
    metric,
    publish_klines,
    recorder_config,
    rows,
    running,
    wait_rows,
)


def utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


async def test_klines_land_in_bars_with_exact_prices_and_times(bus, nats_url, pg_dsn, caplog):
    caplog.set_level(logging.INFO)  # every info log line of a start is formatted, too
    bodies = [kline(s, i) for s in ("BTCUSDT", "ETHUSDT") for i in range(50)]
    async with running(recorder_config(nats_url, pg_dsn)):
        await publish_klines(bus, bodies)
        await wait_rows(pg_dsn, "bars", 100)
    [row] = await rows(pg_dsn, "SELECT venue, symbol, interval, open_time, close_time, "
                       "open_time_ms, open, high, low, close, volume, quote_volume, trades, "
                       "event_time, source FROM bars WHERE symbol = 'ETHUSDT' AND "
                       "open_time_ms = %s", T0 + 7 * 60_000)
    b = kline("ETHUSDT", 7)
    assert row == ("exsim", "ETHUSDT", "1m", utc(b["open_time"]), utc(b["close_time"]),
                   b["open_time"], D(b["open"]), D(b["high"]), D(b["low"]), D(b["close"]),
                   D(b["volume"]), D("1234.56"), 17, utc(b["event_time"]), "ws")


async def test_funding_lands_in_funding(bus, nats_url, pg_dsn):
    body = {"venue": "exsim", "symbol": "BTCUSDT", "funding_time": T0 + 8 * 3_600_000,
            "funding_rate": "-0.00012345", "mark_price": "94321.5"}
    async with running(recorder_config(nats_url, pg_dsn)):
        await publish(bus, subjects.market("exsim", "BTCUSDT", "funding"), body)
        await wait_rows(pg_dsn, "funding", 1)
    assert await rows(pg_dsn, "SELECT venue, symbol, funding_time, funding_time_ms, "
                      "funding_rate, mark_price FROM funding") == [
        ("exsim", "BTCUSDT", utc(body["funding_time"]), body["funding_time"], D("-0.00012345"),
         D("94321.5"))]


async def test_mark_price_and_book_are_not_fetched(bus, nats_url, pg_dsn):
    mark = {"venue": "exsim", "symbol": "BTCUSDT", "mark_price": "94000", "event_time": T0}
    async with running(recorder_config(nats_url, pg_dsn)) as rec:
        await publish(bus, subjects.market("exsim", "BTCUSDT", "mark"), mark)
        await publish_klines(bus, [kline("BTCUSDT", 0)])
        await wait_rows(pg_dsn, "bars", 1)
        assert metric(rec, "recorder_messages_total", stream="MARKET") == 1
        assert metric(rec, "recorder_dead_letters_total", stream="MARKET", reason="decode") == 0


async def test_redelivered_kline_is_stored_once(bus, nats_url, pg_dsn):
    body = kline("BTCUSDT", 3)
    subject = subjects.kline("exsim", "BTCUSDT", "1m")
    async with running(recorder_config(nats_url, pg_dsn)) as rec:
        # Two different msg ids: JetStream keeps both, the table keeps one row.
        await publish(bus, subject, body, msg_id="first")
        await publish(bus, subject, body, msg_id="second")
        await wait_rows(pg_dsn, "bars", 1)
        for _ in range(100):
            if metric(rec, "recorder_rows_duplicate_total", table="bars") == 1:
                break
            await asyncio.sleep(0.05)
        assert metric(rec, "recorder_rows_written_total", table="bars") == 1
        assert metric(rec, "recorder_rows_duplicate_total", table="bars") == 1
    assert (await rows(pg_dsn, "SELECT count(*) FROM bars"))[0][0] == 1


NS, BOT = "paper", "btc-momentum"


def order(status: str, **kw) -> OrderMsg:
    values = dict(namespace=NS, bot=BOT, symbol="BTCUSDT", client_order_id="tf-abc-1",
                  exchange_order_id="991", purpose="entry", type="market", side="buy",
                  qty=D("0.010"), filled_qty=D("0.010"), price=D("94012.3"), status=status,
                  latency_ms=12.5, sent_ms=T0 + 100, acked_ms=T0 + 113, time_ms=T0 + 110,
                  signal_id="BTCUSDT-1-enter_long", trace_id="ab" * 16)
    values.update(kw)
    return OrderMsg(**values)


async def test_order_states_fill_and_position_land_in_their_tables(bus, nats_url, pg_dsn):
    new = order("new", filled_qty=D(0), price=None, time_ms=T0 + 105)
    filled = order("filled")
    fill = FillMsg(namespace=NS, bot=BOT, symbol="BTCUSDT", trade_id="5001",
                   exchange_order_id="991", client_order_id="tf-abc-1", purpose="entry",
                   side="buy", price=D("94012.3"), qty=D("0.010"), fee=D("0.37604920"),
                   realized_pnl=D(0), liquidity="taker", reference_price=D("94000.0"),
                   slippage_bps=D("1.3085"), time_ms=T0 + 110)
    position = PositionMsg(namespace=NS, bot=BOT, symbol="BTCUSDT", side="long", qty=D("0.010"),
                           entry_price=D("94012.3"), mark_price=D("94020"),
                           unrealized_pnl=D("0.077"), stop_price=D("93500"),
                           stop_order_id="tf-abc-stop", take_profit_prices=[D("95000"),
                                                                            D("96000.5")],
                           time_ms=T0 + 110, cause="fill")
    async with running(recorder_config(nats_url, pg_dsn)):
        for m, kind, mid in ((new, "order", order_msg_id(new)),
                             (filled, "order", order_msg_id(filled)),
                             (fill, "fill", fill_msg_id(fill)),
                             (position, "position", position_msg_id(position))):
            await publish(bus, subjects.fleet(NS, BOT, kind), m.to_wire(), msg_id=mid)
        await wait_rows(pg_dsn, "positions", 1)
        await wait_rows(pg_dsn, "orders", 2)
        await wait_rows(pg_dsn, "fills", 1)
    assert await rows(pg_dsn, "SELECT status, filled_qty, price, time, latency_ms, acked_at "
                      "FROM orders ORDER BY time") == [
        ("new", D("0"), None, utc(T0 + 105), 12.5, utc(T0 + 113)),
        ("filled", D("0.010"), D("94012.3"), utc(T0 + 110), 12.5, utc(T0 + 113))]
    assert await rows(pg_dsn, "SELECT namespace, bot, symbol, trade_id, side, price, qty, fee, "
                      "fee_asset, reference_price, slippage_bps, time FROM fills") == [
        (NS, BOT, "BTCUSDT", "5001", "buy", D("94012.3"), D("0.010"), D("0.37604920"), "USDT",
         D("94000.0"), D("1.3085"), utc(T0 + 110))]
    assert await rows(pg_dsn, "SELECT side, qty, entry_price, stop_price, take_profit_prices, "
                      "cause, stream_seq IS NOT NULL FROM positions") == [
        ("long", D("0.010"), D("94012.3"), D("93500"), [D("95000"), D("96000.5")], "fill", True)]


async def test_order_without_exchange_time_is_keyed_by_its_ack_time(bus, nats_url, pg_dsn):
    rejected = order("rejected", time_ms=None, filled_qty=D(0), reject_code=-2019,
                     reject_message="Margin is insufficient.")
    async with running(recorder_config(nats_url, pg_dsn)):
        await publish(bus, subjects.fleet(NS, BOT, "order"), rejected.to_wire(),
                      msg_id=order_msg_id(rejected))
        await wait_rows(pg_dsn, "orders", 1)
    assert await rows(pg_dsn, "SELECT status, time, time_ms, reject_code, reject_message "
                      "FROM orders") == [
        ("rejected", utc(T0 + 113), T0 + 113, -2019, "Margin is insufficient.")]


async def test_status_heartbeats_land_in_pnl_snapshots(bus, nats_url, pg_dsn):
    pos = PositionMsg(namespace=NS, bot=BOT, symbol="BTCUSDT", side="short", qty=D("0.5"),
                      entry_price=D("94000"), time_ms=T0)
    beats = [StatusMsg(namespace=NS, bot=BOT, kind="heartbeat", phase=Phase.RUNNING,
                       strategy="momentum", venue="exsim", mode="paper", symbols=["BTCUSDT"],
                       positions=[pos], realized_pnl=D("12.5") + i, unrealized_pnl=D("-3.25"),
                       pnl_day=D("7.75"), loss_streak=1, open_orders=2, config_hash="c0ffee",
                       started_ms=T0 - 1000, ts_ms=T0 + i * 15_000) for i in range(3)]
    async with running(recorder_config(nats_url, pg_dsn)):
        for b in beats:
            await publish(bus, subjects.fleet(NS, BOT, "heartbeat"), b.to_wire())
        await wait_rows(pg_dsn, "pnl_snapshots", 3)
    got = await rows(pg_dsn, "SELECT time, kind, phase, realized_pnl, unrealized_pnl, pnl_day, "
                     "venue, positions->0->>'side', counters->>'fills', started_at "
                     "FROM pnl_snapshots ORDER BY time")
    assert got[2] == (utc(T0 + 30_000), "heartbeat", "Running", D("14.5"), D("-3.25"),
                      D("7.75"), "exsim", "short", "0", utc(T0 - 1000))


async def test_signals_and_commands_are_recorded(bus, nats_url, pg_dsn):
    signal = SignalMsg(namespace=NS, bot=BOT, signal_id="BTCUSDT-1746403259999-enter_long",
                       symbol="BTCUSDT", action="enter_long", strategy="ema_cross",
                       close_time_ms=T0 + 59_999, price=D("94000.1"), stop_price=D("93000"),
                       reason={"rule": "ema_fast crossed above ema_slow", "ema_fast": 1.5},
                       disposition=SignalDisposition.RISK_BLOCKED,
                       disposition_reason="total cap", risk_outcome="block", ts_ms=T0 + 60_010)
    cmd = CommandMsg(command=Command.PAUSE, command_id="gen-7", reason="maintenance",
                     issued_by="operator", ts_ms=T0 + 5)
    async with running(recorder_config(nats_url, pg_dsn)):
        await publish(bus, subjects.fleet(NS, BOT, "signal"), signal.to_wire(),
                      msg_id=signal_msg_id(signal))
        await publish(bus, subjects.command(NS, BOT), cmd.to_wire(),
                      msg_id=command_msg_id(NS, BOT, cmd))
        await wait_rows(pg_dsn, "signals", 1)
        await wait_rows(pg_dsn, "commands", 1)
    assert await rows(pg_dsn, "SELECT time, action, price, disposition, risk_outcome, "
                      "reason->>'rule' FROM signals") == [
        (utc(T0 + 59_999), "enter_long", D("94000.1"), "risk_blocked", "block",
         "ema_fast crossed above ema_slow")]
    assert await rows(pg_dsn, "SELECT namespace, bot, command_id, command, issued_by, time "
                      "FROM commands") == [(NS, BOT, "gen-7", "pause", "operator", utc(T0 + 5))]


async def test_risk_decisions_and_halts_land_in_risk_events(bus, nats_url, pg_dsn):
    decision = {"type": "decision", "time_ms": T0, "request_id": "req-1", "bot": "paper/a",
                "symbol": "BTCUSDT", "side": "buy", "notional_usdt": "600", "outcome": "block",
                "reason": "total cap 1000 USDT", "reservation_id": None, "replica": "r1"}
    halt = {"type": "halt", "time_ms": T0 + 1, "bot": "paper/a", "reason": "daily loss",
            "action": "halt", "replica": "r1"}
    async with running(recorder_config(nats_url, pg_dsn)) as rec:
        # Decisions go out on core NATS (no msg id) and twice here: one row.
        await bus._nc.publish(subjects.RISK_EVENTS, codec.encode(decision))
        await bus._nc.publish(subjects.RISK_EVENTS, codec.encode(decision))
        await publish(bus, subjects.RISK_EVENTS, halt, msg_id="risk-halt-paper/a-20213")
        await wait_rows(pg_dsn, "risk_events", 2)
        while metric(rec, "recorder_messages_total", stream="RISK") < 3:
            await asyncio.sleep(0.05)
    assert await rows(pg_dsn, "SELECT event_id, time, type, bot, outcome, reason, "
                      "body->>'notional_usdt' FROM risk_events ORDER BY time") == [
        ("decision:req-1", utc(T0), "decision", "paper/a", "block", "total cap 1000 USDT",
         "600"),
        ("risk-halt-paper/a-20213", utc(T0 + 1), "halt", "paper/a", None, "daily loss", None)]


async def test_body_for_another_bot_than_its_subject_is_dead_lettered(bus, nats_url, pg_dsn):
    fill = FillMsg(namespace=NS, bot="other-bot", symbol="BTCUSDT", trade_id="1",
                   exchange_order_id="2", side="sell", price=D("1"), qty=D("1"), time_ms=T0)
    async with running(recorder_config(nats_url, pg_dsn)) as rec:
        await publish(bus, subjects.fleet(NS, BOT, "fill"), fill.to_wire())
        while metric(rec, "recorder_dead_letters_total", stream="FLEET", reason="decode") < 1:
            await asyncio.sleep(0.05)
    dead = await bus.get_last_msg("DLQ", subjects.dlq(subjects.fleet(NS, BOT, "fill")))
    assert "bot 'other-bot' != subject's 'btc-momentum'" in dead.headers[codec.DLQ_ERROR]
    assert (await rows(pg_dsn, "SELECT count(*) FROM fills"))[0][0] == 0


async def test_metrics_and_healthz_are_served(bus, nats_url, pg_dsn):
    async with running(recorder_config(nats_url, pg_dsn)) as rec:
        server = await serve_metrics(rec.registry, rec.health, port=0, host="127.0.0.1")
        try:
            await publish_klines(bus, [kline("BTCUSDT", i) for i in range(20)])
            await wait_rows(pg_dsn, "bars", 20)
            async with httpx.AsyncClient(base_url=server.url) as http:
                for _ in range(100):
                    text = (await http.get("/metrics")).text
                    if 'recorder_rows_written_total{table="bars"} 20.0' in text:
                        break
                    await asyncio.sleep(0.05)
                health = await http.get("/healthz")
                ready = await http.get("/readyz")
        finally:
            await server.stop()
    assert 'recorder_rows_written_total{table="bars"} 20.0' in text
    for name in ("recorder_batches_total", "recorder_batch_seconds_bucket",
                 "recorder_queue_depth", "recorder_dead_letters_total",
                 "recorder_consumer_pending", "recorder_lag_seconds", "recorder_db_up 1.0"):
        assert name in text, name
    assert health.status_code == 200 and ready.json()["status"] == "ok"


def test_cli_config_refuses_a_bad_batch_size_naming_it(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    with pytest.raises(ValueError, match="batch_size"):
        build_config(batch_size=0)


def test_cli_config_needs_a_database_url(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(ValueError, match="DATABASE_URL"):
        build_config(nats_url="nats://127.0.0.1:4222")


def test_cli_config_takes_database_url_from_env(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:secret@h:5433/db")
    config = build_config(batch_size=100, flush_ms=5)
    assert config.resolved_database_url() == "postgresql://u:secret@h:5433/db"
    assert (config.batch_size, config.flush_ms, config.capacity) == (100, 5, 400)


def test_json_bodies_round_trip(tmp_path):
    # guard: the helper bodies are valid KlineMsg bodies (else every test above dead-letters)
    from tradefleet.bus.market_messages import KlineMsg

    assert KlineMsg.model_validate(orjson.loads(codec.encode(kline("BTCUSDT", 1)))).trades == 11


async def test_waiting_for_postgres_is_logged_without_the_password(bus, nats_url, caplog):
    from tradefleet.embedded._process import free_port
    from tradefleet.workers.recorder import Recorder

    port = free_port("127.0.0.1")  # nothing listens there
    config = recorder_config(nats_url, f"postgresql://tf:s3cr3t-pw@127.0.0.1:{port}/tradefleet")
    recorder = Recorder(config)
    task = asyncio.create_task(recorder.run())
    try:
        for _ in range(200):
            if "waiting for PostgreSQL" in caplog.text:
                break
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert f"tf@127.0.0.1:{port}/tradefleet" in caplog.text
    assert "s3cr3t-pw" not in caplog.text
    assert recorder.health.ready.evaluate()[1]["status"] == "fail"
