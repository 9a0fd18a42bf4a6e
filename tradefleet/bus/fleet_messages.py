"""Bodies of the bot worker's messages on ``fleet.{namespace}.{bot}.*`` and its commands.

Every bot publishes on stream FLEET (DESIGN.md, "NATS subjects and streams"); the recorder
writes these bodies to TimescaleDB and the operator turns heartbeats into the TradingBot's
``status``. One model per subject kind:

======================================  ================  ===============================
subject                                 model             ``Nats-Msg-Id``
======================================  ================  ===============================
``fleet.{ns}.{bot}.signal``             :class:`SignalMsg`    ``{ns}:{bot}:signal:{signal_id}``
``fleet.{ns}.{bot}.order``              :class:`OrderMsg`     ``{ns}:{bot}:order:{client_order_id}:{status}``
``fleet.{ns}.{bot}.fill``               :class:`FillMsg`      ``{ns}:{bot}:fill:{symbol}:{trade_id}``
``fleet.{ns}.{bot}.position``           :class:`PositionMsg`  ``{ns}:{bot}:position:{symbol}:{time_ms}:{qty}``
``fleet.{ns}.{bot}.status``             :class:`StatusMsg`    none (a snapshot; every one is kept)
``fleet.{ns}.{bot}.heartbeat``          :class:`StatusMsg`    none
``fleet.cmd.{ns}.{bot}``                :class:`CommandMsg`   ``{ns}:{bot}:cmd:{command_id}``
======================================  ================  ===============================

Conventions (tradefleet.bus.codec): JSON objects with schema version ``v``; prices, quantities
and USDT amounts are ``Decimal`` and travel as decimal strings (``"97012.4"``); times are
integer UTC milliseconds since the epoch. Two clocks appear, named apart:

- ``*_ms`` event times such as ``time_ms``, ``close_time_ms``: the bot's trading clock, i.e.
  the bar close time or the exchange's own timestamp (exsim's replay clock in paper mode).
- ``sent_ms``/``acked_ms``/``ts_ms``: the bot host's wall clock (when the message or the
  request was made), used for latencies.

Tracing: signals, orders and fills carry ``trace_id`` (32 lower-case hex), the OpenTelemetry
trace the signal started; the same context also travels in the W3C ``traceparent`` header,
so a fill can be found from its signal and back in logs, traces and rows.

Decoding: models ignore unknown fields, so a consumer built against ``v`` 1 still reads a
body with fields added later; removing or retyping a field bumps ``v``.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tradefleet.bus import codec


class _Body(BaseModel):
    """Base of every fleet body: frozen, extra fields ignored on decode (forward compatible)."""

    model_config = ConfigDict(frozen=True, extra="ignore", use_enum_values=False)

    def to_wire(self) -> dict[str, Any]:
        """The dict :func:`tradefleet.bus.codec.encode` writes (enums as values)."""
        return self.model_dump(mode="python")


class Phase(str, enum.Enum):
    """Lifecycle phase of a bot (``status.phase`` of the TradingBot, ``kubectl get``).

    - ``Pending``: configured, not started.
    - ``Starting``: connecting, rehydrating positions and stops, warming up indicators.
    - ``Running``: consuming bars and trading.
    - ``Paused``: no new entries (command ``pause`` or ``spec.paused``); exits, protective
      stops and trailing continue.
    - ``Halted``: no new entries until ``resume`` because a guard tripped (loss streak) or
      the bot was killed; ``reason`` says which.
    - ``Draining``: cancelling orders and closing positions (command ``drain``/``kill``);
      ends in ``Paused`` (drain) or ``Halted`` (kill).
    - ``Failed``: stopped on an error it cannot recover from; ``reason`` says what to fix.
    """

    PENDING = "Pending"
    STARTING = "Starting"
    RUNNING = "Running"
    PAUSED = "Paused"
    HALTED = "Halted"
    DRAINING = "Draining"
    FAILED = "Failed"


class SignalDisposition(str, enum.Enum):
    """What the bot did with a signal."""

    EXECUTED = "executed"            # orders were sent (see the order messages)
    PAUSED = "paused"                # an entry while Paused/Halted/Draining: not traded
    SIZING_REFUSED = "sizing_refused"  # quantity under the exchange minimums, no equity...
    RISK_BLOCKED = "risk_blocked"    # the risk check said block, or did not answer
    ORDER_FAILED = "order_failed"    # the exchange refused or the request failed
    NOTHING_TO_DO = "nothing_to_do"  # an exit while already flat


class SignalMsg(_Body):
    """A strategy signal on one closed bar and what the bot did with it.

    ``signal_id`` is ``{symbol}-{close_time_ms}-{action}``: the same bar can only give one
    signal per action, so a redelivered bar republishes the same id (de-duplicated).
    ``reason`` holds the rule and the indicator values that fired it (floats, e.g.
    ``{"rule": "ema_fast crossed above ema_slow", "ema_fast": 97010.2, ...}``).
    """

    namespace: str
    bot: str
    signal_id: str
    symbol: str
    action: Literal["enter_long", "enter_short", "exit"]
    strategy: str
    close_time_ms: int = Field(description="Close time of the bar that fired it, UTC ms.")
    price: Decimal = Field(description="Reference price: the bar's close, USDT.")
    stop_price: Decimal | None = Field(default=None, description="Protective stop, USDT.")
    stop_distance: Decimal | None = Field(default=None, description="|price - stop|, USDT.")
    trail_distance: Decimal | None = Field(default=None, description="Trailing offset, USDT.")
    take_profit_r: list[float] = Field(default_factory=list,
                                       description="Take-profit hints, multiples of the stop "
                                       "distance (R).")
    reason: dict[str, Any] = Field(default_factory=dict)
    disposition: SignalDisposition
    disposition_reason: str = Field(default="", description="Why (risk reason, sizing "
                                    "reason, exchange error); empty when executed.")
    quantity: Decimal | None = Field(default=None, description="Sized entry quantity, base "
                                     "units (None for exits or when sizing refused).")
    risk_outcome: Literal["allow", "soft_allow", "block"] | None = None
    trace_id: str | None = None
    ts_ms: int = Field(description="Wall clock when published, UTC ms.")


OrderPurpose = Literal["entry", "stop", "take_profit", "exit", "reverse", "drain", "trail"]
"""Why an order exists: ``entry`` opens; ``stop`` is the reduce-only STOP_MARKET protective
stop (``trail`` a replacement that tightens it); ``take_profit`` a reduce-only tier;
``exit``/``reverse``/``drain`` close a position (strategy exit, before a reversal, command)."""

OrderStatus = Literal["new", "partially_filled", "filled", "canceled", "rejected", "expired",
                      "failed"]
"""Binance order status in lower case; ``failed`` = no answer from the exchange (timeout,
connection) after the retries, so the order's fate was settled by a lookup or is unknown."""


