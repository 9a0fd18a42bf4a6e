"""``mean_reversion``: RSI + Bollinger Bands fade with exit at the middle band (seed 004)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, PositiveFloat, PositiveInt, ValidationInfo, field_validator

from ..indicators import ATR, RSI, BollingerBands
from .base import Strategy, StrategyParams
from .types import Bar, Signal


class MeanReversionParams(StrategyParams):
    """Parameters of :class:`MeanReversion` (seed 004 safe-list: ``rsi_period``, ``bb_std``)."""

    rsi_period: PositiveInt = Field(default=14, le=10_000,
                                    description="Wilder RSI period, bars.")
    rsi_oversold: float = Field(default=30.0, gt=0, lt=100,
                                description="Longs need RSI below this (0..100).")
    rsi_overbought: float = Field(default=70.0, gt=0, lt=100, validate_default=True,
                                  description="Shorts need RSI above this (0..100); "
                                  "must exceed rsi_oversold.")
    bb_period: PositiveInt = Field(default=20, ge=2, le=10_000,
                                   description="Bollinger Bands SMA period, bars.")
    bb_std: PositiveFloat = Field(default=2.0, le=10,
                                  description="Bollinger band half-width in population "
                                  "standard deviations.")
    allow_shorts: bool = Field(default=False,
                               description="Also fade closes above the upper band.")
    atr_period: PositiveInt = Field(default=14, le=10_000,
                                    description="Wilder ATR period for the stop, bars.")
    atr_stop_mult: PositiveFloat = Field(
        default=2.0, le=100,
        description="Protective stop distance in ATRs from the entry.")

    @field_validator("rsi_overbought")
    @classmethod
    def _overbought_above_oversold(cls, v: float, info: ValidationInfo) -> float:
        low = info.data.get("rsi_oversold")
        if low is not None and v <= low:
            raise ValueError(f"rsi_overbought ({v}) must be greater than rsi_oversold ({low})")
        return v


class MeanReversion(Strategy):
    """RSI + Bollinger mean reversion.

    Flat: ``close < lower band`` and ``RSI < rsi_oversold`` → ``enter_long``;
    ``close > upper band`` and ``RSI > rsi_overbought`` → ``enter_short`` when
    ``allow_shorts``. A long exits when ``close ≥ middle band``, a short when
    ``close ≤ middle band``. Stop: ``close ∓ atr_stop_mult × ATR``. The entry's
    ``take_profit_r`` hint is the distance to the middle band in R (stop distances).
    """

    name = "mean_reversion"
    Params = MeanReversionParams
    params: MeanReversionParams

    __slots__ = ("_bb", "_rsi", "_atr", "_oversold", "_overbought", "_stop_mult", "_shorts")

    def reset(self) -> None:
        p = self.params
        self._bb = BollingerBands(p.bb_period, p.bb_std)
        self._rsi = RSI(p.rsi_period)
        self._atr = ATR(p.atr_period)
        self._oversold = p.rsi_oversold
        self._overbought = p.rsi_overbought
        self._stop_mult = p.atr_stop_mult
        self._shorts = p.allow_shorts
        super().reset()

    @property
    def warmup_bars(self) -> int:
        p = self.params
        return max(p.bb_period - 1, p.rsi_period, p.atr_period)

    def on_bar(self, bar: Bar) -> Signal | None:
        t = bar.close_time
        if t <= self._last_time:
            return None
        self._last_time = t
        self._bars += 1
        close = bar.close
        bb = self._bb
        ready = bb.update(close)
        rsi = self._rsi.update(close)
        atr = self._atr.update(bar.high, bar.low, close)
        if not ready or rsi is None or atr is None:
            return None
        pos = self._pos
        if pos == 0:
            if close < bb.lower and rsi < self._oversold:
                return self._entry(True, bar, rsi, atr,
                                   "close below the lower band with RSI oversold")
            if self._shorts and close > bb.upper and rsi > self._overbought:
                return self._entry(False, bar, rsi, atr,
                                   "close above the upper band with RSI overbought")
            return None
        if pos > 0:
            if close >= bb.middle:
                return self._exit(bar, self._reason("close reached the middle band", bar, rsi, atr))
            return None
        if close <= bb.middle:
            return self._exit(bar, self._reason("close reached the middle band", bar, rsi, atr))
        return None

    def _entry(self, long: bool, bar: Bar, rsi: float, atr: float, rule: str) -> Signal:
        close = bar.close
        dist = self._stop_mult * atr
        target_r = (abs(self._bb.middle - close) / dist,) if dist > 0 else ()
        return self._enter(long, bar, close - dist if long else close + dist, None,
                           self._reason(rule, bar, rsi, atr), target_r)

    def _reason(self, rule: str, bar: Bar, rsi: float, atr: float) -> dict[str, Any]:
        bb = self._bb
        return {"rule": rule, "close": bar.close, "rsi": rsi, "bb_upper": bb.upper,
                "bb_middle": bb.middle, "bb_lower": bb.lower, "atr": atr,
                "rsi_oversold": self._oversold, "rsi_overbought": self._overbought}

    def _indicators(self) -> dict[str, Any]:
        bb = self._bb
        return {"rsi": self._rsi.value, "bb_upper": bb.upper, "bb_middle": bb.middle,
                "bb_lower": bb.lower, "atr": self._atr.value}
