"""One received message -> the table rows it becomes (pure; no I/O).

The subject picks the model (the owners' models in :mod:`tradefleet.bus.market_messages`
and :mod:`tradefleet.bus.fleet_messages`; risk events are plain objects from the risk
service), the body is validated by it, and each row is a tuple in the staging-column
order of :mod:`tradefleet.workers.recorder.tables`. A body that cannot be recorded raises
:class:`~tradefleet.bus.codec.DecodeError` naming the field and the reason: the recorder
dead-letters it. Amounts stay ``Decimal`` (PostgreSQL ``numeric``), times stay integer ms
(converted to ``timestamptz`` in SQL).

=========================================  ==============  ================================
subject                                    model           table (natural key)
=========================================  ==============  ================================
``md.{venue}.{symbol}.kline.{interval}``   KlineMsg        bars (venue, symbol, interval,
                                                           open_time)
``md.{venue}.{symbol}.funding``            FundingMsg      funding (venue, symbol,
                                                           funding_time)
``fleet.{ns}.{bot}.order``                 OrderMsg        orders (ns, bot, client_order_id,
                                                           status, time)
``fleet.{ns}.{bot}.fill``                  FillMsg         fills (ns, bot, symbol, trade_id,
                                                           time)
``fleet.{ns}.{bot}.position``              PositionMsg     positions (ns, bot, symbol, time,
                                                           side, qty)
``fleet.{ns}.{bot}.status|heartbeat``      StatusMsg       pnl_snapshots (ns, bot, time)
``fleet.{ns}.{bot}.signal``                SignalMsg       signals (ns, bot, signal_id, time)
``fleet.cmd.{ns}.{bot}``                   CommandMsg      commands (ns, bot, command_id,
                                                           time)
``risk.events``                            (dict)          risk_events (event_id, time)
=========================================  ==============  ================================
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import orjson

from tradefleet.bus import codec, subjects
from tradefleet.bus.codec import DecodeError
from tradefleet.bus.fleet_messages import (
    CommandMsg,
    FillMsg,
    OrderMsg,
    PositionMsg,
    SignalMsg,
    StatusMsg,
)
from tradefleet.bus.market_messages import MODELS as MARKET_MODELS
from tradefleet.bus.market_messages import FundingMsg, KlineMsg


class Received(Protocol):
    """What rows need of a JetStream message (a nats-py ``Msg`` has all of it)."""

    subject: str
    data: bytes
    headers: dict[str, str] | None

    @property
    def metadata(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class Record:
    """One row for ``table``: a tuple in the table's staging-column order."""

    table: str
    row: tuple[Any, ...]


RECORDED_MARKET_KINDS = ("kline", "funding")
"""Market kinds with a table and a model. ``trade`` has a table but no message model yet;
``mark`` and ``book`` are not recorded (high rate, not in the schema)."""


@functools.lru_cache(maxsize=8192)
def _parse(subject: str) -> subjects.Subject:
    # Subjects repeat (one per symbol and bot): parse each once.
    return subjects.parse(subject)


def _json(obj: Any) -> str:
    """jsonb text; Decimal as a decimal string like the wire format."""

    def default(o: Any) -> Any:
        if isinstance(o, Decimal):
            return format(o, "f")
        if hasattr(o, "model_dump"):
            return o.model_dump(mode="json")
        raise TypeError(f"cannot store {type(o).__name__} as JSON")

    return orjson.dumps(obj, default=default).decode()


def records(msg: Received) -> list[Record]:
    """The rows ``msg`` becomes. Raises :class:`DecodeError` (with the raw payload) for a
    subject or body that cannot be recorded."""
    subject, data = msg.subject, msg.data
    try:
        parsed = _parse(subject)
    except ValueError as exc:
        raise DecodeError(str(exc), bytes(data), subject) from None
    if parsed.plane == subjects.MD:
        return [_market(parsed, subject, data)]
    if parsed.plane == subjects.FLEET:
        return [_fleet(parsed, msg)]
    if parsed.plane == subjects.CMD:
        return [_command(parsed, subject, data)]
    if parsed.plane == "risk" and parsed.kind == "events":
        return [_risk_event(msg)]
    raise DecodeError(f"the recorder does not record {parsed.plane} subjects", bytes(data),
                      subject)