class OrderMsg(_Body):
    """An order the bot sent, as acknowledged (or refused) by the exchange.

    One message per state the bot observed: the ACK (``new`` or ``filled`` for a market
    order), then ``canceled``/``filled`` when a stop is replaced or triggers.
    ``latency_ms`` is the REST round trip from sending the request to its ACK (the seeds'
    ``order_latency_ms``), measured on the bot's monotonic clock.
    """

    namespace: str
    bot: str
    symbol: str
    client_order_id: str
    exchange_order_id: str | None = None
    purpose: OrderPurpose
    type: Literal["market", "limit", "stop_market", "take_profit_market"]
    side: Literal["buy", "sell"]
    reduce_only: bool = False
    qty: Decimal = Field(description="Ordered quantity, base units.")
    filled_qty: Decimal = Field(default=Decimal(0), description="Filled so far, base units.")
    price: Decimal | None = Field(default=None, description="Limit price, or the average fill "
                                  "price of a filled market order, USDT.")
    stop_price: Decimal | None = Field(default=None, description="Trigger price of a stop or "
                                       "take-profit, USDT.")
    status: OrderStatus
    reject_code: int | None = Field(default=None, description="Exchange error code "
                                    "(Binance, e.g. -2019 margin insufficient).")
    reject_message: str | None = None
    latency_ms: float | None = Field(default=None, description="Request to ACK, ms.")
    sent_ms: int | None = Field(default=None, description="Wall clock at send, UTC ms.")
    acked_ms: int | None = Field(default=None, description="Wall clock at ACK, UTC ms.")
    time_ms: int | None = Field(default=None, description="Exchange time of the order's last "
                                "update, UTC ms (exsim: replay clock).")
    signal_id: str | None = None
    trace_id: str | None = None


