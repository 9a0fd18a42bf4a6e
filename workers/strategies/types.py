"""The records strategies read and write: Bar in, Signal out; Side and Action names."""

from __future__ import annotations

import enum
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class Side(str, enum.Enum):
    """A position's side as the strategy sees it (one-way mode: one side per symbol)."""

    FLAT = "flat"
    LONG = "long"
    SHORT = "short"

    @classmethod
    def parse(cls, value: "Side | str") -> "Side":
        """``Side`` from a member or its value; ValueError naming the allowed values otherwise."""
        try:
            return cls(value)
        except ValueError:
            raise ValueError(
                f"side must be one of flat, long, short; got {value!r}"
            ) from None


class Action(str, enum.Enum):
    """What a signal asks the execution layer to do.

    ``enter_long`` / ``enter_short`` open a position; sent while the opposite position is
    open they mean *reverse*: close it (reduce-only), then open the new side. ``exit``
    closes the whole position with a reduce-only market order.
    """

    ENTER_LONG = "enter_long"
    ENTER_SHORT = "enter_short"
    EXIT = "exit"


class Bar(NamedTuple):
    """One closed kline (Binance ``/fapi/v1/klines`` row, WS ``kline`` with ``x = true``).

    ``open_time``/``close_time`` are UTC ms since the epoch (``close_time = open_time +
    interval − 1``); ``open``/``high``/``low``/``close`` are prices in USDT (floats: the
    strategy layer computes in floats, the exchange boundary rounds with Decimal);
    ``volume`` is in base units (BTC for BTCUSDT).

    The plain constructor does no checking (the backtester builds millions of bars from
    data it already validated); :meth:`checked` and :meth:`from_binance_kline` validate.
    """

    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    close_time: int

    @classmethod
    def checked(cls, open_time: int, open: float, high: float, low: float, close: float,
                volume: float, close_time: int) -> "Bar":
        """A Bar after checking it is a possible kline.

        Raises ValueError naming the field when a price is not finite and > 0, volume is
        negative, ``low``/``high`` do not bound ``open`` and ``close``, or ``close_time`` is
        not after ``open_time``.
        """
        for name, v in (("open", open), ("high", high), ("low", low), ("close", close)):
            ok = isinstance(v, numbers.Real) and not isinstance(v, bool)
            if not (ok and math.isfinite(v) and v > 0):
                raise ValueError(f"bar {name} must be a finite price > 0 USDT, got {v!r}")
        if not (isinstance(volume, numbers.Real) and math.isfinite(volume) and volume >= 0):
            raise ValueError(f"bar volume must be a finite number >= 0, got {volume!r}")
        if low > min(open, close) or high < max(open, close) or low > high:
            raise ValueError(
                f"bar high/low do not bound the prices: open {open}, high {high}, low {low}, "
                f"close {close}"
            )
        for name, v in (("open_time", open_time), ("close_time", close_time)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
                raise ValueError(f"bar {name} must be integer UTC milliseconds, got {v!r}")
        if close_time <= open_time:
            raise ValueError(
                f"bar close_time {close_time} must be after open_time {open_time}"
            )
        return cls(int(open_time), float(open), float(high), float(low), float(close),
                   float(volume), int(close_time))

    @classmethod
    def from_binance_kline(cls, k: Mapping[str, Any]) -> "Bar":
        """A checked Bar from a Binance WS kline object (``{"t","T","o","h","l","c","v",…}``).

        Prices arrive as decimal strings; raises ValueError naming the missing or bad field.
        """
        v: dict[str, Any] = {}
        for key in ("t", "o", "h", "l", "c", "v", "T"):
            if key not in k:
                raise ValueError(f"kline is missing field {key!r}")
            try:
                v[key] = int(k[key]) if key in ("t", "T") else float(k[key])
            except (TypeError, ValueError):
                raise ValueError(f"kline field {key!r} is not a number: {k[key]!r}") from None
        return cls.checked(v["t"], v["o"], v["h"], v["l"], v["c"], v["v"], v["T"])


@dataclass(frozen=True, slots=True)
class Signal:
    """A strategy's decision on one closed bar.

    Fields:
        symbol: exchange symbol id (``BTCUSDT``).
        action: :class:`Action`.
        close_time: close time of the bar that fired it, UTC ms.
        price: reference price, the bar's close (USDT); the execution layer's slippage cap
            is measured against it.
        stop_price: protective stop for an entry (USDT), placed as a reduce-only
            STOP_MARKET; None for ``exit``. Sizing divides risk by ``stop_distance``.
        trail_distance: trailing offset (USDT, e.g. ATR × ``atr_trail_mult``) when the
            strategy trails its stop, else None; see ``Strategy.trail_stop``.
        take_profit_r: take-profit hints as multiples of ``stop_distance`` (R); empty when
            the strategy has no natural target.
        strategy: registry name of the strategy.
        reason: the indicator values and rule that made it fire, for reports.
    """

    symbol: str
    action: Action
    close_time: int
    price: float
    stop_price: float | None = None
    trail_distance: float | None = None
    take_profit_r: tuple[float, ...] = ()
    strategy: str = ""
    reason: Mapping[str, Any] = field(default_factory=dict)

    @property
    def side(self) -> Side:
        """The position side after the signal is executed."""
        if self.action is Action.ENTER_LONG:
            return Side.LONG
        if self.action is Action.ENTER_SHORT:
            return Side.SHORT
        return Side.FLAT

    @property
    def stop_distance(self) -> float | None:
        """``|price − stop_price|`` in USDT (what sizing divides the risk by), or None."""
        return None if self.stop_price is None else abs(self.price - self.stop_price)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (enum values as strings) for ``fleet.*.signal`` and reports."""
        return {
            "symbol": self.symbol,
            "action": self.action.value,
            "close_time": self.close_time,
            "price": self.price,
            "stop_price": self.stop_price,
            "stop_distance": self.stop_distance,
            "trail_distance": self.trail_distance,
            "take_profit_r": list(self.take_profit_r),
            "strategy": self.strategy,
            "reason": dict(self.reason),
        }