# -- market data -----------------------------------------------------------------------------


def _market(parsed: subjects.Subject, subject: str, data: bytes) -> Record:
    if parsed.kind not in RECORDED_MARKET_KINDS:
        raise DecodeError(f"market kind {parsed.kind!r} is not recorded (recorded: "
                          f"{', '.join(RECORDED_MARKET_KINDS)})", bytes(data), subject)
    msg: Any = codec.decode(data, subject=subject, model=MARKET_MODELS[parsed.kind])
    # The body must belong on its subject, as market_messages.decode_market checks; done
    # here against the cached parse because parsing the subject per message costs ~20 %.
    wrong = [f"{name} {getattr(msg, name)!r} != subject's {want!r}"
             for name, want in (("venue", parsed.venue), ("symbol", parsed.symbol),
                                ("interval", parsed.interval))
             if want is not None and getattr(msg, name, want) != want]
    if wrong:
        raise DecodeError(f"body does not belong on this subject: {'; '.join(wrong)}",
                          bytes(data), subject)
    if isinstance(msg, KlineMsg):
        return Record("bars", (
            msg.venue, msg.symbol, msg.interval, msg.open_time, msg.close_time,
            msg.open, msg.high, msg.low, msg.close, msg.volume, msg.quote_volume, msg.trades,
            msg.taker_buy_volume, msg.taker_buy_quote_volume, msg.event_time, msg.source,
        ))
    assert isinstance(msg, FundingMsg)
    return Record("funding", (msg.venue, msg.symbol, msg.funding_time, msg.funding_rate,
                              msg.mark_price))


# -- bot events ------------------------------------------------------------------------------

_FLEET_MODELS = {
    "order": OrderMsg, "fill": FillMsg, "position": PositionMsg, "signal": SignalMsg,
    "status": StatusMsg, "heartbeat": StatusMsg,
}


def _fleet(parsed: subjects.Subject, msg: Received) -> Record:
    subject, data = msg.subject, msg.data
    model = _FLEET_MODELS[parsed.kind]
    body: Any = codec.decode(data, subject=subject, model=model)
    wrong = [f"{name} {getattr(body, name)!r} != subject's {want!r}"
             for name, want in (("namespace", parsed.namespace), ("bot", parsed.bot))
             if getattr(body, name) != want]
    if wrong:
        raise DecodeError(f"body does not belong on this subject: {'; '.join(wrong)}",
                          bytes(data), subject)
    if isinstance(body, OrderMsg):
        # The key needs a time: the exchange's, else the bot's ack or send time, else the
        # time JetStream stored the message (stable across redeliveries).
        time_ms = body.time_ms or body.acked_ms or body.sent_ms or _stored_ms(msg)
        return Record("orders", (
            body.namespace, body.bot, body.symbol, body.client_order_id,
            body.exchange_order_id, body.purpose, body.type, body.side, body.reduce_only,
            body.qty, body.filled_qty, body.price, body.stop_price, body.status,
            body.reject_code, body.reject_message, body.latency_ms, body.sent_ms,
            body.acked_ms, time_ms, body.signal_id, body.trace_id,
        ))
    if isinstance(body, FillMsg):
        return Record("fills", (
            body.namespace, body.bot, body.symbol, body.trade_id, body.exchange_order_id,
            body.client_order_id, body.purpose, body.side, body.price, body.qty, body.fee,
            body.fee_asset, body.realized_pnl, body.liquidity, body.reference_price,
            body.slippage_bps, body.time_ms, body.signal_id, body.trace_id,
        ))
    if isinstance(body, PositionMsg):
        return Record("positions", (
            body.namespace, body.bot, body.symbol, body.side, body.qty, body.entry_price,
            body.mark_price, body.unrealized_pnl, body.stop_price, body.stop_order_id,
            list(body.take_profit_prices), body.cause, body.time_ms, _stream_seq(msg),
        ))
    if isinstance(body, StatusMsg):
        return Record("pnl_snapshots", (
            body.namespace, body.bot, body.ts_ms, parsed.kind, _value(body.phase), body.reason,
            body.paused, body.strategy, body.venue, body.mode, body.realized_pnl,
            body.unrealized_pnl, body.pnl_day, body.loss_streak, body.open_orders,
            _json([p.model_dump(mode="json") for p in body.positions]),
            _json(body.counters.model_dump(mode="json")), body.config_hash, body.started_ms,
        ))
    assert isinstance(body, SignalMsg)
    return Record("signals", (
        body.namespace, body.bot, body.signal_id, body.symbol, body.action, body.strategy,
        body.close_time_ms, body.price, body.stop_price, body.quantity,
        _value(body.disposition), body.disposition_reason, body.risk_outcome,
        _json(body.reason), body.trace_id, body.ts_ms,
    ))


