"""The Strategy base class and the base of every strategy's params model."""

from __future__ import annotations

import abc
import math
import numbers
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from .types import Action, Bar, Side, Signal

# Exchange symbol ids as the bus subjects and the TradingBot spec accept them (upper-case,
# "_" for delivery contracts such as BTCUSDT_250926); kept local so strategies import no I/O.
_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9_]{1,31}$")
_SIDE_CODE = {Side.FLAT: 0, Side.LONG: 1, Side.SHORT: -1}
_CODE_SIDE = {0: Side.FLAT, 1: Side.LONG, -1: Side.SHORT}


class StrategyParams(BaseModel):
    """Base of the strategies' params: frozen, and an unknown name is refused (naming it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Strategy(abc.ABC):
    """A pure, deterministic state machine: closed bars (and funding, mark) in, signals out.

    Subclasses set ``name`` and ``Params`` and implement :meth:`on_bar`, :meth:`reset`
    (build fresh indicators, then call ``super().reset()``) and ``warmup_bars``; they may
    override :meth:`_trail_distance` to trail their stop and :meth:`_indicators` to report
    indicator values in :meth:`state`.

    Position: the strategy tracks flat/long/short only to know which signal to emit. It
    assumes its own signals are executed (an entry makes it long/short, an exit flat); the
    worker tells it the truth with :meth:`set_position` / :meth:`on_fill` after rehydration,
    a stop fill, or a refused order.

    Bars: ``on_bar`` ignores (returns None for) a bar whose ``close_time`` is not after the
    last one seen, so a redelivered or replayed kline never updates the indicators twice.
    """

    name: ClassVar[str] = ""
    Params: ClassVar[type[StrategyParams]] = StrategyParams

    __slots__ = ("symbol", "params", "_pos", "_entry_price", "_bars", "_last_time",
                 "_funding_rate", "_funding_time", "_mark_price", "_mark_time")

    def __init__(self, symbol: str, params: StrategyParams | Mapping[str, Any] | None = None):
        """Build the strategy for one symbol.

        ``params`` is an instance of ``Params``, a mapping validated into one, or None for
        the defaults. Raises ValueError for a bad symbol and ``pydantic.ValidationError``
        (naming the field) for bad params.
        """
        if not isinstance(symbol, str) or not _SYMBOL.match(symbol):
            raise ValueError(
                f"symbol must be an upper-case exchange symbol id like BTCUSDT, got {symbol!r}"
            )
        if params is None:
            params = self.Params()
        elif isinstance(params, Mapping):
            params = self.Params.model_validate(params)
        elif not isinstance(params, self.Params):
            raise TypeError(
                f"params for {self.name} must be {self.Params.__name__} or a mapping, "
                f"got {type(params).__name__}"
            )
        self.symbol = symbol
        self.params = params
        self.reset()

    # ----------------------------------------------------------------------- lifecycle
    def reset(self) -> None:
        """Forget all bars, funding, mark and position: the freshly constructed state."""
        self._pos = 0
        self._entry_price: float | None = None
        self._bars = 0
        self._last_time = -1
        self._funding_rate: float | None = None
        self._funding_time: int | None = None
        self._mark_price: float | None = None
        self._mark_time: int | None = None

    @property
    @abc.abstractmethod
    def warmup_bars(self) -> int:
        """Bars to feed before a signal is possible (the worker replays this much history)."""

    @property
    def ready(self) -> bool:
        """True once ``warmup_bars`` bars were fed: the next bar can fire a signal."""
        return self._bars >= self.warmup_bars

    @abc.abstractmethod
    def on_bar(self, bar: Bar) -> Signal | None:
        """Feed one closed bar; return a Signal, or None when nothing happens."""

    def on_funding(self, rate: float, funding_time_ms: int) -> None:
        """Record a funding rate (fraction per funding interval, Binance ``fundingRate``).

        ``funding_time_ms`` is the event's funding time (UTC ms). A time older than the
        latest is ignored; the same time replaces the rate (a revised estimate). Raises
        ValueError for a non-finite rate or a non-integer time, changing nothing.
        """
        self._check_funding(rate, funding_time_ms)
        funding_time_ms = int(funding_time_ms)
        if self._funding_time is not None and funding_time_ms < self._funding_time:
            return
        self._funding_rate = float(rate)
        self._funding_time = funding_time_ms

    def on_mark(self, price: float, time_ms: int) -> None:
        """Record the latest mark price (USDT) at ``time_ms`` (UTC ms); older ones are ignored.

        Raises ValueError for a non-finite or non-positive price, changing nothing.
        """
        if isinstance(price, bool) or not isinstance(price, numbers.Real) \
                or not math.isfinite(price) or price <= 0:
            raise ValueError(f"mark price must be a finite number > 0 USDT, got {price!r}")
        if isinstance(time_ms, bool) or not isinstance(time_ms, numbers.Integral):
            raise ValueError(f"mark time_ms must be integer UTC milliseconds, got {time_ms!r}")
        time_ms = int(time_ms)
        if self._mark_time is not None and time_ms < self._mark_time:
            return
        self._mark_price = float(price)
        self._mark_time = time_ms

    # ----------------------------------------------------------------------- position
    @property
    def position(self) -> Side:
        """The position side the strategy believes is open."""
        return _CODE_SIDE[self._pos]

    def set_position(self, side: Side | str, entry_price: float | None = None) -> None:
        """Tell the strategy the true exchange position (rehydration, stop fill, refusal).

        ``entry_price`` (USDT) is kept for :meth:`state`. Raises ValueError for an unknown
        side or a bad price, changing nothing.
        """
        s = Side.parse(side)
        if entry_price is not None and (
            isinstance(entry_price, bool) or not isinstance(entry_price, numbers.Real)
            or not math.isfinite(entry_price) or entry_price <= 0
        ):
            raise ValueError(f"entry_price must be a finite price > 0 USDT, got {entry_price!r}")
        self._pos = _SIDE_CODE[s]
        self._entry_price = None if s is Side.FLAT else (
            float(entry_price) if entry_price is not None else None)

    def on_fill(self, side: Side | str, price: float) -> None:
        """A fill left the position on ``side`` (flat, long, short) at fill price ``price``."""
        self.set_position(side, None if Side.parse(side) is Side.FLAT else price)

    # ----------------------------------------------------------------------- trailing
    def trail_stop(self, side: Side | str, current_stop: float | None, bar: Bar) -> float | None:
        """A tighter protective stop after ``bar``, or None to leave the stop where it is.

        The candidate is the bar's close ∓ the strategy's trail distance (e.g. ATR ×
        ``atr_trail_mult``); it is returned only when it is tighter than ``current_stop``
        (higher for a long, lower for a short), so the stop never loosens. With
        ``current_stop`` None (no stop yet) the candidate is returned. Call it after
        ``on_bar(bar)`` so the distance uses that bar's volatility.
        """
        return self.trail_stop_at(side, current_stop, bar.close)

    def trail_stop_at(self, side: Side | str, current_stop: float | None,
                      price: float) -> float | None:
        """:meth:`trail_stop` from any price (USDT), e.g. a mark price between bars.

        Raises ValueError when ``side`` is flat or unknown.
        """
        s = Side.parse(side)
        if s is Side.FLAT:
            raise ValueError("side must be long or short to trail a stop, got flat")
        dist = self._trail_distance(price)
        if dist is None:
            return None
        if s is Side.LONG:
            candidate = price - dist
            if current_stop is None or candidate > current_stop:
                return candidate
            return None
        candidate = price + dist
        if current_stop is None or candidate < current_stop:
            return candidate
        return None

    def _trail_distance(self, price: float) -> float | None:
        """Trailing offset in USDT at ``price``; None when the strategy does not trail."""
        return None

    # ----------------------------------------------------------------------- state
    def state(self) -> dict[str, Any]:
        """A JSON-ready snapshot for heartbeats and debugging.

        Rehydration does not restore from it: the worker replays ``warmup_bars`` of history
        through ``on_bar`` (deterministic, so the indicators come out identical) and then
        calls :meth:`set_position` with the exchange's position.
        """
        return {
            "strategy": self.name,
            "symbol": self.symbol,
            "params": self.params.model_dump(mode="json"),
            "position": self.position.value,
            "entry_price": self._entry_price,
            "bars": self._bars,
            "ready": self.ready,
            "last_close_time": self._last_time if self._last_time >= 0 else None,
            "funding_rate": self._funding_rate,
            "funding_time": self._funding_time,
            "mark_price": self._mark_price,
            "mark_time": self._mark_time,
            "indicators": self._indicators(),
        }

    def _indicators(self) -> dict[str, Any]:
        return {}

    # ----------------------------------------------------------------------- helpers
    @staticmethod
    def _check_funding(rate: float, funding_time_ms: int) -> None:
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not math.isfinite(rate):
            raise ValueError(f"funding rate must be a finite fraction, got {rate!r}")
        if isinstance(funding_time_ms, bool) or not isinstance(funding_time_ms, numbers.Integral) \
                or funding_time_ms < 0:
            raise ValueError(
                f"funding_time_ms must be integer UTC milliseconds, got {funding_time_ms!r}")

    def _enter(self, long: bool, bar: Bar, stop: float, trail: float | None,
               reason: dict[str, Any], take_profit_r: tuple[float, ...] = ()) -> Signal:
        """An entry signal; the strategy now assumes the position is open."""
        self._pos = 1 if long else -1
        self._entry_price = bar.close
        return Signal(self.symbol, Action.ENTER_LONG if long else Action.ENTER_SHORT,
                      bar.close_time, bar.close, stop, trail, take_profit_r, self.name, reason)

    def _exit(self, bar: Bar, reason: dict[str, Any]) -> Signal:
        """An exit signal; the strategy now assumes it is flat."""
        self._pos = 0
        self._entry_price = None
        return Signal(self.symbol, Action.EXIT, bar.close_time, bar.close, None, None, (),
                      self.name, reason)