class FillMsg(_Body):
    """One trade (execution) of one of the bot's orders.

    ``realized_pnl`` is the exchange's realized PnL of this trade before fees (Binance
    ``realizedPnl``), ``fee`` its commission in ``fee_asset``. ``slippage_bps`` compares the
    fill price with ``reference_price`` (the signal's bar close for entries and exits, the
    trigger price for stops): positive means worse for the bot,
    ``(price - ref) / ref × 10 000`` for buys and the opposite for sells.
    """

    namespace: str
    bot: str
    symbol: str
    trade_id: str
    exchange_order_id: str
    client_order_id: str | None = None
    purpose: OrderPurpose | None = None
    side: Literal["buy", "sell"]
    price: Decimal
    qty: Decimal
    fee: Decimal = Decimal(0)
    fee_asset: str = "USDT"
    realized_pnl: Decimal = Field(default=Decimal(0), description="Gross of fees, USDT.")
    liquidity: Literal["maker", "taker"] | None = None
    reference_price: Decimal | None = None
    slippage_bps: Decimal | None = None
    time_ms: int = Field(description="Exchange time of the trade, UTC ms.")
    signal_id: str | None = None
    trace_id: str | None = None


class PositionMsg(_Body):
    """The bot's position on one symbol after a change (fill, stop move, rehydration).

    ``qty`` is unsigned base units with ``side`` long/short, or 0 with ``side`` flat.
    ``unrealized_pnl`` is at ``mark_price`` (USDT). ``stop_price`` is the live protective
    stop's trigger (None only when flat).
    """

    namespace: str
    bot: str
    symbol: str
    side: Literal["long", "short", "flat"]
    qty: Decimal
    entry_price: Decimal | None = None
    mark_price: Decimal | None = None
    unrealized_pnl: Decimal = Decimal(0)
    stop_price: Decimal | None = None
    stop_order_id: str | None = None
    take_profit_prices: list[Decimal] = Field(default_factory=list)
    time_ms: int = Field(description="Bot clock of the change (bar close / exchange time), "
                         "UTC ms; for cause rehydrate the exchange's position update time, "
                         "or the host wall clock for a flat symbol.")
    cause: str = Field(default="", description="What changed it: fill, stop_moved, "
                       "rehydrate, drain, sync.")


class Counters(BaseModel):
    """Totals since the worker process started (reset on restart; Prometheus has the same)."""

    model_config = ConfigDict(extra="ignore")

    bars_processed: int = 0
    warmup_bars: int = 0
    signals: int = 0
    entries: int = 0
    exits: int = 0
    orders: int = 0
    order_rejects: int = 0
    fills: int = 0
    stop_moves: int = 0
    risk_blocks: int = 0
    sizing_refusals: int = 0
    trades_won: int = 0
    trades_lost: int = 0
    commands: int = 0
    dead_letters: int = 0


class StatusMsg(_Body):
    """A bot's state: published on every phase change (``status``) and every
    ``spec.heartbeatIntervalS`` seconds (``heartbeat``), and once more on shutdown.

    The operator copies ``phase``, ``reason``, ``positions`` and the PnL figures to the
    TradingBot's status and compares ``config_hash`` with the spec it rolled out.
    """

    namespace: str
    bot: str
    kind: Literal["status", "heartbeat"] = "status"
    phase: Phase
    reason: str = ""
    paused: bool = Field(default=False, description="New entries are off (Paused, Halted, "
                         "Draining, or spec.paused).")
    stopped: bool = Field(default=False, description="True on the last status of a process "
                          "that shut down (SIGTERM); phase is then the trading state it "
                          "stopped in, positions stay with their protective stops.")
    strategy: str = ""
    venue: str = ""
    mode: str = ""
    symbols: list[str] = Field(default_factory=list)
    interval: str = ""
    positions: list[PositionMsg] = Field(default_factory=list)
    open_orders: int = Field(default=0, description="Open orders incl. protective stops.")
    realized_pnl: Decimal = Field(default=Decimal(0), description="Since start of the "
                                  "process, net of fees, USDT.")
    unrealized_pnl: Decimal = Field(default=Decimal(0), description="At mark, USDT.")
    pnl_day: Decimal = Field(default=Decimal(0), description="Realized net of fees since "
                             "00:00 UTC of the bot clock, USDT (seed pnl_day_usdt).")
    loss_streak: int = Field(default=0, description="Consecutive losing trades now.")
    halted_until_ms: int | None = Field(default=None, description="Bar close time (UTC ms) "
                                        "at which a loss-streak halt lifts by itself "
                                        "(risk.lossStreakCooldownMin); None: no timed halt.")
    last_bar_close_ms: dict[str, int] = Field(default_factory=dict,
                                              description="Per symbol, the last processed "
                                              "bar's close time, UTC ms.")
    last_stream_seq: int | None = Field(default=None, description="MARKET stream sequence of "
                                        "the last acked message.")
    counters: Counters = Field(default_factory=Counters)
    last_command: str | None = Field(default=None, description="command_id of the last "
                                     "command applied.")
    config_hash: str = Field(default="", description="Hash of the spec this process runs "
                             "(see tradefleet.workers.bot.config.config_hash).")
    started_ms: int = Field(default=0, description="Wall clock the process started, UTC ms.")
    ts_ms: int = Field(description="Wall clock when published, UTC ms.")