def _command(parsed: subjects.Subject, subject: str, data: bytes) -> Record:
    body: Any = codec.decode(data, subject=subject, model=CommandMsg)
    raw = codec.decode(data, subject=subject)  # every field, e.g. a flatten's symbol
    return Record("commands", (
        parsed.namespace, parsed.bot, body.command_id, _value(body.command), body.reason,
        body.issued_by, body.ts_ms, _json(raw),
    ))


# -- risk events -----------------------------------------------------------------------------


def _risk_event(msg: Received) -> Record:
    """Risk service events (workers/risk/service.py): ``type`` and ``time_ms`` always;
    decisions carry ``request_id``, ``bot``, ``symbol``, ``outcome``, ``reason``."""
    subject, data = msg.subject, msg.data
    body: Any = codec.decode(data, subject=subject)
    kind = body.get("type")
    if not isinstance(kind, str) or not kind:
        raise DecodeError(f"field 'type' must be a non-empty string, got {kind!r}",
                          bytes(data), subject)
    time_ms = body.get("time_ms")
    if isinstance(time_ms, bool) or not isinstance(time_ms, int) or time_ms < 0:
        raise DecodeError(f"field 'time_ms' must be an integer >= 0 (UTC ms), got {time_ms!r}",
                          bytes(data), subject)
    text = {}
    for name in ("bot", "symbol", "request_id", "outcome", "reason"):
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise DecodeError(f"field {name!r} must be a string, got {value!r}", bytes(data),
                              subject)
        text[name] = value
    if kind == "decision":
        if not text["request_id"]:
            raise DecodeError("a decision event needs field 'request_id'", bytes(data), subject)
        event_id = f"decision:{text['request_id']}"
    else:
        event_id = (msg.headers or {}).get(codec.MSG_ID) or f"RISK:{_stream_seq(msg)}"
    return Record("risk_events", (
        event_id, time_ms, kind, text["bot"], text["symbol"], text["request_id"],
        text["outcome"], text["reason"], _json(body),
    ))


# -- helpers ---------------------------------------------------------------------------------


def _value(v: Any) -> Any:
    return getattr(v, "value", v)


def _stream_seq(msg: Received) -> int | None:
    try:
        return int(msg.metadata.sequence.stream)
    except Exception:  # not a JetStream message: no sequence to order by
        return None


def _stored_ms(msg: Received) -> int:
    try:
        return int(msg.metadata.timestamp.timestamp() * 1000)
    except Exception as exc:
        raise DecodeError("order has no time_ms, acked_ms or sent_ms and no JetStream "
                          "timestamp to key it by", bytes(msg.data), msg.subject) from exc


def batch_rows(recs: list[Record]) -> Mapping[str, list[tuple[Any, ...]]]:
    """Group records by table (insertion order kept)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for r in recs:
        out.setdefault(r.table, []).append(r.row)
    return out
