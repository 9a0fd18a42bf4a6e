"""``ema_cross``: fast/slow EMA crossover with a fixed-percentage stop (seed 001, bots-crypto)."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field, PositiveInt, ValidationInfo, field_validator

from ..indicators import EMA
from .base import Strategy, StrategyParams
from .types import Bar, Signal


class EmaCrossParams(StrategyParams):
    """Parameters of :class:`EmaCross` (seed env ``EMA_FAST``, ``EMA_SLOW``, ``STOP_PCT``,
    ``EMA_ALLOW_SHORTS``; ``ALLOC_USDT`` is sizing, see the TradingBot ``sizing`` spec)."""

    ema_fast: PositiveInt = Field(default=20, le=10_000,
                                  description="Fast EMA period, bars.")
    ema_slow: PositiveInt = Field(default=50, le=10_000, validate_default=True,
                                  description="Slow EMA period, bars; must exceed ema_fast.")
    allow_shorts: bool = Field(
        default=False,
        validation_alias=AliasChoices("allow_shorts", "ema_allow_shorts"),
        description="Open shorts on a cross down (seed EMA_ALLOW_SHORTS); when false a cross "
        "down only exits a long.",
    )
    stop_pct: float = Field(
        default=0.01, gt=0, lt=1,
        description="Protective stop distance as a fraction of the entry price "
        "(0.01 = 1 %), placed as a reduce-only STOP_MARKET.",
    )

    @field_validator("ema_slow")
    @classmethod
    def _slow_is_slower(cls, v: int, info: ValidationInfo) -> int:
        fast = info.data.get("ema_fast")
        if fast is not None and v <= fast:
            raise ValueError(f"ema_slow ({v}) must be greater than ema_fast ({fast})")
        return v


class EmaCross(Strategy):
    """EMA crossover.

    Rule: when ``EMA(ema_fast)`` crosses above ``EMA(ema_slow)`` → ``enter_long`` (reversing a
    short); when it crosses below → ``enter_short`` if ``allow_shorts`` (reversing a long),
    else ``exit`` a long. A cross is a change of the sign of ``fast − slow`` (bars where they
    are exactly equal do not change it). Stops: entry × (1 ∓ ``stop_pct``); no trailing.

    EMAs are SMA-seeded as TA-Lib; the first cross can come on bar ``ema_slow + 1``.
    """

    name = "ema_cross"
    Params = EmaCrossParams
    params: EmaCrossParams

    __slots__ = ("_fast", "_slow", "_trend", "_stop_pct", "_shorts")

    def reset(self) -> None:
        p = self.params
        self._fast = EMA(p.ema_fast)
        self._slow = EMA(p.ema_slow)
        self._trend = 0  # sign of fast − slow: 1, −1, 0 before both EMAs exist
        self._stop_pct = p.stop_pct
        self._shorts = p.allow_shorts
        super().reset()

    @property
    def warmup_bars(self) -> int:
        return self.params.ema_slow

    def on_bar(self, bar: Bar) -> Signal | None:
        t = bar.close_time
        if t <= self._last_time:
            return None
        self._last_time = t
        self._bars += 1
        close = bar.close
        # EMA.update's steady-state branch inlined (same operations, same order): this is
        # the backtester's headline path, and two method calls are a third of its cost.
        # The EMA objects keep the state and still do their own SMA seeding.
        f = self._fast
        fast = f.value
        if fast is not None:
            fast += f.alpha * (close - fast)
            f.value = fast
        else:
            fast = f.update(close)
        s = self._slow
        slow = s.value
        if slow is not None:
            slow += s.alpha * (close - slow)
            s.value = slow
        else:
            slow = s.update(close)
            if slow is None:  # the fast EMA is ready first (ema_fast < ema_slow)
                return None
        if fast > slow:
            if self._trend > 0:
                return None
            first = self._trend == 0
            self._trend = 1
            if first or self._pos > 0:
                return None
            return self._enter(True, bar, close * (1.0 - self._stop_pct), None,
                               self._reason("ema_fast crossed above ema_slow", fast, slow))
        if fast < slow:
            if self._trend < 0:
                return None
            first = self._trend == 0
            self._trend = -1
            if first:
                return None
            if self._shorts:
                if self._pos < 0:
                    return None
                return self._enter(False, bar, close * (1.0 + self._stop_pct), None,
                                   self._reason("ema_fast crossed below ema_slow", fast, slow))
            if self._pos > 0:
                return self._exit(bar, self._reason(
                    "ema_fast crossed below ema_slow (shorts not allowed: exit)", fast, slow))
        return None

    def _reason(self, rule: str, fast: float, slow: float) -> dict[str, Any]:
        return {"rule": rule, "ema_fast": fast, "ema_slow": slow,
                "ema_fast_period": self.params.ema_fast, "ema_slow_period": self.params.ema_slow}

    def _indicators(self) -> dict[str, Any]:
        return {"ema_fast": self._fast.value, "ema_slow": self._slow.value,
                "trend": self._trend}
