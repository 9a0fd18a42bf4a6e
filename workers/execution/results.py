"""Typed results of every execution call; the bot publishes them on ``fleet.{ns}.{bot}.*``.

All prices are USDT, quantities base units (both ``Decimal``, as the exchange sent them),
times integer UTC milliseconds, latencies float milliseconds. Names and literals match
``tradefleet.bus.fleet_messages`` (``OrderMsg``, ``FillMsg``, ``PositionMsg``), so a result
maps field for field onto the message the bot publishes:

=====================  ======================================  =========================
result                 returned by                             published as
=====================  ======================================  =========================
:class:`OrderResult`   every order sent or observed            ``.order``
:class:`Fill`          new trades of the bot's orders          ``.fill``
:class:`PositionView`  the executor's view after each call     ``.position``
=====================  ======================================  =========================

Each call's result (:class:`EntryResult`, :class:`StopMoveResult`, :class:`CloseResult`,
:class:`SyncResult`, :class:`DrainResult`, :class:`RehydrateResult`) bundles the orders,
fills and position it produced, plus a ``reason`` saying in words what happened when it was
not the plain success.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

OrderSide = Literal["buy", "sell"]
PositionSide = Literal["long", "short", "flat"]
OrderType = Literal["market", "stop_market", "take_profit_market"]
OrderStatus = Literal["new", "partially_filled", "filled", "canceled", "rejected", "expired",
                      "failed"]
"""Binance order status in lower case (``NEW`` → ``new``). ``failed`` means no answer from
the exchange after every retry and no order found under the client order id: the order was
most likely never executed, but the caller should :meth:`Executor.sync` to be sure."""
OrderPurpose = Literal["entry", "stop", "take_profit", "exit", "reverse", "drain", "trail"]
"""Why an order exists (``fleet_messages.OrderPurpose``): ``entry`` opens; ``stop`` is the
reduce-only STOP_MARKET protective stop (``trail`` a replacement that tightens it);
``take_profit`` a reduce-only tier; ``exit``/``reverse``/``drain`` close a position."""
Liquidity = Literal["maker", "taker"]

OPEN_STATUSES: frozenset[str] = frozenset({"new", "partially_filled"})


@dataclass(frozen=True, slots=True)
class OrderResult:
    """One order as the exchange acknowledged, refused or last reported it.

    Attributes:
        symbol: exchange symbol id, e.g. ``BTCUSDT``.
        purpose: see :data:`OrderPurpose`.
        leg: the client-order-id leg (``entry``, ``stop``, ``tp1``, ``trail-3``, ``exit``,
            ``rollback``, ``stopfail``, ``drain``...), finer than ``purpose``.
        client_order_id: the deterministic id sent (``clientAlgoId`` for conditional
            orders), see :mod:`.client_ids`.
        exchange_order_id: Binance ``orderId`` (``algoId`` for a conditional order); None
            when the exchange never acknowledged it.
        side, type, reduce_only: as sent.
        qty: ordered quantity, base units.
        filled_qty: executed quantity, base units.
        avg_price: average fill price (USDT), None when nothing filled.
        stop_price: trigger price of a stop / take-profit (USDT).
        status: see :data:`OrderStatus`.
        fee, fee_asset: commission of this order's fills when known (from the trades).
        realized_pnl: Binance ``realizedPnl`` of this order's fills, gross of fees (USDT),
            when known.
        latency_ms: REST round trip of the request that got the ACK (seed
            ``order_latency_ms``); None when there was no ACK.
        sent_ms, acked_ms: host wall clock at the first send / at the ACK (UTC ms).
        time_ms: exchange time of the order's last update (exsim: the replay clock).
        reject_code, reject_message: Binance error code and message of a refusal
            (e.g. -2021 "Order would immediately trigger."), or of the last failure.
        reason: why the order was sent or what happened to it, in words.
        signal_id: the signal the order belongs to.
        attempts: requests made (1 = no retry).
        recovered: True when a lost response was recovered by looking the order up under
            its client order id (so it was not sent twice).
    """

    symbol: str
    purpose: OrderPurpose
    leg: str
    client_order_id: str
    side: OrderSide
    type: OrderType
    qty: Decimal
    status: OrderStatus
    reduce_only: bool = False
    exchange_order_id: str | None = None
    filled_qty: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    stop_price: Decimal | None = None
    fee: Decimal | None = None
    fee_asset: str | None = None
    realized_pnl: Decimal | None = None
    latency_ms: float | None = None
    sent_ms: int | None = None
    acked_ms: int | None = None
    time_ms: int | None = None
    reject_code: int | None = None
    reject_message: str | None = None
    reason: str = ""
    signal_id: str | None = None
    attempts: int = 1
    recovered: bool = False

    @property
    def is_open(self) -> bool:
        """Resting on the exchange (``new`` / ``partially_filled``)."""
        return self.status in OPEN_STATUSES

    @property
    def is_filled(self) -> bool:
        """Completely executed."""
        return self.status == "filled"

    @property
    def is_rejected(self) -> bool:
        """Refused by the exchange (``reject_code`` says why) or never acknowledged."""
        return self.status in ("rejected", "failed")


@dataclass(frozen=True, slots=True)
class Fill:
    """One trade (Binance ``userTrades`` row) of one of the bot's orders.

    ``price`` USDT, ``qty`` base units, ``fee`` in ``fee_asset``, ``realized_pnl`` gross of
    fees (USDT, Binance ``realizedPnl``), ``time_ms`` exchange time. ``client_order_id``,
    ``purpose`` and ``leg`` are filled in when the order is one the executor placed or
    rehydrated; None for a trade of an order it does not know (e.g. placed by hand).
    """

    symbol: str
    trade_id: str
    exchange_order_id: str
    side: OrderSide
    price: Decimal
    qty: Decimal
    time_ms: int
    fee: Decimal = Decimal(0)
    fee_asset: str = "USDT"
    realized_pnl: Decimal = Decimal(0)
    liquidity: Liquidity | None = None
    client_order_id: str | None = None
    purpose: OrderPurpose | None = None
    leg: str | None = None
    signal_id: str | None = None


@dataclass(frozen=True, slots=True)
class TakeProfitView:
    """A resting take-profit tier: ``price`` USDT trigger, ``qty`` base units."""

    leg: str
    client_order_id: str
    exchange_order_id: str
    price: Decimal
    qty: Decimal


@dataclass(frozen=True, slots=True)
class PositionView:
    """The executor's view of the bot's position on one symbol (one-way mode: one per
    symbol; in hedge mode the side the bot holds).

    ``qty`` is unsigned base units, 0 when ``side`` is ``flat``. ``entry_price`` and
    ``mark_price`` USDT; ``unrealized_pnl`` at mark, USDT. ``stop_*`` describe the live
    protective STOP_MARKET (None only when flat, or when protecting it failed and
    ``protected`` is False). ``initial_qty`` / ``initial_stop`` are those of the entry
    (the R unit of the take-profit tiers); ``signal_id`` the entry signal when known.
    """

    symbol: str
    side: PositionSide
    qty: Decimal = Decimal(0)
    entry_price: Decimal | None = None
    mark_price: Decimal | None = None
    unrealized_pnl: Decimal = Decimal(0)
    stop_price: Decimal | None = None
    stop_qty: Decimal | None = None
    stop_order_id: str | None = None
    stop_client_order_id: str | None = None
    take_profits: tuple[TakeProfitView, ...] = ()
    initial_qty: Decimal | None = None
    initial_stop: Decimal | None = None
    signal_id: str | None = None
    time_ms: int | None = None

    @property
    def is_flat(self) -> bool:
        return self.side == "flat"

    @property
    def protected(self) -> bool:
        """Flat, or a protective stop covers at least the whole position."""
        return self.is_flat or (self.stop_order_id is not None and self.stop_qty is not None
                                and self.stop_qty >= self.qty)

    @property
    def take_profit_prices(self) -> list[Decimal]:
        return [tp.price for tp in self.take_profits]


EntryOutcome = Literal["opened", "refused", "rejected", "rolled_back", "stop_failed_closed",
                       "unprotected", "failed"]
"""``opened``: filled, stop (and tiers) resting. ``refused``: not sent (a position is
already open, or the quantity rounds below the minimum). ``rejected``: the exchange
refused the entry (code and message on ``entry``). ``rolled_back``: filled beyond the
slippage cap and closed again at market. ``stop_failed_closed``: the stop was refused
(e.g. -2021, would trigger immediately) so the position was closed at market.
``unprotected``: filled, no stop could be placed and the closing order failed too — the
bot must alert and call :meth:`Executor.sync` (which retries protection) at once.
``failed``: no answer from the exchange; nothing was found under the client order id."""


@dataclass(frozen=True, slots=True)
class EntryResult:
    """What :meth:`Executor.open_position` did.

    ``slippage_bps`` = |avg fill − reference| / reference × 10 000 (None when not
    filled). ``close`` is the reduce-only MARKET that undid the entry (slippage rollback,
    or the close after a refused stop). ``orders`` lists every order in sending order.
    """

    symbol: str
    outcome: EntryOutcome
    entry: OrderResult | None
    stop: OrderResult | None
    take_profits: tuple[OrderResult, ...]
    close: OrderResult | None
    fills: tuple[Fill, ...]
    position: PositionView
    slippage_bps: Decimal | None = None
    reason: str = ""

    @property
    def opened(self) -> bool:
        return self.outcome == "opened"

    @property
    def orders(self) -> tuple[OrderResult, ...]:
        out = [o for o in (self.entry, self.stop) if o is not None]
        out.extend(self.take_profits)
        if self.close is not None:
            out.append(self.close)
        return tuple(out)


StopMoveOutcome = Literal["moved", "unchanged", "refused", "rejected", "failed", "stopped_out"]
"""``moved``: the new stop rests and the old one is cancelled. ``unchanged``: the new price
equals the current one after rounding. ``refused``: looser than the current stop, or no
position / no stop — nothing sent. ``rejected`` / ``failed``: the exchange refused or did
not answer the new stop; the old stop is still in place. ``stopped_out``: the old stop
had already triggered when it was to be cancelled — the position is closed, and the next
:meth:`Executor.sync` reports the fills and cancels the new stop."""


@dataclass(frozen=True, slots=True)
class StopMoveResult:
    """What :meth:`Executor.move_stop` did. ``old_stop`` / ``new_stop`` are trigger prices
    (USDT, tick-rounded); ``placed`` the new stop order, ``canceled`` the old one."""

    symbol: str
    outcome: StopMoveOutcome
    old_stop: Decimal | None
    new_stop: Decimal | None
    placed: OrderResult | None
    canceled: OrderResult | None
    position: PositionView
    reason: str = ""

    @property
    def orders(self) -> tuple[OrderResult, ...]:
        return tuple(o for o in (self.placed, self.canceled) if o is not None)


CloseOutcome = Literal["closed", "flat", "rejected", "failed"]
"""``closed``: the reduce-only MARKET filled and the bot's orders are cancelled. ``flat``:
nothing to close (leftover orders cancelled). ``rejected`` / ``failed``: the closing order
was refused / unanswered; the stop and take-profits were left in place."""


@dataclass(frozen=True, slots=True)
class CloseResult:
    """What :meth:`Executor.close_position` did (``close`` the MARKET order, ``canceled``
    the bot's orders it cancelled)."""

    symbol: str
    outcome: CloseOutcome
    close: OrderResult | None
    canceled: tuple[OrderResult, ...]
    fills: tuple[Fill, ...]
    position: PositionView
    reason: str = ""

    @property
    def orders(self) -> tuple[OrderResult, ...]:
        return ((self.close,) if self.close is not None else ()) + self.canceled


SyncCause = Literal["none", "stop_filled", "take_profit_filled", "closed_outside",
                    "changed_outside", "protected", "opened_outside"]


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What :meth:`Executor.sync` found and did for one symbol.

    ``fills``: trades since the last call (each trade is returned once by the executor,
    whichever call sees it first). ``orders``: state changes of the bot's resting orders
    (a stop or tier that filled, expired or was cancelled) and every order sync itself sent
    (a stop resized to the remaining quantity, a stop given to an unprotected position, a
    stale order cancelled). ``closed`` is True when the position went flat since the
    previous view; ``cause`` says how. ``realized_pnl`` sums the new fills' realized PnL
    (gross, USDT) and ``fees`` their commissions.
    """

    symbol: str
    position: PositionView
    fills: tuple[Fill, ...] = ()
    orders: tuple[OrderResult, ...] = ()
    closed: bool = False
    cause: SyncCause = "none"
    realized_pnl: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DrainResult:
    """What :meth:`Executor.drain` did: ``flat`` is True when every symbol ended with no
    position and no open order of the bot; ``remaining`` lists the symbols that did not."""

    flat: bool
    closes: tuple[CloseResult, ...]
    canceled: tuple[OrderResult, ...]
    fills: tuple[Fill, ...]
    positions: tuple[PositionView, ...]
    remaining: tuple[str, ...] = ()
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RehydrateResult:
    """What :meth:`Executor.start` / :meth:`Executor.rehydrate` found and did.

    ``positions``: the rebuilt view per symbol (flat ones included). ``orders``: stops
    placed for positions that had none, stale orders cancelled, and closes of positions that
    could not be protected. ``adopted``: the bot's resting orders found on the exchange.
    """

    positions: tuple[PositionView, ...]
    orders: tuple[OrderResult, ...] = ()
    adopted: tuple[OrderResult, ...] = field(default_factory=tuple)
    reason: str = ""

    def position(self, symbol: str) -> PositionView:
        for p in self.positions:
            if p.symbol == symbol:
                return p
        raise KeyError(f"no position view for {symbol!r}; known: "
                       f"{', '.join(p.symbol for p in self.positions)}")
