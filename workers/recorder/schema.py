"""The recorder's database schema: versioned migrations in code, applied at start.

Scheme
------
``schema_migrations(version, name, applied_at)`` lists the applied versions. Every start
runs :func:`apply_migrations`: in one transaction it takes a transaction-level advisory
lock (``pg_advisory_xact_lock``), reads the applied versions and runs only the missing
migrations in order, each followed by its ``schema_migrations`` row. PostgreSQL DDL is
transactional, so a migration is either wholly applied and recorded or not at all; two
recorders starting at once serialize on the lock and the second finds nothing to do.

TimescaleDB
-----------
The same tables work on plain PostgreSQL (what the tests use). When the ``timescaledb``
extension is available, :func:`ensure_timescale` (run on every start, after the
migrations, under the same lock) creates the extension, turns the time-partitioned
tables into hypertables (``migrate_data`` so a database that started on plain PostgreSQL
is converted later) and adds compression and retention policies. It is idempotent
(``if_not_exists``) rather than a numbered migration so that installing the extension
later still converts the tables. Every primary key of a time-partitioned table contains
its time column, as hypertables require (TimescaleDB docs, "Create hypertables":
unique indexes must include the partitioning column).

Conventions: prices, quantities and USDT amounts are ``numeric`` (never float); times are
``timestamptz`` converted exactly from the messages' integer UTC milliseconds by
:sql:`ms_to_timestamptz(ms)`, with the raw ms kept where a row is looked up by it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

ADVISORY_LOCK_KEY = 7_391_224_501_377_001
"""``pg_advisory_xact_lock`` key held while migrating (any bigint unique to the recorder)."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema version: ``version`` (1, 2, ...), a short ``name`` and its SQL."""

    version: int
    name: str
    sql: str


