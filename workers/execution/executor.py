"""The executor: how a sized signal becomes orders, and how the bot keeps them right.

One :class:`Executor` per bot, over one ccxt ``binanceusdm`` async client (exsim, testnet
or live by configuration only, :func:`~.client.build_exchange`). The bot calls:

1. ``await executor.start(stop_fallback)`` — load markets and filters, set position mode
   and leverage, rebuild the view from the exchange (positions, open orders incl.
   conditional ones) and give any unprotected position a stop before anything else;
2. ``await executor.open_position(EntryRequest(...))`` per entry signal — MARKET entry,
   slippage cap with rollback, reduce-only STOP_MARKET, take-profit tiers (Momentum seed
   000; OCO ``tp_tiers`` seed 002);
3. ``await executor.move_stop(symbol, price)`` to trail (only ever tightens);
4. ``await executor.sync(symbol)`` on every bar and after reconnects — fills of stops and
   tiers that happened on the exchange, stop resized to what is left;
5. ``await executor.close_position(symbol)`` / ``await executor.drain()`` to exit;
6. ``await executor.close()``.

Invariant: every open position of the bot has a reduce-only protective stop for its full
size; when one cannot be placed the position is closed at market.

Decisions:

* **Stops are reduce-only STOP_MARKET with the position's quantity**, not
  ``closePosition=true``: Binance allows one closePosition stop per side and type (-4130),
  which rules out placing the new stop before cancelling the old one. Reduce-only cannot
  flip the position, so a stop briefly larger than the position (after a tier filled,
  before :meth:`Executor.sync` resizes it) only ever closes what is there.
* **Trailing is place-then-cancel** (the seed's cancel + recreate, reordered): there is
  never a moment without a stop; a refused new stop leaves the old one.
* **Exits are close-then-cancel**: a refused close keeps the stop and tiers.
* **One bot per symbol and account**: the account's position in a symbol is the bot's;
  orders are told apart by client order id (:mod:`.client_ids`), so other clients' orders
  are never cancelled except by :meth:`Executor.drain` (which empties the symbol).
* **Fills** come from ``userTrades`` after a per-symbol trade-id cursor; every call that
  trades returns the new fills, so each trade is reported exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, Decimal
from typing import Any, Literal

from tradefleet.api.tradingbot import ExecutionSpec, PositionMode, TradingBotSpec

from .client import AccountSetup, build_exchange, configure_account
from .client_ids import ClientIds
from .errors import AccountSetupError, ExecutionError, ExecutionInputError, error_info
from .filters import SymbolRules, rules_from_market
from .hooks import ExecutionHooks, NullHooks
from .orders import OrderGateway, OrderIntent, purpose_of_leg
from .results import (CloseResult, DrainResult, EntryResult, Fill, OrderResult, PositionView,
                      RehydrateResult, StopMoveResult, SyncResult, TakeProfitView)
from .retry import RetryPolicy, retry_call

__all__ = ["Executor", "EntryRequest", "StopFallback", "pct_stop_fallback"]

log = logging.getLogger("tradefleet.execution")

StopFallback = Callable[[str, Decimal], Decimal]
"""``fallback(symbol, mark_price) -> stop distance`` (USDT, > 0) for a position found
without a stop (rehydration, or a stop that vanished): the stop goes at mark ∓ distance.
The bot passes e.g. ``ATR_STOP_MULT × ATR`` or :func:`pct_stop_fallback`."""


def pct_stop_fallback(pct: Decimal | float | str) -> StopFallback:
    """A :data:`StopFallback` of ``pct`` percent of the mark price (seed
    ``ATR_MIN_PCT_DEFAULT`` style fallback). Raises ValueError unless 0 < pct < 100."""
    p = Decimal(str(pct))
    if not 0 < p < 100:
        raise ValueError(f"pct must be a percentage in (0, 100), got {pct!r}")

    def fallback(symbol: str, mark_price: Decimal) -> Decimal:
        return Decimal(mark_price) * p / 100

    return fallback


@dataclass(frozen=True, slots=True)
class EntryRequest:
    """A sized entry.

    Attributes:
        symbol: exchange id (``BTCUSDT``), one of the bot's symbols.
        side: ``long`` (BUY) or ``short`` (SELL).
        qty: base units, > 0; rounded down to the step (sizing already does).
        stop_price: protective stop trigger, USDT; below ``reference_price`` for a long,
            above for a short. Rounded toward the position (see :mod:`.filters`).
        reference_price: the price the signal was computed on (bar close), USDT; the
            slippage cap and the take-profit R unit use it together with the fill.
        signal_id: unique per signal (``{symbol}-{close_time_ms}-{action}``); the client
            order ids derive from it, so re-sending the same request never doubles it.
        take_profit_tiers: ``((r, fraction), ...)`` overriding ``execution.tpTiers``;
            None means the spec's tiers.
    """

    symbol: str
    side: Literal["long", "short"]
    qty: Decimal
    stop_price: Decimal
    reference_price: Decimal
    signal_id: str
    take_profit_tiers: tuple[tuple[Decimal, Decimal], ...] | None = None


_ZERO = Decimal(0)
_BPS = Decimal(10_000)
_FILL_POLLS = 10  # a MARKET acknowledged as NEW (Binance may fill it asynchronously)


@dataclass
class _State:
    """Mutable per-symbol view (private; :class:`PositionView` is the public snapshot)."""

    symbol: str
    market: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    side: str = "flat"
    qty: Decimal = _ZERO
    entry_price: Decimal | None = None
    mark_price: Decimal | None = None
    unrealized_pnl: Decimal = _ZERO
    time_ms: int | None = None
    tag: str | None = None
    signal_id: str | None = None
    initial_qty: Decimal | None = None
    initial_stop: Decimal | None = None
    stop: OrderResult | None = None
    tps: dict[str, OrderResult] = field(default_factory=dict)
    stop_gen: int = 0
    cursor: int = -1
    unreported: list[OrderResult] = field(default_factory=list)

    def flatten(self) -> None:
        self.side, self.qty, self.entry_price, self.unrealized_pnl = "flat", _ZERO, None, _ZERO
        self.tag = self.signal_id = None
        self.initial_qty = self.initial_stop = None
        self.stop = None
        self.tps = {}
        self.stop_gen = 0

    @property
    def held(self) -> str:
        return self.side

    @property
    def closing_side(self) -> str:
        return "sell" if self.side == "long" else "buy"


@dataclass(frozen=True, slots=True)
class _Exposure:
    """One position row read from the exchange."""

    side: str
    qty: Decimal
    entry_price: Decimal | None
    mark_price: Decimal | None
    unrealized_pnl: Decimal
    time_ms: int | None


_FLAT = _Exposure("flat", _ZERO, None, None, _ZERO, None)


class Executor:
    """Orders of one bot on one exchange account (see the module docstring).

    Args:
        exchange: a ccxt ``binanceusdm`` async client (:func:`~.client.build_exchange`);
            the executor closes it in :meth:`close` only if ``owns_exchange``.
        bot_key: ``namespace/name``; the client order ids derive from it.
        symbols: exchange ids the bot trades (``BTCUSDT``); the account's position in each
            belongs to this bot (one bot per symbol and account).
        execution: the spec's execution block (slippage cap bps, tp tiers, working type,
            position mode, order timeout ms, max retries).
        leverage: set on every symbol at :meth:`start` (``sizing.leverage``).
        hooks: metrics callbacks (:class:`~.hooks.ExecutionHooks`); default no-ops.
        retry: backoff settings; default from ``execution.maxRetries``.

    Calls on one symbol are serialised (a lock per symbol); different symbols run
    concurrently.
    """

    def __init__(self, exchange: Any, *, bot_key: str, symbols: Iterable[str],
                 execution: ExecutionSpec, leverage: int = 1,
                 hooks: ExecutionHooks | None = None, retry: RetryPolicy | None = None,
                 owns_exchange: bool = False) -> None:
        symbols = tuple(symbols)
        if not symbols:
            raise ExecutionInputError("symbols must list at least one symbol (e.g. BTCUSDT)")
        if len(set(symbols)) != len(symbols):
            raise ExecutionInputError(f"symbols must not repeat, got {list(symbols)}")
        self.exchange = exchange
        self.bot_key = bot_key
        self.symbols = symbols
        self.execution = execution
        self.leverage = leverage
        self.hooks = hooks or NullHooks()
        self.retry = retry or RetryPolicy(max_retries=execution.max_retries)
        self.ids = ClientIds(bot_key)
        self._owns_exchange = owns_exchange
        recv = (getattr(exchange, "options", None) or {}).get("recvWindow", 5_000)
        self.gateway = OrderGateway(exchange, retry=self.retry, hooks=self.hooks,
                                    recv_window_ms=int(recv))
        self._rules: dict[str, SymbolRules] = {}
        self._states: dict[str, _State] = {}
        self._known: dict[tuple[str, str], OrderResult] = {}
        self._fallback: StopFallback | None = None
        self._hedged = execution.position_mode is PositionMode.HEDGE
        self.account: AccountSetup | None = None

    @classmethod
    def from_spec(cls, spec: TradingBotSpec, *, bot_key: str, api_key: str, api_secret: str,
                  hooks: ExecutionHooks | None = None,
                  exchange_options: Mapping[str, Any] | None = None) -> "Executor":
        """An executor with its own client built from ``spec`` (venue, mode, endpoints,
        execution, sizing.leverage); :meth:`close` closes that client. Call :meth:`start`
        next. Raises ValueError for a spec the client cannot be built from."""
        exchange = build_exchange(spec, api_key, api_secret, options=exchange_options)
        return cls(exchange, bot_key=bot_key, symbols=spec.symbols, execution=spec.execution,
                   leverage=spec.sizing.leverage, hooks=hooks, owns_exchange=True)

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self, stop_fallback: StopFallback) -> RehydrateResult:
        """Load markets and filters, set position mode and leverage, then
        :meth:`rehydrate`. Raises :class:`~.errors.AccountSetupError` (markets, leverage,
        position mode) and ValueError for a symbol the exchange does not list."""
        try:
            await retry_call(self.exchange.load_markets, policy=self.retry, hooks=self.hooks,
                             symbol="*", operation="load_markets")
        except ExecutionError as exc:
            code, msg = error_info(exc)
            raise AccountSetupError(f"cannot load markets: {msg}", code) from None
        for symbol in self.symbols:
            markets = [m for m in self.exchange.markets_by_id.get(symbol, [])
                       if m.get("linear") and m.get("swap")]
            if not markets:
                raise ValueError(f"symbols: {symbol!r} is not a USDⓈ-M perpetual on "
                                 f"{self.exchange.id}")
            self._rules[symbol] = rules_from_market(markets[0])
            self._states[symbol] = _State(symbol, markets[0]["symbol"])
        self.account = await configure_account(
            self.exchange, [self._states[s].market for s in self.symbols],
            leverage=self.leverage, position_mode=self.execution.position_mode)
        self._hedged = self.account.hedged
        return await self.rehydrate(stop_fallback)

    async def close(self) -> None:
        """Close the ccxt client if this executor built it (:meth:`from_spec`)."""
        if self._owns_exchange:
            await self.exchange.close()

    # -- views ------------------------------------------------------------------------------
    def rules(self, symbol: str) -> SymbolRules:
        """Exchange filters of ``symbol`` (after :meth:`start`). Raises KeyError."""
        try:
            return self._rules[symbol]
        except KeyError:
            raise KeyError(f"no filters for {symbol!r}: not one of the bot's symbols "
                           f"{list(self.symbols)}, or start() not called") from None

    def position(self, symbol: str) -> PositionView:
        """The executor's current view of ``symbol`` (no request)."""
        return self._view(self._state(symbol))

    def positions(self) -> tuple[PositionView, ...]:
        """Views of every symbol of the bot, in ``symbols`` order."""
        return tuple(self._view(self._states[s]) for s in self.symbols if s in self._states)

    # -- entry ------------------------------------------------------------------------------
    async def open_position(self, request: EntryRequest) -> EntryResult:
        """MARKET entry, then the reduce-only STOP_MARKET for the filled quantity, then the
        take-profit tiers (seed 000 executor; seed 002 ``tp_tiers``).

        * slippage: |avg fill − ``reference_price``| / reference × 10 000 above
          ``execution.slippageCapBps`` (either direction: a fill far from the price the
          signal saw means the signal is stale) → reduce-only MARKET close (``rollback``);
        * stop refused for any reason (-2021 would trigger immediately, -2010...) → the
          position is closed at market (``stopfail``): no position stays unprotected;
        * tiers: tier i at entry ± r_i × |entry − stop|, quantity fraction_i × filled
          rounded down to the step (the last tier takes the remainder when the fractions
          add up to 1); a tier under the minimum quantity is skipped (named in ``reason``);
          a refused tier leaves the stop in place.

        The entry's client order id is looked up first: a signal that was already executed
        (a redelivered bar after a restart) comes back ``refused`` and sends nothing.

        Raises :class:`~.errors.ExecutionInputError` for bad input (nothing sent).
        """
        st = self._state(request.symbol, field="request.symbol")
        rules = self._rules[request.symbol]
        tiers = self._check_entry(request)
        held = request.side
        async with st.lock:
            if st.side != "flat":
                return self._entry_result(st, "refused", None, reason=(
                    f"{st.symbol} already has a {st.side} position of {st.qty}; close it "
                    f"before opening another"))
            qty = rules.floor_qty(Decimal(request.qty))
            minimum = rules.sizing_filters().min_qty
            if qty < minimum:
                return self._entry_result(st, "refused", None, reason=(
                    f"quantity {request.qty} rounds down to {qty}, below the minimum {minimum}"))
            if qty * request.reference_price < rules.min_notional:
                return self._entry_result(st, "refused", None, reason=(
                    f"notional {qty * request.reference_price} USDT is below the minimum "
                    f"{rules.min_notional} USDT"))
            stop_price = rules.round_stop(Decimal(request.stop_price), held)
            tag = self.ids.tag(st.symbol, request.signal_id)
            intent = self._intent(
                st, tag=tag, leg="entry", type="market", side="buy" if held == "long" else "sell",
                qty=qty, signal_id=request.signal_id, reason="entry", closing=False, held=held)
            # A redelivered signal (bot restarted before acking its bar) must not trade twice,
            # even if its position is gone by now: its entry id is already on the exchange.
            earlier = await self.gateway.existing(intent)
            if earlier is not None:
                self._remember(earlier)
                return self._entry_result(st, "refused", replace(earlier, recovered=True),
                                          reason=f"signal {request.signal_id} was already "
                                          f"executed: entry order {earlier.exchange_order_id} "
                                          f"is {earlier.status}")
            entry = await self.gateway.place(intent)
            self._remember(entry)
            if entry.status in ("new", "partially_filled"):
                entry = await self._await_fill(st, entry)
            filled, avg, note = entry.filled_qty, entry.avg_price, ""
            if filled == 0 and entry.status != "rejected":
                # No fill seen (lost answer, or expired): the position is the truth.
                try:
                    exposure = await self._read_exposure(st, prefer=held)
                except ExecutionError as exc:
                    return self._entry_result(st, "failed", entry, reason=(
                        f"{_why(entry, 'entry')}; the position could not be read either "
                        f"({exc}); call sync() when the exchange answers"))
                if exposure.side == held:
                    filled, avg = exposure.qty, exposure.entry_price
                    note = f"entry outcome {entry.status}; position of {filled} found. "
            if filled == 0 or avg is None:
                outcome = "failed" if entry.status == "failed" else "rejected"
                return self._entry_result(st, outcome, entry, fills=await self._fills(st),
                                          reason=_why(entry, "entry"))
            st.side, st.qty, st.entry_price = held, filled, avg
            st.tag, st.signal_id, st.initial_qty, st.stop_gen = tag, request.signal_id, filled, 0
            slippage = (abs(avg - request.reference_price) / request.reference_price * _BPS
                        ).quantize(Decimal("0.01"))
            cap = Decimal(str(self.execution.slippage_cap_bps))
            close = None
            if cap > 0 and slippage > cap:
                why = (f"slippage {slippage} bps (fill {avg} vs reference "
                       f"{request.reference_price}) exceeds the cap of {cap} bps")
                close = await self._market_close(st, filled, leg="rollback", purpose="exit",
                                                 reason=f"rollback: {why}")
                if close.is_filled:
                    fills = await self._fills(st)
                    st.flatten()
                    return self._entry_result(st, "rolled_back", entry, close=close,
                                              fills=fills, slippage=slippage,
                                              reason=note + why + "; closed at market")
                note += f"{why} but the rollback failed ({_why(close, 'rollback')}); "
            stop = await self._place_stop(st, stop_price, filled, leg="stop", purpose="stop",
                                          reason="protective stop")
            if not stop.is_open:
                close = await self._market_close(st, filled, leg="stopfail", purpose="exit",
                                                 reason=f"stop refused: {_why(stop, 'stop')}")
                fills = await self._fills(st)
                if close.is_filled:
                    st.flatten()
                    return self._entry_result(st, "stop_failed_closed", entry, stop=stop,
                                              close=close, fills=fills, slippage=slippage,
                                              reason=note + f"stop at {stop_price} refused "
                                              f"({_why(stop, 'stop')}); closed at market")
                return self._entry_result(st, "unprotected", entry, stop=stop, close=close,
                                          fills=fills, slippage=slippage,
                                          reason=note + f"stop refused ({_why(stop, 'stop')}) "
                                          f"and the close failed ({_why(close, 'close')}): "
                                          f"POSITION WITHOUT STOP")
            st.initial_stop = stop_price
            tps, skipped = await self._place_take_profits(st, tiers, avg, stop_price, filled)
            fills = await self._fills(st)
            return self._entry_result(st, "opened", entry, stop=stop, tps=tps, close=close,
                                      fills=fills, slippage=slippage,
                                      reason=(note + skipped).strip())

    def _check_entry(self, r: EntryRequest) -> list[tuple[Decimal, Decimal]]:
        """Validate an entry; returns the tiers to use. Raises ExecutionInputError."""
        if r.side not in ("long", "short"):
            raise ExecutionInputError(f"request.side must be 'long' or 'short', got {r.side!r}")
        for name in ("qty", "stop_price", "reference_price"):
            value = getattr(r, name)
            if not isinstance(value, (Decimal, int)) or isinstance(value, bool) or not value > 0:
                raise ExecutionInputError(f"request.{name} must be a Decimal > 0, got {value!r}")
        if not r.signal_id or not isinstance(r.signal_id, str):
            raise ExecutionInputError("request.signal_id must be a non-empty string")
        if r.side == "long" and not r.stop_price < r.reference_price:
            raise ExecutionInputError(f"request.stop_price {r.stop_price} must be below the "
                                      f"reference price {r.reference_price} for a long")
        if r.side == "short" and not r.stop_price > r.reference_price:
            raise ExecutionInputError(f"request.stop_price {r.stop_price} must be above the "
                                      f"reference price {r.reference_price} for a short")
        if r.take_profit_tiers is None:
            tiers = [(Decimal(str(t.r)), Decimal(str(t.fraction)))
                     for t in self.execution.tp_tiers]
        else:
            tiers = [(Decimal(str(rr)), Decimal(str(f))) for rr, f in r.take_profit_tiers]
        rs = [t[0] for t in tiers]
        if any(x <= 0 for x in rs) or rs != sorted(set(rs)):
            raise ExecutionInputError(f"request.take_profit_tiers: r must be > 0 and strictly "
                                      f"ascending, got {[str(x) for x in rs]}")
        fractions = [t[1] for t in tiers]
        if any(not 0 < f <= 1 for f in fractions) or sum(fractions) > 1:
            raise ExecutionInputError(f"request.take_profit_tiers: fractions must be in (0, 1] "
                                      f"and add up to at most 1, got {[str(f) for f in fractions]}")
        return tiers

    async def _place_take_profits(self, st: _State, tiers: list[tuple[Decimal, Decimal]],
                                  entry: Decimal, stop: Decimal, filled: Decimal
                                  ) -> tuple[tuple[OrderResult, ...], str]:
        rules = self._rules[st.symbol]
        risk = abs(entry - stop)
        whole = sum(f for _, f in tiers) == 1
        out: list[OrderResult] = []
        skipped: list[str] = []
        placed_qty = _ZERO
        for i, (r, fraction) in enumerate(tiers, start=1):
            last = i == len(tiers)
            qty = (filled - placed_qty) if (last and whole) else fraction * filled
            qty = _floor(qty, rules.step_size)
            leg = f"tp{i}"
            if qty < rules.min_qty or qty <= 0:
                skipped.append(f"{leg} skipped: quantity {qty} below the minimum {rules.min_qty}")
                continue
            raw = entry + r * risk if st.side == "long" else entry - r * risk
            if raw <= 0:
                skipped.append(f"{leg} skipped: target {raw} is not a price")
                continue
            price = rules.round_take_profit(raw, st.side)
            tp = await self.gateway.place(self._intent(
                st, leg=leg, type="take_profit_market", side=st.closing_side, qty=qty,
                stop_price=price, signal_id=st.signal_id,
                reason=f"take profit {r}R ({fraction} of the entry)"))
            self._remember(tp)
            out.append(tp)
            if tp.is_open:
                st.tps[leg] = tp
                placed_qty += qty
            else:
                skipped.append(f"{leg} refused: {_why(tp, leg)}")
        return tuple(out), "; ".join(skipped)

    async def _await_fill(self, st: _State, order: OrderResult) -> OrderResult:
        for _ in range(_FILL_POLLS):
            await asyncio.sleep(0.1)
            try:
                order = replace(await self.gateway.resolve(order, st.market),
                                latency_ms=order.latency_ms, sent_ms=order.sent_ms,
                                acked_ms=order.acked_ms, attempts=order.attempts)
            except ExecutionError:
                continue
            if not order.is_open:
                break
        return order

    # -- trailing ---------------------------------------------------------------------------
    async def move_stop(self, symbol: str, new_stop: Decimal, *,
                        reason: str = "trail") -> StopMoveResult:
        """Trail the stop to ``new_stop`` (USDT) if that tightens it (a long's stop only
        rises, a short's only falls); a looser or equal price changes nothing and sends
        nothing (``refused`` / ``unchanged``, with the reason).

        Replacement is place-then-cancel: the new reduce-only STOP_MARKET (leg
        ``trail-N``) must be resting before the old one is cancelled, so the position is
        never without a stop; if the new one is refused (e.g. -2021, the market is already
        through it) the old stop stays. Reduce-only stops with a quantity (not
        ``closePosition``) make this possible: Binance allows only one closePosition stop
        per side (-4130), but any number of reduce-only ones.
        """
        st = self._state(symbol)
        if not isinstance(new_stop, (Decimal, int)) or isinstance(new_stop, bool) or not new_stop > 0:
            raise ExecutionInputError(f"new_stop must be a Decimal > 0, got {new_stop!r}")
        async with st.lock:
            old = st.stop
            if st.side == "flat" or old is None or old.stop_price is None:
                what = "no open position" if st.side == "flat" else "no protective stop to move"
                return StopMoveResult(symbol, "refused", old.stop_price if old else None, None,
                                      None, None, self._view(st), f"{symbol}: {what}")
            rounded = self._rules[symbol].round_stop(Decimal(new_stop), st.side)
            current = old.stop_price
            if rounded == current:
                return StopMoveResult(symbol, "unchanged", current, rounded, None, None,
                                      self._view(st), f"stop already at {current}")
            looser = rounded < current if st.side == "long" else rounded > current
            if looser:
                return StopMoveResult(
                    symbol, "refused", current, rounded, None, None, self._view(st),
                    f"{rounded} would loosen the {st.side} stop at {current}; a stop only "
                    f"ever tightens")
            placed, canceled = await self._replace_stop(st, rounded, st.qty, kind="trail",
                                                        reason=f"{reason}: {current} -> {rounded}")
            if canceled is not None and canceled.status == "filled":
                return StopMoveResult(symbol, "stopped_out", current, rounded, placed, canceled,
                                      self._view(st),
                                      f"the stop at {current} had already triggered; the "
                                      f"position is closed — sync() reports the fills")
            if not placed.is_open:
                outcome = "rejected" if placed.status == "rejected" else "failed"
                return StopMoveResult(symbol, outcome, current, rounded, placed, None,
                                      self._view(st),
                                      f"new stop refused ({_why(placed, 'stop')}); the stop "
                                      f"at {current} stays")
            return StopMoveResult(symbol, "moved", current, rounded, placed, canceled,
                                  self._view(st), "")

    async def _replace_stop(self, st: _State, price: Decimal, qty: Decimal, *, kind: str,
                            reason: str) -> tuple[OrderResult, OrderResult | None]:
        """Place a new stop, then cancel the old; the state keeps whichever is live."""
        st.stop_gen = max(st.stop_gen, 1) + 1
        leg = f"{kind}-{st.stop_gen}"
        purpose = "trail" if kind == "trail" else "stop"
        placed = await self._place_stop(st, price, qty, leg=leg, purpose=purpose, reason=reason)
        if not placed.is_open:
            return placed, None
        old, st.stop = st.stop, placed
        canceled = None
        if old is not None and old.exchange_order_id != placed.exchange_order_id:
            canceled = await self.gateway.cancel(old, st.market, reason=f"replaced by {leg}")
            self._remember(canceled)
            if canceled.status == "filled":
                # It triggered before we could cancel it: the next sync reports the close
                # (and cancels the new stop, left without a position).
                st.unreported.append(canceled)
        return placed, canceled

    # -- exits ------------------------------------------------------------------------------
    async def close_position(self, symbol: str, *,
                             purpose: Literal["exit", "reverse", "drain"] = "exit",
                             signal_id: str | None = None) -> CloseResult:
        """Close the whole position with a reduce-only MARKET (leg ``exit``/``reverse``/
        ``drain``), then cancel the bot's orders on ``symbol``.

        The close goes first and the stop and tiers are cancelled only after it filled, so
        a refused close leaves the position protected. ``signal_id`` (the exit signal)
        makes the client order id deterministic; without one a fresh id is used.
        """
        st = self._state(symbol)
        if purpose not in ("exit", "reverse", "drain"):
            raise ExecutionInputError(f"purpose must be exit, reverse or drain, got {purpose!r}")
        async with st.lock:
            return await self._close_locked(st, purpose, signal_id)

    async def _close_locked(self, st: _State, purpose: str, signal_id: str | None) -> CloseResult:
        exposure = await self._read_exposure(st, prefer=st.side)
        if exposure.side == "flat":
            canceled = await self._cancel_mine(st, reason="position already flat")
            fills = await self._fills(st)
            st.flatten()
            return CloseResult(st.symbol, "flat", None, canceled, fills, self._view(st),
                               "no position to close")
        self._apply_exposure(st, exposure)
        tag = self.ids.tag(st.symbol, signal_id or f"{purpose}-{time.time_ns()}")
        close = await self._market_close(st, exposure.qty, leg=purpose, purpose=purpose,
                                         reason=purpose, tag=tag, signal_id=signal_id)
        if not close.is_filled:
            fills = await self._fills(st)
            outcome = "rejected" if close.status == "rejected" else "failed"
            return CloseResult(st.symbol, outcome, close, (), fills, self._view(st),
                               f"close {_why(close, 'close')}; stop and take-profits kept")
        canceled = await self._cancel_mine(st, reason=f"position closed ({purpose})")
        fills = await self._fills(st)
        close = _with_fills(close, fills)
        after = await self._read_exposure(st, prefer=st.side)
        if after.side == "flat":
            st.flatten()
        else:
            self._apply_exposure(st, after)
        return CloseResult(st.symbol, "closed", close, canceled, fills, self._view(st), "")

    async def drain(self, symbols: Iterable[str] | None = None, *,
                    rounds: int = 3) -> DrainResult:
        """Close every position and cancel every open order (the bot's and any other) on
        ``symbols`` (default all the bot's), then check; repeat up to ``rounds`` times until
        the exchange reports each symbol flat with no open order (fleet command ``drain``)."""
        targets = tuple(self.symbols if symbols is None else symbols)
        for s in targets:
            self._state(s, field="symbols")
        closes: list[CloseResult] = []
        canceled: list[OrderResult] = []
        fills: list[Fill] = []
        remaining = targets
        for _ in range(max(1, rounds)):
            left: list[str] = []
            for symbol in remaining:
                st = self._states[symbol]
                close = await self.close_position(symbol, purpose="drain")
                closes.append(close)
                fills.extend(close.fills)
                async with st.lock:
                    if close.outcome in ("closed", "flat"):
                        # Only once flat: a position whose close failed keeps its stop.
                        canceled.extend(await self._cancel_all(st))
                    exposure = await self._read_exposure(st, prefer=st.side)
                    plain, algo = await self.gateway.open_orders(st.symbol, st.market)
                    if exposure.side == "flat":
                        st.flatten()
                    if exposure.side != "flat" or plain or algo:
                        left.append(symbol)
            remaining = tuple(left)
            if not remaining:
                break
        return DrainResult(flat=not remaining, closes=tuple(closes), canceled=tuple(canceled),
                           fills=tuple(fills), positions=self.positions(), remaining=remaining,
                           reason="" if not remaining else
                           f"still open after {rounds} round(s): {', '.join(remaining)}")

    # -- reconciliation ---------------------------------------------------------------------
    async def sync(self, symbol: str) -> SyncResult:
        """Reconcile the view of ``symbol`` with the exchange; cheap enough for every bar
        (two requests when nothing changed: ``positionRisk`` and ``openAlgoOrders``).

        Finds stops and tiers that triggered (or were cancelled / expired) since the last
        look, the new fills (``userTrades`` from the last seen trade id), and then keeps
        the invariant: flat → the bot's leftover orders are cancelled; open → the stop
        covers exactly the position (resized, place-then-cancel, after a tier filled); a
        position without a stop gets one at its last stop price, or at mark ∓ the start
        fallback distance, and is closed at market if that is refused.
        """
        st = self._state(symbol)
        async with st.lock:
            return await self._sync_locked(st)

    async def _sync_locked(self, st: _State) -> SyncResult:
        was, was_qty = st.side, st.qty
        exposure = await self._read_exposure(st, prefer=st.side)
        open_algo = await self.gateway.open_conditional(st.symbol, st.market)
        open_ids = {str(o.get("algoId")) for o in open_algo}
        orders: list[OrderResult] = []
        stop_filled = tp_filled = False
        lost_stop: Decimal | None = None
        for earlier in st.unreported:
            orders.append(earlier)
            stop_filled = stop_filled or (earlier.purpose in ("stop", "trail")
                                          and earlier.status == "filled")
        st.unreported = []
        # Resting orders that are gone: learn what became of them.
        for leg, tracked in [("stop", st.stop)] + list(st.tps.items()):
            if tracked is None or tracked.exchange_order_id in open_ids:
                continue
            try:
                final = await self.gateway.resolve(tracked, st.market)
            except ExecutionError:
                continue  # try again next sync
            self._remember(final)
            orders.append(final)
            if leg == "stop":
                st.stop = None
                stop_filled = final.status == "filled"
                lost_stop = tracked.stop_price
            else:
                st.tps.pop(leg, None)
                tp_filled = tp_filled or final.status == "filled"
        fills = await self._fills(st) if (orders or exposure.qty != was_qty
                                          or exposure.side != was) else []
        orders = [_with_fills(o, fills) for o in orders]
        cause = "none"
        reason = ""
        if exposure.side == "flat":
            if was != "flat":
                cause = ("stop_filled" if stop_filled else
                         "take_profit_filled" if tp_filled else "closed_outside")
            if was != "flat" or any(self.ids.owns(o.get("clientAlgoId")) for o in open_algo):
                orders.extend(await self._cancel_mine(st, reason="position flat"))
            st.flatten()
        else:
            if was == "flat" or exposure.side != was:
                cause = "opened_outside"
                if was != "flat":  # flipped outside: the old side's orders are stale
                    orders.extend(await self._cancel_mine(st, reason="position flipped"))
                st.flatten()
                st.tag = self.ids.tag(st.symbol, f"adopted-{exposure.time_ms}-{exposure.qty}")
                st.initial_qty = exposure.qty
            self._apply_exposure(st, exposure)
            if st.stop is None:
                placed, reason = await self._protect(st, lost_stop if cause == "none" else None)
                orders.extend(placed)
                cause = cause if cause != "none" else "protected"
                if st.side == "flat":
                    fills = fills + await self._fills(st)
            elif st.stop.qty != st.qty:
                placed, canceled = await self._replace_stop(
                    st, st.stop.stop_price, st.qty, kind="stop",
                    reason=f"resize stop to the remaining {st.qty}")
                orders.extend(o for o in (placed, canceled) if o is not None)
                if cause == "none":
                    cause = "take_profit_filled" if tp_filled else "changed_outside"
                if not placed.is_open:
                    reason = f"stop resize refused ({_why(placed, 'stop')}); old stop kept"
            elif tp_filled and cause == "none":
                cause = "take_profit_filled"
        realized = sum((f.realized_pnl for f in fills), _ZERO)
        fees = sum((f.fee for f in fills), _ZERO)
        return SyncResult(st.symbol, self._view(st), tuple(fills), tuple(orders),
                          closed=was != "flat" and st.side == "flat", cause=cause,
                          realized_pnl=realized, fees=fees, reason=reason)

    async def rehydrate(self, stop_fallback: StopFallback) -> RehydrateResult:
        """Rebuild the view from the exchange: positions, the bot's open orders (plain and
        conditional: ``fetch_open_orders(symbol, params={"trigger": True})``), and the trade
        cursor (fills before this call are not reported again).

        * a position with the bot's stop: adopted (the newest stop generation; older extra
          stops of an interrupted trail are cancelled), its tiers adopted too;
        * a position without one: a stop at mark ∓ ``stop_fallback(symbol, mark)`` before
          anything else; if that is refused, the position is closed at market;
        * flat: the bot's leftover orders are cancelled.

        Other clients' orders are left alone. ``stop_fallback`` is kept for :meth:`sync`.
        """
        if not self._states:
            raise ExecutionInputError("call start() before rehydrate(): markets not loaded")
        self._fallback = stop_fallback
        positions: list[PositionView] = []
        orders: list[OrderResult] = []
        adopted: list[OrderResult] = []
        notes: list[str] = []
        for symbol in self.symbols:
            st = self._states[symbol]
            async with st.lock:
                st.flatten()
                st.cursor = await self.gateway.last_trade_id(st.symbol, st.market)
                exposure = await self._read_exposure(st, prefer="flat")
                plain, algo = await self.gateway.open_orders(st.symbol, st.market)
                mine = [self._adopt(raw, st) for raw in plain + algo
                        if self.ids.owns(raw.get("clientOrderId") or raw.get("clientAlgoId"))]
                if exposure.side == "flat":
                    for order in mine:
                        canceled = await self.gateway.cancel(order, st.market,
                                                             reason="stale: no position")
                        self._remember(canceled)
                        orders.append(canceled)
                    positions.append(self._view(st))
                    continue
                self._apply_exposure(st, exposure)
                closing = st.closing_side
                stops = sorted((o for o in mine if o.type == "stop_market" and o.side == closing
                                and _generation(self.ids, o) is not None),
                               key=lambda o: _generation(self.ids, o) or 0)
                tps = [o for o in mine if o.type == "take_profit_market" and o.side == closing]
                others = [o for o in mine if o not in stops and o not in tps]
                if stops:
                    st.stop = stops[-1]
                    st.stop_gen = max(_generation(self.ids, o) or 1 for o in stops)
                    st.tag = self.ids.parse(st.stop.client_order_id).tag
                    st.initial_stop = st.stop.stop_price
                    adopted.append(st.stop)
                    for extra in stops[:-1]:
                        c = await self.gateway.cancel(extra, st.market, reason="older stop")
                        self._remember(c)
                        orders.append(c)
                for tp in tps:
                    st.tps[tp.leg] = tp
                    adopted.append(tp)
                    st.tag = st.tag or self.ids.parse(tp.client_order_id).tag
                for o in others:
                    c = await self.gateway.cancel(o, st.market, reason="stale order")
                    self._remember(c)
                    orders.append(c)
                st.tag = st.tag or self.ids.tag(st.symbol, f"adopted-{exposure.time_ms}-"
                                                           f"{exposure.qty}")
                st.initial_qty = st.qty
                if st.stop is None:
                    placed, note = await self._protect(st, None)
                    orders.extend(placed)
                    if note:
                        notes.append(f"{symbol}: {note}")
                elif st.stop.qty != st.qty:  # e.g. a tier filled while the bot was down
                    placed, canceled = await self._replace_stop(
                        st, st.stop.stop_price, st.qty, kind="stop",
                        reason=f"resize stop to the position {st.qty}")
                    orders.extend(o for o in (placed, canceled) if o is not None)
                positions.append(self._view(st))
        return RehydrateResult(tuple(positions), tuple(orders), tuple(adopted), "; ".join(notes))

    # -- protection -------------------------------------------------------------------------
    async def _protect(self, st: _State, price: Decimal | None) -> tuple[list[OrderResult], str]:
        """Give the open position in ``st`` a stop (at ``price``, else mark ∓ fallback);
        close it at market if the stop is refused. Returns the orders and a note."""
        rules = self._rules[st.symbol]
        mark = st.mark_price or st.entry_price
        if price is None:
            if self._fallback is None or mark is None:
                raise ExecutionInputError("no stop fallback: call start(stop_fallback) first")
            distance = Decimal(self._fallback(st.symbol, mark))
            if not distance > 0:
                raise ExecutionInputError(f"stop_fallback returned {distance} for {st.symbol}; "
                                          f"it must be a distance in USDT > 0")
            raw = mark - distance if st.side == "long" else mark + distance
            price = rules.round_stop(raw if raw > 0 else rules.tick_size, st.side)
        st.stop_gen = max(st.stop_gen, 1) + 1
        stop = await self._place_stop(st, price, st.qty, leg=f"stop-{st.stop_gen}",
                                      purpose="stop", reason="position without a stop")
        if stop.is_open:
            st.initial_stop = st.initial_stop or price
            return [stop], ""
        close = await self._market_close(st, st.qty, leg="stopfail", purpose="exit",
                                         reason=f"no stop possible: {_why(stop, 'stop')}")
        if close.is_filled:
            await self._cancel_mine(st, reason="position closed")
            st.flatten()
            return [stop, close], f"stop at {price} refused ({_why(stop, 'stop')}); closed at market"
        return [stop, close], (f"stop refused ({_why(stop, 'stop')}) and close failed "
                               f"({_why(close, 'close')}): POSITION WITHOUT STOP")

    async def _place_stop(self, st: _State, price: Decimal, qty: Decimal, *, leg: str,
                          purpose: str, reason: str) -> OrderResult:
        stop = await self.gateway.place(self._intent(
            st, leg=leg, type="stop_market", side=st.closing_side, qty=qty, stop_price=price,
            signal_id=st.signal_id, reason=reason, purpose=purpose))
        self._remember(stop)
        if stop.is_open and leg == "stop":
            st.stop = stop
        elif stop.is_open and st.stop is None:
            st.stop = stop
        return stop

    async def _market_close(self, st: _State, qty: Decimal, *, leg: str, purpose: str,
                            reason: str, tag: str | None = None,
                            signal_id: str | None = None) -> OrderResult:
        order = await self.gateway.place(self._intent(
            st, tag=tag, leg=leg, type="market", side=st.closing_side, qty=qty,
            signal_id=signal_id or st.signal_id, reason=reason, purpose=purpose))
        self._remember(order)
        if order.is_open:
            order = await self._await_fill(st, order)
            self._remember(order)
        return order

    async def _cancel_mine(self, st: _State, *, reason: str) -> tuple[OrderResult, ...]:
        """Cancel every open order of this bot on the symbol (plain and conditional)."""
        plain, open_algo = await self.gateway.open_orders(st.symbol, st.market)
        out = []
        for raw in plain + open_algo:
            if not self.ids.owns(raw.get("clientOrderId") or raw.get("clientAlgoId")):
                continue
            order = self._adopt(raw, st)
            canceled = await self.gateway.cancel(order, st.market, reason=reason)
            self._remember(canceled)
            out.append(canceled)
        st.stop, st.tps = None, {}
        return tuple(out)

    async def _cancel_all(self, st: _State) -> list[OrderResult]:
        plain, algo = await self.gateway.open_orders(st.symbol, st.market)
        out = []
        for raw in plain + algo:
            order = self._adopt(raw, st)
            canceled = await self.gateway.cancel(order, st.market, reason="drain")
            self._remember(canceled)
            out.append(canceled)
        st.stop, st.tps = None, {}
        return out

    # -- helpers ----------------------------------------------------------------------------
    def _state(self, symbol: str, field: str = "symbol") -> _State:
        try:
            return self._states[symbol]
        except KeyError:
            if symbol in self.symbols:
                raise ExecutionInputError("call start() first: markets are not loaded") from None
            raise ExecutionInputError(f"{field} {symbol!r} is not one of the bot's symbols "
                                      f"{list(self.symbols)}") from None

    def _intent(self, st: _State, *, leg: str, type: str, side: str, qty: Decimal,
                stop_price: Decimal | None = None, signal_id: str | None = None,
                reason: str = "", purpose: str | None = None, tag: str | None = None,
                closing: bool = True, held: str | None = None) -> OrderIntent:
        held = held or st.side
        hedge_side = ("LONG" if held == "long" else "SHORT") if self._hedged else None
        tag = tag or st.tag
        assert tag is not None, "position tag missing"
        return OrderIntent(
            symbol=st.symbol, market=st.market, purpose=purpose or purpose_of_leg(leg), leg=leg,
            client_order_id=self.ids.make(tag, leg), side=side, type=type, qty=qty,
            stop_price=stop_price, reduce_only=closing, position_side=hedge_side,
            working_type=self.execution.working_type.value if type != "market" else None,
            signal_id=signal_id, reason=reason)

    def _adopt(self, raw: dict[str, Any], st: _State) -> OrderResult:
        """An OrderResult for a raw open order found on the exchange."""
        cid = raw.get("clientOrderId") or raw.get("clientAlgoId") or ""
        parsed = self.ids.parse(cid)
        leg = parsed.leg if parsed else ""
        order = OrderGateway.parse(raw, None)
        order = replace(order, symbol=st.symbol, leg=leg,
                        purpose=purpose_of_leg(leg) if parsed else "exit",
                        reason="found on the exchange")
        self._remember(order)
        return order

    def _remember(self, order: OrderResult) -> None:
        if order.exchange_order_id:
            self._known[(order.symbol, order.exchange_order_id)] = order

    async def _read_exposure(self, st: _State, prefer: str) -> _Exposure:
        rows = await self.gateway.position_rows(st.symbol, st.market)
        exposures = []
        for row in rows:
            amt = Decimal(str(row.get("positionAmt", "0")))
            ps = str(row.get("positionSide", "BOTH")).upper()
            side = ("long" if amt > 0 else "short") if ps == "BOTH" else ps.lower()
            exposures.append(_Exposure(
                side, abs(amt), _dec(row.get("entryPrice")), _dec(row.get("markPrice")),
                _dec(row.get("unRealizedProfit")) or _ZERO,
                int(row.get("updateTime") or 0) or None))
        if not exposures:
            return _FLAT
        for e in exposures:
            if e.side == prefer:
                return e
        return exposures[0]

    def _apply_exposure(self, st: _State, e: _Exposure) -> None:
        st.side, st.qty = e.side, e.qty
        st.entry_price = e.entry_price or st.entry_price
        st.mark_price, st.unrealized_pnl, st.time_ms = e.mark_price, e.unrealized_pnl, e.time_ms

    async def _fills(self, st: _State) -> list[Fill]:
        """New trades on the symbol since the cursor, each reported once. When the trades
        cannot be read the cursor stays put and a later call reports them."""
        try:
            raws = await self.gateway.trades_from(st.symbol, st.market, st.cursor + 1)
        except ExecutionError as exc:
            log.warning("trades not read; reported by a later call",
                        extra={"symbol": st.symbol, "error": str(exc)})
            return []
        out = []
        for raw in raws:
            tid = int(raw["id"])
            if tid <= st.cursor:
                continue
            st.cursor = tid
            fill = OrderGateway.parse_trade(raw, st.symbol)
            known = self._known.get((st.symbol, fill.exchange_order_id))
            if known is not None:
                fill = replace(fill, client_order_id=known.client_order_id,
                               purpose=known.purpose, leg=known.leg, signal_id=known.signal_id)
            out.append(fill)
        return out

    def _view(self, st: _State) -> PositionView:
        stop = st.stop
        return PositionView(
            symbol=st.symbol, side=st.side, qty=st.qty, entry_price=st.entry_price,
            mark_price=st.mark_price, unrealized_pnl=st.unrealized_pnl,
            stop_price=stop.stop_price if stop else None, stop_qty=stop.qty if stop else None,
            stop_order_id=stop.exchange_order_id if stop else None,
            stop_client_order_id=stop.client_order_id if stop else None,
            take_profits=tuple(TakeProfitView(leg, tp.client_order_id, tp.exchange_order_id or "",
                                              tp.stop_price or _ZERO, tp.qty)
                               for leg, tp in sorted(st.tps.items())),
            initial_qty=st.initial_qty, initial_stop=st.initial_stop, signal_id=st.signal_id,
            time_ms=st.time_ms)

    def _entry_result(self, st: _State, outcome: str, entry: OrderResult | None, *,
                      stop: OrderResult | None = None, tps: tuple[OrderResult, ...] = (),
                      close: OrderResult | None = None, fills: Iterable[Fill] = (),
                      slippage: Decimal | None = None, reason: str = "") -> EntryResult:
        fills = tuple(fills)
        return EntryResult(
            symbol=st.symbol, outcome=outcome,  # type: ignore[arg-type]
            entry=_with_fills(entry, fills) if entry else None,
            stop=stop, take_profits=tps,
            close=_with_fills(close, fills) if close else None, fills=fills,
            position=self._view(st), slippage_bps=slippage, reason=reason)


def _generation(ids: ClientIds, order: OrderResult) -> int | None:
    parsed = ids.parse(order.client_order_id)
    return parsed.stop_generation if parsed else None


def _floor(qty: Decimal, step: Decimal) -> Decimal:
    return (qty / step).to_integral_value(rounding=ROUND_DOWN) * step


def _dec(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    d = Decimal(str(value))
    return d if d != 0 else None


def _why(order: OrderResult, what: str) -> str:
    if order.reject_code is not None or order.reject_message:
        return f"{what} {order.status}: {order.reject_code} {order.reject_message}".strip()
    return f"{what} {order.status}"


def _with_fills(order: OrderResult, fills: Iterable[Fill]) -> OrderResult:
    """``order`` with fee and realized PnL summed from its fills (when any)."""
    mine = [f for f in fills if f.exchange_order_id == order.exchange_order_id]
    if not mine:
        return order
    return replace(order, fee=sum((f.fee for f in mine), _ZERO), fee_asset=mine[0].fee_asset,
                   realized_pnl=sum((f.realized_pnl for f in mine), _ZERO))
