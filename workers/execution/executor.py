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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from tradefleet.api.tradingbot import ExecutionSpec, TradingBotSpec

from .client_ids import ClientIds
from .filters import SymbolRules
from .hooks import ExecutionHooks, NullHooks
from .results import (CloseResult, DrainResult, EntryResult, PositionView, RehydrateResult,
                      StopMoveResult, SyncResult)
from .retry import RetryPolicy

__all__ = ["Executor", "EntryRequest", "StopFallback", "pct_stop_fallback"]

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


class Executor:
    """Orders of one bot on one exchange account (see the module docstring).

    Args:
        exchange: a ccxt ``binanceusdm`` async client (:func:`~.client.build_exchange`);
            the executor closes it in :meth:`close` only if ``owns_exchange``.
        bot_key: ``namespace/name``; the client order ids derive from it.
        symbols: exchange ids the bot trades (``BTCUSDT``); the account's position in each
            belongs to this bot.
        execution: the spec's execution block (slippage cap bps, tp tiers, working type,
            position mode, order timeout ms, max retries).
        leverage: set on every symbol at :meth:`start` (``sizing.leverage``).
        hooks: metrics callbacks (:class:`~.hooks.ExecutionHooks`); default no-ops.
        retry: backoff settings; default from ``execution.maxRetries``.
    """

    def __init__(self, exchange: Any, *, bot_key: str, symbols: Iterable[str],
                 execution: ExecutionSpec, leverage: int = 1,
                 hooks: ExecutionHooks | None = None, retry: RetryPolicy | None = None,
                 owns_exchange: bool = False) -> None:
        self.exchange = exchange
        self.bot_key = bot_key
        self.symbols = tuple(symbols)
        self.execution = execution
        self.leverage = leverage
        self.hooks = hooks or NullHooks()
        self.retry = retry or RetryPolicy(max_retries=execution.max_retries)
        self.ids = ClientIds(bot_key)
        self._owns_exchange = owns_exchange

    @classmethod
    def from_spec(cls, spec: TradingBotSpec, *, bot_key: str, api_key: str, api_secret: str,
                  hooks: ExecutionHooks | None = None,
                  exchange_options: Mapping[str, Any] | None = None) -> "Executor":
        """An executor with its own client built from ``spec`` (venue, mode, endpoints,
        execution, sizing.leverage). Call :meth:`start` next."""
        raise NotImplementedError

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self, stop_fallback: StopFallback) -> RehydrateResult:
        """Load markets and filters, set position mode and leverage, then
        :meth:`rehydrate`. Raises :class:`~.errors.AccountSetupError`."""
        raise NotImplementedError

    async def rehydrate(self, stop_fallback: StopFallback) -> RehydrateResult:
        """Rebuild the view from the exchange: positions, the bot's open orders (plain and
        conditional), the trade cursor. A position without a protective stop gets one at
        mark ∓ ``stop_fallback(symbol, mark)``; if that is refused it is closed at market.
        Extra stops of the bot (an interrupted trail) are cancelled, keeping the newest."""
        raise NotImplementedError

    async def close(self) -> None:
        """Close the ccxt client if this executor built it."""
        raise NotImplementedError

    # -- views ------------------------------------------------------------------------------
    def rules(self, symbol: str) -> SymbolRules:
        """Exchange filters of ``symbol`` (after :meth:`start`). Raises KeyError."""
        raise NotImplementedError

    def position(self, symbol: str) -> PositionView:
        """The executor's current view of ``symbol`` (no request)."""
        raise NotImplementedError

    def positions(self) -> tuple[PositionView, ...]:
        """Views of every symbol of the bot."""
        raise NotImplementedError

    # -- trading ----------------------------------------------------------------------------
    async def open_position(self, request: EntryRequest) -> EntryResult:
        """MARKET entry, then the reduce-only STOP_MARKET for the filled quantity, then the
        take-profit tiers. Slippage beyond ``execution.slippageCapBps`` is rolled back with
        a reduce-only MARKET; a refused stop closes the position at once. Raises
        :class:`~.errors.ExecutionInputError` for bad input (nothing sent)."""
        raise NotImplementedError

    async def move_stop(self, symbol: str, new_stop: Decimal, *, reason: str = "trail") -> StopMoveResult:
        """Trail the stop to ``new_stop`` (USDT) if that tightens it; a looser or equal
        price changes nothing. Places the new stop first, then cancels the old one."""
        raise NotImplementedError

    async def close_position(self, symbol: str, *, purpose: Literal["exit", "reverse", "drain"] = "exit",
                             signal_id: str | None = None) -> CloseResult:
        """Reduce-only MARKET for the whole position, then cancel the bot's orders on
        ``symbol`` (stop and tiers stay until the close filled)."""
        raise NotImplementedError

    async def drain(self, symbols: Iterable[str] | None = None) -> DrainResult:
        """Close every position and cancel every open order on ``symbols`` (default all
        the bot's), repeating until the exchange reports them flat."""
        raise NotImplementedError

    async def sync(self, symbol: str) -> SyncResult:
        """Reconcile the view of ``symbol`` with the exchange: new fills, stops and tiers
        that filled, the stop resized to the remaining quantity, a stop for a position that
        lost its own, leftovers cancelled when flat."""
        raise NotImplementedError