_BASE_TABLES = """
-- ms since the Unix epoch (UTC) -> timestamptz, exact (integer ms x 1000 us interval, exact
-- in a double below 2^53 us, i.e. until year 2255). STABLE, as timestamptz + interval is:
-- a function declared IMMUTABLE over it would not be inlined (2-3 us per call instead of ~0.1).
CREATE FUNCTION ms_to_timestamptz(ms bigint) RETURNS timestamptz
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    AS $$ SELECT timestamptz 'epoch' + ms * interval '1 millisecond' $$;

-- Closed klines (md.{venue}.{symbol}.kline.{interval}, KlineMsg).
CREATE TABLE bars (
    venue            text        NOT NULL,
    symbol           text        NOT NULL,
    interval         text        NOT NULL,
    open_time        timestamptz NOT NULL,
    close_time       timestamptz NOT NULL,
    open_time_ms     bigint      NOT NULL,
    open             numeric     NOT NULL,
    high             numeric     NOT NULL,
    low              numeric     NOT NULL,
    close            numeric     NOT NULL,
    volume           numeric     NOT NULL,   -- base units
    quote_volume     numeric,                -- USDT
    trades           integer,
    taker_buy_volume numeric,
    taker_buy_quote_volume numeric,
    event_time       timestamptz NOT NULL,
    source           text        NOT NULL,   -- ws | rest
    PRIMARY KEY (venue, symbol, interval, open_time)
);

-- Settled funding (md.{venue}.{symbol}.funding, FundingMsg).
CREATE TABLE funding (
    venue           text        NOT NULL,
    symbol          text        NOT NULL,
    funding_time    timestamptz NOT NULL,
    funding_time_ms bigint      NOT NULL,
    funding_rate    numeric     NOT NULL,   -- fraction per funding interval, + longs pay
    mark_price      numeric,                -- USDT
    PRIMARY KEY (venue, symbol, funding_time)
);

-- Market trades (md.{venue}.{symbol}.trade). No message model exists for them yet
-- (tradefleet.bus.market_messages has none), so nothing writes here until one does.
CREATE TABLE trades (
    venue    text        NOT NULL,
    symbol   text        NOT NULL,
    trade_id text        NOT NULL,
    time     timestamptz NOT NULL,
    time_ms  bigint      NOT NULL,
    price    numeric     NOT NULL,
    qty      numeric     NOT NULL,
    side     text,                          -- taker side: buy | sell
    PRIMARY KEY (venue, symbol, trade_id, time)
);

-- Order events: one row per observed state (fleet.{ns}.{bot}.order, OrderMsg).
CREATE TABLE orders (
    namespace         text        NOT NULL,
    bot               text        NOT NULL,
    symbol            text        NOT NULL,
    client_order_id   text        NOT NULL,
    exchange_order_id text,
    purpose           text        NOT NULL,
    type              text        NOT NULL,
    side              text        NOT NULL,
    reduce_only       boolean     NOT NULL,
    qty               numeric     NOT NULL,
    filled_qty        numeric     NOT NULL,
    price             numeric,
    stop_price        numeric,
    status            text        NOT NULL,
    reject_code       integer,
    reject_message    text,
    latency_ms        double precision,
    sent_at           timestamptz,
    acked_at          timestamptz,
    time              timestamptz NOT NULL,  -- exchange time, else ack/send time
    time_ms           bigint      NOT NULL,
    signal_id         text,
    trace_id          text,
    PRIMARY KEY (namespace, bot, client_order_id, status, time)
);

-- Executions (fleet.{ns}.{bot}.fill, FillMsg).
CREATE TABLE fills (
    namespace         text        NOT NULL,
    bot               text        NOT NULL,
    symbol            text        NOT NULL,
    trade_id          text        NOT NULL,
    exchange_order_id text        NOT NULL,
    client_order_id   text,
    purpose           text,
    side              text        NOT NULL,
    price             numeric     NOT NULL,
    qty               numeric     NOT NULL,
    fee               numeric     NOT NULL,
    fee_asset         text        NOT NULL,
    realized_pnl      numeric     NOT NULL,  -- gross of fees, USDT
    liquidity         text,
    reference_price   numeric,
    slippage_bps      numeric,               -- as the bot reported it
    time              timestamptz NOT NULL,
    time_ms           bigint      NOT NULL,
    signal_id         text,
    trace_id          text,
    PRIMARY KEY (namespace, bot, symbol, trade_id, time)
);

-- Position snapshots after each change (fleet.{ns}.{bot}.position, PositionMsg).
-- side and qty are in the key like in the message id: a close and a reversal on the same
-- bar are two snapshots with one time. stream_seq orders snapshots of equal time.
CREATE TABLE positions (
    namespace          text        NOT NULL,
    bot                text        NOT NULL,
    symbol             text        NOT NULL,
    side               text        NOT NULL,  -- long | short | flat
    qty                numeric     NOT NULL,  -- unsigned base units
    entry_price        numeric,
    mark_price         numeric,
    unrealized_pnl     numeric     NOT NULL,
    stop_price         numeric,
    stop_order_id      text,
    take_profit_prices numeric[]   NOT NULL,
    cause              text        NOT NULL,
    time               timestamptz NOT NULL,
    time_ms            bigint      NOT NULL,
    stream_seq         bigint,
    PRIMARY KEY (namespace, bot, symbol, time, side, qty)
);

-- Bot status and heartbeats (fleet.{ns}.{bot}.status|heartbeat, StatusMsg).
CREATE TABLE pnl_snapshots (
    namespace      text        NOT NULL,
    bot            text        NOT NULL,
    time           timestamptz NOT NULL,      -- the bot's wall clock when published
    kind           text        NOT NULL,      -- status | heartbeat
    phase          text        NOT NULL,
    reason         text        NOT NULL,
    paused         boolean     NOT NULL,
    strategy       text        NOT NULL,
    venue          text        NOT NULL,
    mode           text        NOT NULL,
    realized_pnl   numeric     NOT NULL,      -- since process start, net of fees, USDT
    unrealized_pnl numeric     NOT NULL,      -- at mark, USDT
    pnl_day        numeric     NOT NULL,      -- seed pnl_day_usdt
    loss_streak    integer     NOT NULL,
    open_orders    integer     NOT NULL,
    positions      jsonb       NOT NULL,
    counters       jsonb       NOT NULL,
    config_hash    text        NOT NULL,
    started_at     timestamptz,
    PRIMARY KEY (namespace, bot, time)
);

-- Strategy signals and what the bot did with them (fleet.{ns}.{bot}.signal, SignalMsg).
CREATE TABLE signals (
    namespace          text        NOT NULL,
    bot                text        NOT NULL,
    signal_id          text        NOT NULL,
    symbol             text        NOT NULL,
    action             text        NOT NULL,
    strategy           text        NOT NULL,
    time               timestamptz NOT NULL,  -- close time of the bar that fired it
    price              numeric     NOT NULL,
    stop_price         numeric,
    quantity           numeric,
    disposition        text        NOT NULL,
    disposition_reason text        NOT NULL,
    risk_outcome       text,
    reason             jsonb       NOT NULL,
    trace_id           text,
    published_at       timestamptz NOT NULL,
    PRIMARY KEY (namespace, bot, signal_id, time)
);

-- Commands to bots (fleet.cmd.{ns}.{bot}): the audit trail of pause/resume/drain/kill.
CREATE TABLE commands (
    namespace  text        NOT NULL,
    bot        text        NOT NULL,
    command_id text        NOT NULL,
    command    text        NOT NULL,
    reason     text        NOT NULL,
    issued_by  text        NOT NULL,
    time       timestamptz NOT NULL,
    body       jsonb       NOT NULL,
    PRIMARY KEY (namespace, bot, command_id, time)
);

-- Risk service events (risk.events): decisions, halts, kill switch, policy, auto-close.
-- event_id: "decision:{request_id}" for decisions, else the Nats-Msg-Id, else
-- "RISK:{stream sequence}".
CREATE TABLE risk_events (
    event_id   text        NOT NULL,
    time       timestamptz NOT NULL,          -- the risk service's clock
    type       text        NOT NULL,
    bot        text,
    symbol     text,
    request_id text,
    outcome    text,
    reason     text,
    body       jsonb       NOT NULL,
    PRIMARY KEY (event_id, time)
);

-- Local runs (`tradefleet run`): written by record_run_start / record_run_end.
CREATE TABLE runs (
    run_id     text        PRIMARY KEY,
    started_at timestamptz NOT NULL,
    ended_at   timestamptz,
    config     jsonb       NOT NULL,
    report     jsonb
);

-- bars has only its primary key (venue, symbol, interval, open_time): a second index
-- halves the write rate, and bar queries name the symbol.
CREATE INDEX fills_bot_time_idx ON fills (namespace, bot, time DESC);
CREATE INDEX orders_bot_time_idx ON orders (namespace, bot, time DESC);
CREATE INDEX positions_latest_idx ON positions (namespace, bot, symbol, time DESC);
CREATE INDEX pnl_snapshots_time_idx ON pnl_snapshots (time DESC);
CREATE INDEX risk_events_type_time_idx ON risk_events (type, time DESC);
"""