class Command(str, enum.Enum):
    """Commands to one bot on ``fleet.cmd.{namespace}.{bot}``.

    - ``pause``: no new entries; exits, protective stops and trailing continue.
    - ``resume``: entries allowed again (clears Paused and Halted, e.g. a loss streak).
    - ``drain``: cancel every open order, close every position (reduce-only market), report
      flat, then stay Paused.
    - ``kill``: ``drain`` then Halted (the kill switch for one bot).

    Commands are idempotent states, not toggles: the stream keeps them, and a restarting
    bot applies the last one it finds (a ``resume`` never overrides ``spec.paused``).
    """

    PAUSE = "pause"
    RESUME = "resume"
    DRAIN = "drain"
    KILL = "kill"


class CommandMsg(_Body):
    """A command to one bot. ``command_id`` is unique per command (the operator uses the
    resource generation or a UUID); ``issued_by`` and ``reason`` are for the audit trail."""

    command: Command
    command_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")
    reason: str = ""
    issued_by: str = ""
    ts_ms: int = Field(description="Wall clock when issued, UTC ms.")


# -- message ids ---------------------------------------------------------------------------


def signal_id(symbol: str, close_time_ms: int, action: str) -> str:
    """``{symbol}-{close_time_ms}-{action}``: one signal per bar and action."""
    return f"{symbol}-{close_time_ms}-{action}"


def signal_msg_id(msg: SignalMsg) -> str:
    """``Nats-Msg-Id`` of a signal."""
    return codec.msg_id(msg.namespace, msg.bot, "signal", msg.signal_id)


def order_msg_id(msg: OrderMsg) -> str:
    """``Nats-Msg-Id`` of an order state: the client order id and the status, so each
    observed state is stored once however often it is republished."""
    return codec.msg_id(msg.namespace, msg.bot, "order", msg.client_order_id, msg.status)


def fill_msg_id(msg: FillMsg) -> str:
    """``Nats-Msg-Id`` of a fill: the exchange trade id (unique per symbol on Binance)."""
    return codec.msg_id(msg.namespace, msg.bot, "fill", msg.symbol, msg.trade_id)


def position_msg_id(msg: PositionMsg) -> str:
    """``Nats-Msg-Id`` of a position snapshot: symbol, time and quantity."""
    return codec.msg_id(msg.namespace, msg.bot, "position", msg.symbol, msg.time_ms,
                        f"{msg.side}{format(msg.qty, 'f')}")


def command_msg_id(namespace: str, bot: str, msg: CommandMsg) -> str:
    """``Nats-Msg-Id`` of a command: sending the same command id twice stores it once."""
    return codec.msg_id(namespace, bot, "cmd", msg.command_id)


__all__ = [
    "Command", "CommandMsg", "Counters", "FillMsg", "OrderMsg", "OrderPurpose", "OrderStatus",
    "Phase", "PositionMsg", "SignalDisposition", "SignalMsg", "StatusMsg", "command_msg_id",
    "fill_msg_id", "order_msg_id", "position_msg_id", "signal_id", "signal_msg_id",
]
