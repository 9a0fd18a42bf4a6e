"""The recorder's schema on real PostgreSQL: migrations, keys, views, and the runs table."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal as D

import psycopg
import pytest

from tradefleet.bus import subjects
from tradefleet.bus.fleet_messages import (
    FillMsg,
    Phase,
    PositionMsg,
    StatusMsg,
    fill_msg_id,
    position_msg_id,
)
from tradefleet.bus.publish import publish
from tradefleet.workers.recorder import (
    MIGRATIONS,
    apply_migrations,
    record_run_end,
    record_run_start,
)
from tradefleet.workers.recorder.schema import HYPERTABLES
from tests.workers._recorder import T0, recorder_config, rows, running, wait_rows

HOUR = 3_600_000


async def _tables(conn) -> list[tuple]:
    cur = await conn.execute(
        "SELECT table_name, table_type FROM information_schema.tables "
        "WHERE table_schema = 'public' ORDER BY 1")
    return await cur.fetchall()


async def test_migrations_applied_twice_are_a_no_op(pg_dsn):
    async with await psycopg.AsyncConnection.connect(pg_dsn) as conn:
        assert await apply_migrations(conn) == [m.version for m in MIGRATIONS]
        schema = await _tables(conn)
        await conn.commit()
        assert await apply_migrations(conn) == []
        assert await _tables(conn) == schema
        cur = await conn.execute("SELECT version, name FROM schema_migrations ORDER BY 1")
        assert await cur.fetchall() == [(m.version, m.name) for m in MIGRATIONS]


async def test_two_recorders_migrating_at_once_apply_each_version_once(pg_dsn):
    conns = [await psycopg.AsyncConnection.connect(pg_dsn) for _ in range(3)]
    try:
        applied = await asyncio.gather(*(apply_migrations(c) for c in conns))
    finally:
        for c in conns:
            await c.close()
    assert sorted(applied, key=len) == [[], [], [m.version for m in MIGRATIONS]]


async def test_every_time_partitioned_primary_key_contains_its_time_column(pg_dsn):
    async with await psycopg.AsyncConnection.connect(pg_dsn) as conn:
        await apply_migrations(conn)
        for h in HYPERTABLES:
            cur = await conn.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = "
                "i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass "
                "AND i.indisprimary", (h.table,))
            key = {r[0] for r in await cur.fetchall()}
            assert h.time_column in key, f"{h.table} primary key {key} lacks {h.time_column}"


async def test_migration_error_rolls_back_the_whole_step(pg_dsn):
    async with await psycopg.AsyncConnection.connect(pg_dsn) as conn:
        await conn.execute("CREATE TABLE bars (x int)")  # squatter: migration 1 must fail
        await conn.commit()
        with pytest.raises(psycopg.errors.DuplicateTable):
            await apply_migrations(conn)
        await conn.rollback()
        names = [t for t, _ in await _tables(conn)]
        assert names == ["bars"]  # no half-applied schema, no schema_migrations row


# -- views over a hand-computed set of fills ---------------------------------------------------

A, B = "alpha", "beta"


def fill(bot, trade_id, symbol, side, price, qty, ref, fee, realized, at, fee_asset="USDT"):
    return FillMsg(namespace="paper", bot=bot, symbol=symbol, trade_id=trade_id,
                   exchange_order_id=f"o{trade_id}", side=side, price=D(price), qty=D(qty),
                   reference_price=D(ref), fee=D(fee), fee_asset=fee_asset,
                   realized_pnl=D(realized), time_ms=at)


def position(bot, symbol, side, qty, at, entry=None, mark=None):
    return PositionMsg(namespace="paper", bot=bot, symbol=symbol, side=side, qty=D(qty),
                       entry_price=D(entry) if entry else None,
                       mark_price=D(mark) if mark else None, time_ms=at, cause="fill")


FILLS = [
    # alpha, day 1: long 0.1 BTC 94000 -> 95000 (+100 realized)
    fill(A, "1", "BTCUSDT", "buy", "94000", "0.1", "93990", "3.76", "0", T0 + 1 * HOUR),
    fill(A, "2", "BTCUSDT", "sell", "95000", "0.1", "95010", "3.80", "100", T0 + 10 * HOUR),
    # alpha, day 2: short 1 ETH 1800 -> 1750 (+50 realized), exit fee paid in BNB
    fill(A, "3", "ETHUSDT", "sell", "1800", "1", "1801", "0.72", "0", T0 + 25 * HOUR),
    fill(A, "4", "ETHUSDT", "buy", "1750", "1", "1748", "0.001", "50", T0 + 40 * HOUR,
         fee_asset="BNB"),
    # beta, day 1: long 0.5 SOL, still open
    fill(B, "1", "SOLUSDT", "buy", "150", "0.5", "150", "0.03", "0", T0 + 2 * HOUR),
]
POSITIONS = [
    position(A, "BTCUSDT", "long", "0.1", T0 + 1 * HOUR, entry="94000"),
    position(A, "BTCUSDT", "flat", "0", T0 + 10 * HOUR),
    position(A, "ETHUSDT", "short", "1", T0 + 25 * HOUR, entry="1800", mark="1790"),
    position(A, "ETHUSDT", "flat", "0", T0 + 40 * HOUR),
    position(B, "SOLUSDT", "long", "0.5", T0 + 2 * HOUR, entry="150", mark="151"),
]
FUNDING = [  # (symbol, time, rate, mark price)
    ("BTCUSDT", T0 + 8 * HOUR, "0.0001", "94500"),   # alpha long 0.1: pays 0.945
    ("BTCUSDT", T0 + 16 * HOUR, "0.0001", "95100"),  # alpha flat: nothing
    ("ETHUSDT", T0 + 32 * HOUR, "0.0002", None),     # alpha short 1 at mark 1790: gets 0.358
]


@pytest.fixture
async def recorded(bus, nats_url, pg_dsn):
    """The fills, positions, funding and two heartbeats above, recorded by a Recorder."""
    async with running(recorder_config(nats_url, pg_dsn)):
        for bot in (A, B):
            status = StatusMsg(namespace="paper", bot=bot, kind="heartbeat", phase=Phase.RUNNING,
                               venue="exsim", ts_ms=T0)
            await publish(bus, subjects.fleet("paper", bot, "heartbeat"), status.to_wire())
        for f in FILLS:
            await publish(bus, subjects.fleet("paper", f.bot, "fill"), f.to_wire(),
                          msg_id=fill_msg_id(f))
        for p in POSITIONS:
            await publish(bus, subjects.fleet("paper", p.bot, "position"), p.to_wire(),
                          msg_id=position_msg_id(p))
        for symbol, at, rate, mark in FUNDING:
            body = {"venue": "exsim", "symbol": symbol, "funding_time": at, "funding_rate": rate,
                    **({"mark_price": mark} if mark else {})}
            await publish(bus, subjects.market("exsim", symbol, "funding"), body)
        await wait_rows(pg_dsn, "fills", len(FILLS))
        await wait_rows(pg_dsn, "positions", len(POSITIONS))
        await wait_rows(pg_dsn, "funding", len(FUNDING))
        await wait_rows(pg_dsn, "pnl_snapshots", 2)
    return pg_dsn


async def test_pnl_per_bot_per_day_is_realized_minus_fees_plus_funding(recorded):
    got = await rows(recorded, "SELECT bot, day, realized_pnl_usdt, fees_usdt, funding_usdt, "
                     "net_pnl_usdt, fills FROM pnl_daily ORDER BY bot, day")
    assert got == [
        (A, date(2025, 5, 5), D("100"), D("7.56"), D("-0.945"), D("91.495"), 2),
        (A, date(2025, 5, 6), D("50"), D("0.72"), D("0.358"), D("49.638"), 2),
        (B, date(2025, 5, 5), D("0"), D("0.03"), D("0"), D("-0.03"), 1),
    ]


async def test_fees_and_funding_paid_per_bot(recorded):
    assert await rows(recorded, "SELECT bot, fees_usdt, funding_usdt, funding_paid_usdt, "
                      "total_cost_usdt, funding_events FROM costs_by_bot ORDER BY bot") == [
        (A, D("8.28"), D("-0.587"), D("0.587"), D("8.867"), 2),
        (B, D("0.03"), D("0"), D("0"), D("0.03"), 0),
    ]
    assert await rows(recorded, "SELECT bot, fee_asset, fees, fills FROM fees_by_asset "
                      "ORDER BY bot, fee_asset") == [
        (A, "BNB", D("0.001"), 1), (A, "USDT", D("8.28"), 3), (B, "USDT", D("0.03"), 1)]


async def test_funding_payments_use_the_position_held_at_funding_time(recorded):
    assert await rows(recorded, "SELECT bot, symbol, funding_time, side, qty, mark_price, "
                      "funding_usdt FROM funding_payments ORDER BY funding_time") == [
        (A, "BTCUSDT", datetime(2025, 5, 5, 8, tzinfo=UTC), "long", D("0.1"), D("94500"),
         D("-0.945")),
        (A, "ETHUSDT", datetime(2025, 5, 6, 8, tzinfo=UTC), "short", D("1"), D("1790"),
         D("0.358")),
    ]


async def test_fills_slippage_in_bps_is_positive_when_worse_for_the_bot(recorded):
    got = await rows(recorded, "SELECT bot, trade_id, round(slippage_bps, 6), "
                     "round(slippage_usdt, 6) FROM fills_slippage ORDER BY bot, trade_id")
    bps = lambda worse, ref: (D(worse) / D(ref) * 10000).quantize(D("0.000001"))  # noqa: E731
    assert got == [
        (A, "1", bps(10, 93990), D("1.000000")),     # bought 10 above the reference
        (A, "2", bps(10, 95010), D("1.000000")),     # sold 10 below
        (A, "3", bps(1, 1801), D("1.000000")),       # sold 1 below
        (A, "4", bps(2, 1748), D("2.000000")),       # bought 2 above
        (B, "1", D("0.000000"), D("0.000000")),
    ]


async def test_positions_now_lists_only_open_latest_positions(recorded):
    assert await rows(recorded, "SELECT bot, symbol, side, qty, signed_qty, entry_price "
                      "FROM positions_now ORDER BY bot, symbol") == [
        (B, "SOLUSDT", "long", D("0.5"), D("0.5"), D("150"))]


# -- runs ------------------------------------------------------------------------------------


async def test_run_start_and_end_are_recorded_with_config_and_report(pg_dsn):
    async with await psycopg.AsyncConnection.connect(pg_dsn) as conn:
        await record_run_start(conn, "run-1", {"bots": ["a", "b"], "capital": D("10000.5")},
                               started_ms=T0)
        await record_run_end(conn, "run-1", {"pnl_usdt": D("12.25"), "trades": 3},
                             ended_ms=T0 + HOUR)
    assert await rows(pg_dsn, "SELECT run_id, started_at, ended_at, config, report FROM runs") == [
        ("run-1", datetime(2025, 5, 5, tzinfo=UTC), datetime(2025, 5, 5, 1, tzinfo=UTC),
         {"bots": ["a", "b"], "capital": "10000.5"}, {"pnl_usdt": "12.25", "trades": 3})]


async def test_runs_accept_an_autocommit_connection_and_numpy_figures(pg_dsn):
    import numpy as np

    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
        await record_run_start(conn, "run-np", {"speed": None}, started_ms=T0)
        await record_run_end(conn, "run-np", {"sharpe": np.float64(1.25), "trades": np.int64(4),
                                              "curve": np.array([1.0, 2.5])}, ended_ms=T0 + 1)
    assert await rows(pg_dsn, "SELECT report FROM runs") == [
        ({"sharpe": 1.25, "trades": 4, "curve": [1.0, 2.5]},)]


async def test_starting_a_run_twice_is_refused_and_keeps_the_first(pg_dsn):
    async with await psycopg.AsyncConnection.connect(pg_dsn) as conn:
        await record_run_start(conn, "run-1", {"n": 1}, started_ms=T0)
        with pytest.raises(ValueError, match="run_id 'run-1' already exists"):
            await record_run_start(conn, "run-1", {"n": 2})
    assert await rows(pg_dsn, "SELECT config FROM runs") == [({"n": 1},)]


async def test_ending_an_unknown_run_is_refused(pg_dsn):
    async with await psycopg.AsyncConnection.connect(pg_dsn) as conn:
        with pytest.raises(ValueError, match="call record_run_start first"):
            await record_run_end(conn, "never-started", {})


@pytest.mark.parametrize("run_id, config, field", [
    ("", {}, "run_id"), ("has space", {}, "run_id"), ("ok", ["not", "a", "mapping"], "config"),
    ("ok", {"handle": object()}, "config")])
async def test_bad_run_input_names_the_field_and_writes_nothing(pg_dsn, run_id, config, field):
    async with await psycopg.AsyncConnection.connect(pg_dsn) as conn:
        with pytest.raises(ValueError, match=field):
            await record_run_start(conn, run_id, config)
        cur = await conn.execute("SELECT to_regclass('runs') IS NULL")
        assert (await cur.fetchone())[0]  # refused before touching the database
