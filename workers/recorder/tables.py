"""How rows reach each table: a per-session staging table, COPY, then INSERT ... SELECT.

For every recorded table there is a temporary ``stage_{table}`` (created once per database
session, ``ON COMMIT DELETE ROWS``) whose columns are exactly the tuple that
:mod:`tradefleet.workers.recorder.rows` builds for a message, in the same order. A batch is
``COPY stage_x FROM STDIN`` followed by ``INSERT INTO x SELECT ... FROM stage_x ON CONFLICT
DO NOTHING``, so a redelivered message whose row is already stored is skipped by the
table's primary key (its natural key) instead of failing the batch, and times are
converted from integer ms to ``timestamptz`` in SQL (``ms_to_timestamptz``), exactly.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TableSpec:
    """One table's staging columns (``(name, type)``, the row tuple's order) and the
    target columns with the SQL expression computing each from the staging columns."""

    table: str
    stage: tuple[tuple[str, str], ...]
    target: tuple[tuple[str, str], ...]

    @property
    def stage_table(self) -> str:
        return f"stage_{self.table}"

    @property
    def width(self) -> int:
        """Number of values in one row tuple."""
        return len(self.stage)

    def create_stage_sql(self) -> str:
        cols = ", ".join(f'"{name}" {kind}' for name, kind in self.stage)
        return (f"CREATE TEMP TABLE IF NOT EXISTS {self.stage_table} ({cols}) "
                "ON COMMIT DELETE ROWS")

    def copy_sql(self) -> str:
        cols = ", ".join(f'"{name}"' for name, _ in self.stage)
        return f"COPY {self.stage_table} ({cols}) FROM STDIN"

    def insert_sql(self) -> str:
        cols = ", ".join(f'"{name}"' for name, _ in self.target)
        exprs = ", ".join(expr for _, expr in self.target)
        return (f"INSERT INTO {self.table} ({cols}) SELECT {exprs} FROM {self.stage_table} "
                "ON CONFLICT DO NOTHING")


def _same(*names: str) -> tuple[tuple[str, str], ...]:
    return tuple((n, f'"{n}"') for n in names)


def _ts(target: str, stage: str) -> tuple[str, str]:
    return (target, f'ms_to_timestamptz("{stage}")')


BARS = TableSpec(
    "bars",
    stage=(("venue", "text"), ("symbol", "text"), ("interval", "text"),
           ("open_time_ms", "bigint"), ("close_time_ms", "bigint"),
           ("open", "numeric"), ("high", "numeric"), ("low", "numeric"), ("close", "numeric"),
           ("volume", "numeric"), ("quote_volume", "numeric"), ("trades", "integer"),
           ("taker_buy_volume", "numeric"), ("taker_buy_quote_volume", "numeric"),
           ("event_time_ms", "bigint"), ("source", "text")),
    target=(*_same("venue", "symbol", "interval"),
            _ts("open_time", "open_time_ms"), _ts("close_time", "close_time_ms"),
            *_same("open_time_ms", "open", "high", "low", "close", "volume", "quote_volume",
                   "trades", "taker_buy_volume", "taker_buy_quote_volume"),
            _ts("event_time", "event_time_ms"), *_same("source")),
)

FUNDING = TableSpec(
    "funding",
    stage=(("venue", "text"), ("symbol", "text"), ("funding_time_ms", "bigint"),
           ("funding_rate", "numeric"), ("mark_price", "numeric")),
    target=(*_same("venue", "symbol"), _ts("funding_time", "funding_time_ms"),
            *_same("funding_time_ms", "funding_rate", "mark_price")),
)

TRADES = TableSpec(
    "trades",
    stage=(("venue", "text"), ("symbol", "text"), ("trade_id", "text"), ("time_ms", "bigint"),
           ("price", "numeric"), ("qty", "numeric"), ("side", "text")),
    target=(*_same("venue", "symbol", "trade_id"), _ts("time", "time_ms"),
            *_same("time_ms", "price", "qty", "side")),
)

ORDERS = TableSpec(
    "orders",
    stage=(("namespace", "text"), ("bot", "text"), ("symbol", "text"),
           ("client_order_id", "text"), ("exchange_order_id", "text"), ("purpose", "text"),
           ("type", "text"), ("side", "text"), ("reduce_only", "boolean"), ("qty", "numeric"),
           ("filled_qty", "numeric"), ("price", "numeric"), ("stop_price", "numeric"),
           ("status", "text"), ("reject_code", "integer"), ("reject_message", "text"),
           ("latency_ms", "double precision"), ("sent_ms", "bigint"), ("acked_ms", "bigint"),
           ("time_ms", "bigint"), ("signal_id", "text"), ("trace_id", "text")),
    target=(*_same("namespace", "bot", "symbol", "client_order_id", "exchange_order_id",
                   "purpose", "type", "side", "reduce_only", "qty", "filled_qty", "price",
                   "stop_price", "status", "reject_code", "reject_message", "latency_ms"),
            _ts("sent_at", "sent_ms"), _ts("acked_at", "acked_ms"), _ts("time", "time_ms"),
            *_same("time_ms", "signal_id", "trace_id")),
)

FILLS = TableSpec(
    "fills",
    stage=(("namespace", "text"), ("bot", "text"), ("symbol", "text"), ("trade_id", "text"),
           ("exchange_order_id", "text"), ("client_order_id", "text"), ("purpose", "text"),
           ("side", "text"), ("price", "numeric"), ("qty", "numeric"), ("fee", "numeric"),
           ("fee_asset", "text"), ("realized_pnl", "numeric"), ("liquidity", "text"),
           ("reference_price", "numeric"), ("slippage_bps", "numeric"), ("time_ms", "bigint"),
           ("signal_id", "text"), ("trace_id", "text")),
    target=(*_same("namespace", "bot", "symbol", "trade_id", "exchange_order_id",
                   "client_order_id", "purpose", "side", "price", "qty", "fee", "fee_asset",
                   "realized_pnl", "liquidity", "reference_price", "slippage_bps"),
            _ts("time", "time_ms"), *_same("time_ms", "signal_id", "trace_id")),
)

POSITIONS = TableSpec(
    "positions",
    stage=(("namespace", "text"), ("bot", "text"), ("symbol", "text"), ("side", "text"),
           ("qty", "numeric"), ("entry_price", "numeric"), ("mark_price", "numeric"),
           ("unrealized_pnl", "numeric"), ("stop_price", "numeric"), ("stop_order_id", "text"),
           ("take_profit_prices", "numeric[]"), ("cause", "text"), ("time_ms", "bigint"),
           ("stream_seq", "bigint")),
    target=(*_same("namespace", "bot", "symbol", "side", "qty", "entry_price", "mark_price",
                   "unrealized_pnl", "stop_price", "stop_order_id", "take_profit_prices",
                   "cause"),
            _ts("time", "time_ms"), *_same("time_ms", "stream_seq")),
)

PNL_SNAPSHOTS = TableSpec(
    "pnl_snapshots",
    stage=(("namespace", "text"), ("bot", "text"), ("ts_ms", "bigint"), ("kind", "text"),
           ("phase", "text"), ("reason", "text"), ("paused", "boolean"), ("strategy", "text"),
           ("venue", "text"), ("mode", "text"), ("realized_pnl", "numeric"),
           ("unrealized_pnl", "numeric"), ("pnl_day", "numeric"), ("loss_streak", "integer"),
           ("open_orders", "integer"), ("positions", "jsonb"), ("counters", "jsonb"),
           ("config_hash", "text"), ("started_ms", "bigint")),
    target=(*_same("namespace", "bot"), _ts("time", "ts_ms"),
            *_same("kind", "phase", "reason", "paused", "strategy", "venue", "mode",
                   "realized_pnl", "unrealized_pnl", "pnl_day", "loss_streak", "open_orders",
                   "positions", "counters", "config_hash"),
            ("started_at", 'CASE WHEN "started_ms" > 0 THEN ms_to_timestamptz("started_ms") END')),
)

SIGNALS = TableSpec(
    "signals",
    stage=(("namespace", "text"), ("bot", "text"), ("signal_id", "text"), ("symbol", "text"),
           ("action", "text"), ("strategy", "text"), ("close_time_ms", "bigint"),
           ("price", "numeric"), ("stop_price", "numeric"), ("quantity", "numeric"),
           ("disposition", "text"), ("disposition_reason", "text"), ("risk_outcome", "text"),
           ("reason", "jsonb"), ("trace_id", "text"), ("ts_ms", "bigint")),
    target=(*_same("namespace", "bot", "signal_id", "symbol", "action", "strategy"),
            _ts("time", "close_time_ms"),
            *_same("price", "stop_price", "quantity", "disposition", "disposition_reason",
                   "risk_outcome", "reason", "trace_id"),
            _ts("published_at", "ts_ms")),
)

COMMANDS = TableSpec(
    "commands",
    stage=(("namespace", "text"), ("bot", "text"), ("command_id", "text"), ("command", "text"),
           ("reason", "text"), ("issued_by", "text"), ("ts_ms", "bigint"), ("body", "jsonb")),
    target=(*_same("namespace", "bot", "command_id", "command", "reason", "issued_by"),
            _ts("time", "ts_ms"), *_same("body")),
)

RISK_EVENTS = TableSpec(
    "risk_events",
    stage=(("event_id", "text"), ("time_ms", "bigint"), ("type", "text"), ("bot", "text"),
           ("symbol", "text"), ("request_id", "text"), ("outcome", "text"), ("reason", "text"),
           ("body", "jsonb")),
    target=(*_same("event_id"), _ts("time", "time_ms"),
            *_same("type", "bot", "symbol", "request_id", "outcome", "reason", "body")),
)

TABLES: dict[str, TableSpec] = {
    t.table: t
    for t in (BARS, FUNDING, TRADES, ORDERS, FILLS, POSITIONS, PNL_SNAPSHOTS, SIGNALS,
              COMMANDS, RISK_EVENTS)
}
"""Every table the recorder writes, by name."""
