"""``donchian_breakout``: Turtle-style Donchian channel breakout with a shorter exit channel."""

from __future__ import annotations

from typing import Any

from pydantic import Field, PositiveFloat, PositiveInt, ValidationInfo, field_validator

from ..indicators import ATR, DonchianChannel
from .base import Strategy, StrategyParams
from .types import Bar, Signal


class DonchianBreakoutParams(StrategyParams):
    """Parameters of :class:`DonchianBreakout` (defaults: Turtle System 1, 20/10 with 2N stop)."""

    entry_period: PositiveInt = Field(
        default=20, le=10_000,
        description="Bars of the entry channel: enter when the close breaks their high/low.")
    exit_period: PositiveInt = Field(
        default=10, le=10_000, validate_default=True,
        description="Bars of the exit channel: exit a long when the close breaks below their "
        "low (a short above their high); at most entry_period.")
    allow_shorts: bool = Field(default=True,
                               description="Enter shorts on a downside breakout.")
    atr_period: PositiveInt = Field(default=20, le=10_000,
                                    description="Wilder ATR period for the stop, bars.")
    atr_stop_mult: PositiveFloat = Field(
        default=2.0, le=100,
        description="Protective stop distance in ATRs from the entry (Turtle 2N).")
    atr_trail_mult: PositiveFloat | None = Field(
        default=None, le=100,
        description="Trailing stop distance in ATRs from the close; null disables trailing.")

    @field_validator("exit_period")
    @classmethod
    def _exit_within_entry(cls, v: int, info: ValidationInfo) -> int:
        entry = info.data.get("entry_period")
        if entry is not None and v > entry:
            raise ValueError(f"exit_period ({v}) must not exceed entry_period ({entry})")
        return v


class DonchianBreakout(Strategy):
    """Donchian channel breakout (Richard Donchian; the Turtle rules, Faith 2007).

    With the channels of the bars *before* this one (current bar excluded):

    - ``close > highest high of entry_period`` → ``enter_long`` (reversing a short);
    - ``close < lowest low of entry_period`` → ``enter_short`` when ``allow_shorts``
      (reversing a long), else ``exit`` of a long;
    - otherwise a long exits on ``close < lowest low of exit_period`` and a short on
      ``close > highest high of exit_period``.

    Stop: ``close ∓ atr_stop_mult × ATR(atr_period)``; trailing ``atr_trail_mult × ATR`` when
    set.
    """

    name = "donchian_breakout"
    Params = DonchianBreakoutParams
    params: DonchianBreakoutParams

    __slots__ = ("_entry", "_exitc", "_atr", "_stop_mult", "_shorts")

    def reset(self) -> None:
        p = self.params
        self._entry = DonchianChannel(p.entry_period)
        self._exitc = DonchianChannel(p.exit_period)
        self._atr = ATR(p.atr_period)
        self._stop_mult = p.atr_stop_mult
        self._shorts = p.allow_shorts
        super().reset()

    @property
    def warmup_bars(self) -> int:
        p = self.params
        return max(p.entry_period, p.atr_period)

    def on_bar(self, bar: Bar) -> Signal | None:
        t = bar.close_time
        if t <= self._last_time:
            return None
        self._last_time = t
        self._bars += 1
        high, low, close = bar.high, bar.low, bar.close
        entry, exitc = self._entry, self._exitc
        e_high, e_low = entry.upper, entry.lower  # prior entry_period bars
        x_high, x_low = exitc.upper, exitc.lower  # prior exit_period bars
        atr = self._atr.update(high, low, close)
        entry.update(high, low)
        exitc.update(high, low)
        if atr is None or e_high is None:
            return None
        pos = self._pos
        if close > e_high:
            if pos > 0:
                return None
            return self._enter(True, bar, close - self._stop_mult * atr, self._trail(atr),
                               self._reason(f"close broke the prior {entry.period}-bar high",
                                            bar, e_high, e_low, x_high, x_low, atr))
        if close < e_low:
            if self._shorts:
                if pos < 0:
                    return None
                return self._enter(False, bar, close + self._stop_mult * atr, self._trail(atr),
                                   self._reason(f"close broke the prior {entry.period}-bar low",
                                                bar, e_high, e_low, x_high, x_low, atr))
            if pos > 0:
                return self._exit(bar, self._reason(
                    f"close broke the prior {entry.period}-bar low (shorts not allowed: exit)",
                    bar, e_high, e_low, x_high, x_low, atr))
            return None
        if pos > 0 and close < x_low:
            return self._exit(bar, self._reason(f"close broke the prior {exitc.period}-bar low",
                                                bar, e_high, e_low, x_high, x_low, atr))
        if pos < 0 and close > x_high:
            return self._exit(bar, self._reason(f"close broke the prior {exitc.period}-bar high",
                                                bar, e_high, e_low, x_high, x_low, atr))
        return None

    def _trail(self, atr: float) -> float | None:
        m = self.params.atr_trail_mult
        return None if m is None else m * atr

    def _trail_distance(self, price: float) -> float | None:
        atr = self._atr.value
        return None if atr is None else self._trail(atr)

    @staticmethod
    def _reason(rule: str, bar: Bar, e_high: float, e_low: float, x_high: float | None,
                x_low: float | None, atr: float) -> dict[str, Any]:
        return {"rule": rule, "close": bar.close, "entry_high": e_high, "entry_low": e_low,
                "exit_high": x_high, "exit_low": x_low, "atr": atr}

    def _indicators(self) -> dict[str, Any]:
        return {"entry_high": self._entry.upper, "entry_low": self._entry.lower,
                "exit_high": self._exitc.upper, "exit_low": self._exitc.lower,
                "atr": self._atr.value}