_VIEWS = """
-- Latest snapshot per bot and symbol, open positions only.
CREATE VIEW positions_now AS
SELECT namespace, bot, symbol, side, qty,
       CASE side WHEN 'short' THEN -qty ELSE qty END AS signed_qty,
       entry_price, mark_price, unrealized_pnl, stop_price, stop_order_id,
       take_profit_prices, cause, time
FROM (
    SELECT DISTINCT ON (namespace, bot, symbol) *
    FROM positions
    ORDER BY namespace, bot, symbol, time DESC, stream_seq DESC NULLS LAST
) latest
WHERE side <> 'flat' AND qty <> 0;

-- The venue each bot trades on, from its latest status that names one.
CREATE VIEW bot_venues AS
SELECT DISTINCT ON (namespace, bot) namespace, bot, venue
FROM pnl_snapshots
WHERE venue <> ''
ORDER BY namespace, bot, time DESC;

-- Funding cash flow of each bot, derived: for every settled funding event on the bot's
-- venue, the bot's last position snapshot at or before the funding time pays or receives
--     funding_usdt = -(signed qty x mark price x funding rate)
-- (Binance USDⓈ-M "Funding Rate" rules; FundingMsg). Positive: received; negative: paid.
-- Mark price: the funding event's, else the snapshot's mark, else its entry price.
CREATE VIEW funding_payments AS
SELECT v.namespace, v.bot, f.venue, f.symbol, f.funding_time, f.funding_rate,
       p.side, p.qty,
       coalesce(f.mark_price, p.mark_price, p.entry_price) AS mark_price,
       -(CASE p.side WHEN 'short' THEN -p.qty ELSE p.qty END)
         * coalesce(f.mark_price, p.mark_price, p.entry_price) * f.funding_rate AS funding_usdt
FROM bot_venues v
JOIN funding f ON f.venue = v.venue
JOIN LATERAL (
    SELECT side, qty, mark_price, entry_price
    FROM positions s
    WHERE s.namespace = v.namespace AND s.bot = v.bot AND s.symbol = f.symbol
      AND s.time <= f.funding_time
    ORDER BY s.time DESC, s.stream_seq DESC NULLS LAST
    LIMIT 1
) p ON true
WHERE p.side <> 'flat' AND p.qty <> 0;

-- Fills with slippage against the reference price (the signal's bar close, or the stop's
-- trigger): positive bps are worse for the bot. slippage_usdt is the cost in USDT.
CREATE VIEW fills_slippage AS
SELECT namespace, bot, symbol, trade_id, client_order_id, purpose, side, price, qty,
       reference_price, time,
       CASE side WHEN 'buy' THEN (price - reference_price) / reference_price * 10000
                 ELSE (reference_price - price) / reference_price * 10000 END AS slippage_bps,
       CASE side WHEN 'buy' THEN (price - reference_price) * qty
                 ELSE (reference_price - price) * qty END AS slippage_usdt,
       slippage_bps AS reported_slippage_bps
FROM fills
WHERE reference_price IS NOT NULL AND reference_price > 0;

-- Fees per bot and fee asset (fees in another asset than USDT, e.g. BNB, are not netted
-- into the USDT figures below).
CREATE VIEW fees_by_asset AS
SELECT namespace, bot, fee_asset, sum(fee) AS fees, count(*) AS fills
FROM fills
GROUP BY namespace, bot, fee_asset;

-- PnL per bot per UTC day: realized (fills, gross) - USDT fees + funding cash flow.
CREATE VIEW pnl_daily AS
WITH f AS (
    SELECT namespace, bot, (time AT TIME ZONE 'UTC')::date AS day,
           sum(realized_pnl) AS realized_pnl_usdt,
           coalesce(sum(fee) FILTER (WHERE fee_asset = 'USDT'), 0) AS fees_usdt,
           count(*) AS fills,
           sum(price * qty) AS traded_notional_usdt
    FROM fills
    GROUP BY 1, 2, 3
), fu AS (
    SELECT namespace, bot, (funding_time AT TIME ZONE 'UTC')::date AS day,
           sum(funding_usdt) AS funding_usdt
    FROM funding_payments
    GROUP BY 1, 2, 3
)
SELECT namespace, bot, day,
       coalesce(f.realized_pnl_usdt, 0) AS realized_pnl_usdt,
       coalesce(f.fees_usdt, 0) AS fees_usdt,
       coalesce(fu.funding_usdt, 0) AS funding_usdt,
       coalesce(f.realized_pnl_usdt, 0) - coalesce(f.fees_usdt, 0)
         + coalesce(fu.funding_usdt, 0) AS net_pnl_usdt,
       coalesce(f.fills, 0) AS fills,
       coalesce(f.traded_notional_usdt, 0) AS traded_notional_usdt
FROM f FULL JOIN fu USING (namespace, bot, day);

-- Fees and funding per bot over all time. funding_paid_usdt = -funding_usdt.
CREATE VIEW costs_by_bot AS
WITH fe AS (
    SELECT namespace, bot,
           coalesce(sum(fee) FILTER (WHERE fee_asset = 'USDT'), 0) AS fees_usdt,
           count(*) AS fills
    FROM fills GROUP BY 1, 2
), fu AS (
    SELECT namespace, bot, sum(funding_usdt) AS funding_usdt, count(*) AS funding_events
    FROM funding_payments GROUP BY 1, 2
)
SELECT namespace, bot,
       coalesce(fe.fees_usdt, 0) AS fees_usdt,
       coalesce(fu.funding_usdt, 0) AS funding_usdt,
       -coalesce(fu.funding_usdt, 0) AS funding_paid_usdt,
       coalesce(fe.fees_usdt, 0) - coalesce(fu.funding_usdt, 0) AS total_cost_usdt,
       coalesce(fe.fills, 0) AS fills,
       coalesce(fu.funding_events, 0) AS funding_events
FROM fe FULL JOIN fu USING (namespace, bot);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "tables", _BASE_TABLES),
    Migration(2, "views", _VIEWS),
)
"""Every schema version in order. Append new versions; never edit an applied one."""


@dataclass(frozen=True, slots=True)
class Hypertable:
    """TimescaleDB settings of one time-partitioned table."""

    table: str
    time_column: str
    chunk: str
    segment_by: str
    compress_after: str | None
    retain: str | None = None
    time_index: bool = True


HYPERTABLES: tuple[Hypertable, ...] = (
    Hypertable("bars", "open_time", "7 days", "venue, symbol", "7 days", time_index=False),
    Hypertable("funding", "funding_time", "90 days", "venue, symbol", "90 days"),
    Hypertable("trades", "time", "1 day", "venue, symbol", "2 days", retain="90 days",
               time_index=False),
    Hypertable("orders", "time", "30 days", "namespace, bot", "30 days"),
    Hypertable("fills", "time", "30 days", "namespace, bot", "30 days"),
    Hypertable("positions", "time", "30 days", "namespace, bot, symbol", "30 days"),
    Hypertable("pnl_snapshots", "time", "7 days", "namespace, bot", "7 days", retain="365 days"),
    Hypertable("signals", "time", "30 days", "namespace, bot", "30 days"),
    Hypertable("commands", "time", "90 days", "namespace, bot", None),
    Hypertable("risk_events", "time", "7 days", "type", "7 days", retain="365 days"),
)
"""Hypertables with chunk interval, compression segment-by columns, compression age and
retention. Orders, fills and positions are never dropped (trading records); raw trades
and heartbeats are. ``time_index=False`` skips TimescaleDB's default time index on the
high-volume market tables (their primary key serves their queries; a second index halves
the write rate). ``runs`` stays a plain table (one row per run, updated by id)."""


async def applied_versions(conn: psycopg.AsyncConnection[Any]) -> list[int]:
    """Versions recorded in ``schema_migrations`` (empty when the table does not exist)."""
    cur = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    row = await cur.fetchone()
    if not row or not row[0]:
        return []
    cur = await conn.execute("SELECT version FROM schema_migrations ORDER BY version")
    return [r[0] for r in await cur.fetchall()]


async def apply_migrations(
    conn: psycopg.AsyncConnection[Any], *, timescale: bool = True
) -> list[int]:
    """Bring the schema up to date; return the versions applied now (``[]``: no-op).

    ``conn`` is an async psycopg connection not inside a transaction. Runs in one
    transaction under ``pg_advisory_xact_lock``, so concurrent callers (two recorders, a
    recorder and ``tradefleet run``) apply each version once. With ``timescale`` it then
    runs :func:`ensure_timescale`. Raises ``psycopg.Error`` when the database refuses
    (nothing is half-applied: the transaction rolls back).
    """
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise ValueError("apply_migrations needs a connection outside a transaction "
                         "(commit or roll back first)")
    applied_now: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = set(await applied_versions(conn))
        for m in MIGRATIONS:
            if m.version in done:
                continue
            await conn.execute(m.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                (m.version, m.name),
            )
            applied_now.append(m.version)
            log.info("schema migration applied", extra={"version": m.version, "migration": m.name})
        if timescale:
            await ensure_timescale(conn)
    return applied_now


async def timescale_available(conn: psycopg.AsyncConnection[Any]) -> bool:
    """True when the server has the ``timescaledb`` extension files installed."""
    cur = await conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    )
    return await cur.fetchone() is not None


async def ensure_timescale(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Make the time-partitioned tables hypertables with compression and retention.

    Returns False (plain PostgreSQL, nothing done) when the extension is not installed or
    cannot be created (it must be in ``shared_preload_libraries``); the tables work the
    same either way. Must run inside a transaction (a savepoint guards the extension
    step). Idempotent. Syntax: TimescaleDB 2.x ``create_hypertable(..., if_not_exists,
    migrate_data)``, ``add_compression_policy``, ``add_retention_policy``.
    """
    if not await timescale_available(conn):
        return False
    try:
        async with conn.transaction():  # savepoint: a failed CREATE EXTENSION is contained
            await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as exc:
        log.warning(
            "timescaledb is installed but cannot be created; keeping plain PostgreSQL tables "
            "(add timescaledb to shared_preload_libraries and restart to get hypertables)",
            extra={"error": str(exc)},
        )
        return False
    for h in HYPERTABLES:
        await conn.execute(
            "SELECT create_hypertable(%s::regclass, %s::name, chunk_time_interval => %s::interval,"
            " create_default_indexes => %s, if_not_exists => true, migrate_data => true)",
            (h.table, h.time_column, h.chunk, h.time_index),
        )
        if h.compress_after is not None:
            cur = await conn.execute(
                "SELECT compression_enabled FROM timescaledb_information.hypertables"
                " WHERE hypertable_name = %s",
                (h.table,),
            )
            row = await cur.fetchone()
            if row is not None and not row[0]:
                await conn.execute(
                    sql.SQL(
                        "ALTER TABLE {} SET (timescaledb.compress,"
                        " timescaledb.compress_segmentby = {},"
                        " timescaledb.compress_orderby = {})"
                    ).format(
                        sql.Identifier(h.table),
                        sql.Literal(h.segment_by),
                        sql.Literal(f"{h.time_column} DESC"),
                    )
                )
            await conn.execute(
                "SELECT add_compression_policy(%s::regclass, %s::interval, if_not_exists => true)",
                (h.table, h.compress_after),
            )
        if h.retain is not None:
            await conn.execute(
                "SELECT add_retention_policy(%s::regclass, %s::interval, if_not_exists => true)",
                (h.table, h.retain),
            )
    log.info("timescaledb hypertables ensured", extra={"tables": [h.table for h in HYPERTABLES]})
    return True
