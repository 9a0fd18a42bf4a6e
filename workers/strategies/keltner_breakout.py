"""``keltner_breakout``: close crossing a Keltner Channel (EMA ± k·ATR), seed 002 "Breakout ATR"."""

from __future__ import annotations

from typing import Any

from pydantic import Field, PositiveFloat, PositiveInt

from ..indicators import KeltnerChannel
from .base import Strategy, StrategyParams
from .types import Bar, Signal


class KeltnerBreakoutParams(StrategyParams):
    """Parameters of :class:`KeltnerBreakout` (seed 002: Keltner EMA n=20, ATR n=14)."""

    ema_period: PositiveInt = Field(default=20, le=10_000,
                                    description="EMA period of the channel's middle line, bars.")
    atr_period: PositiveInt = Field(default=14, le=10_000,
                                    description="Wilder ATR period of the channel width, bars.")
    keltner_mult: PositiveFloat = Field(
        default=2.0, le=100,
        description="Channel half-width in ATRs: upper/lower = EMA ± keltner_mult × ATR.")
    allow_shorts: bool = Field(default=True,
                               description="Enter shorts when the close crosses below the "
                               "lower line; when false that only exits a long.")
    atr_stop_mult: PositiveFloat = Field(
        default=2.0, le=100,
        description="Protective stop distance in ATRs from the entry (seed ATR_STOP_MULT).")
    atr_trail_mult: PositiveFloat | None = Field(
        default=None, le=100,
        description="Trailing stop distance in ATRs from the close (seed ATR_TRAIL_MULT); "
        "null disables trailing.")


class KeltnerBreakout(Strategy):
    """Keltner Channel breakout.

    Rule (seed 002, 5.2): the close crossing *above* the upper line (``close > upper`` on
    this bar, ``close ≤ upper`` on the previous one) → ``enter_long``; crossing *below* the
    lower line → ``enter_short`` when ``allow_shorts``, else ``exit`` of a long. Stop:
    ``close ∓ atr_stop_mult × ATR``; trailing ``atr_trail_mult × ATR`` when set.

    The channel is :class:`~tradefleet.workers.indicators.KeltnerChannel` (TA-Lib-seeded
    EMA and ATR), first defined on bar ``max(ema_period, atr_period + 1)``; a cross needs the
    previous bar's channel too.
    """

    name = "keltner_breakout"
    Params = KeltnerBreakoutParams
    params: KeltnerBreakoutParams

    __slots__ = ("_kc", "_kc_update", "_was_above", "_was_below", "_stop_mult", "_shorts")

    def reset(self) -> None:
        p = self.params
        self._kc = KeltnerChannel(p.ema_period, p.atr_period, p.keltner_mult)
        self._kc_update = self._kc.update
        self._was_above: bool | None = None  # previous close > previous upper; None: no channel
        self._was_below = False
        self._stop_mult = p.atr_stop_mult
        self._shorts = p.allow_shorts
        super().reset()

    @property
    def warmup_bars(self) -> int:
        return self._kc.warmup

    def on_bar(self, bar: Bar) -> Signal | None:
        t = bar.close_time
        if t <= self._last_time:
            return None
        self._last_time = t
        self._bars += 1
        close = bar.close
        if not self._kc_update(bar.high, bar.low, close):
            return None
        kc = self._kc
        above = close > kc.upper
        below = close < kc.lower
        was_above, was_below = self._was_above, self._was_below
        self._was_above, self._was_below = above, below
        if was_above is None:
            return None
        if above and not was_above:
            if self._pos > 0:
                return None
            return self._enter(True, bar, close - self._stop_mult * kc.atr, self._trail(kc.atr),
                               self._reason("close crossed above the upper Keltner line", bar))
        if below and not was_below:
            if self._shorts:
                if self._pos < 0:
                    return None
                return self._enter(False, bar, close + self._stop_mult * kc.atr,
                                   self._trail(kc.atr),
                                   self._reason("close crossed below the lower Keltner line", bar))
            if self._pos > 0:
                return self._exit(bar, self._reason(
                    "close crossed below the lower Keltner line (shorts not allowed: exit)", bar))
        return None

    def _trail(self, atr: float) -> float | None:
        m = self.params.atr_trail_mult
        return None if m is None else m * atr

    def _trail_distance(self, price: float) -> float | None:
        atr = self._kc.atr
        return None if atr is None else self._trail(atr)

    def _reason(self, rule: str, bar: Bar) -> dict[str, Any]:
        kc = self._kc
        return {"rule": rule, "close": bar.close, "upper": kc.upper, "middle": kc.middle,
                "lower": kc.lower, "atr": kc.atr, "keltner_mult": self.params.keltner_mult}

    def _indicators(self) -> dict[str, Any]:
        kc = self._kc
        return {"upper": kc.upper, "middle": kc.middle, "lower": kc.lower, "atr": kc.atr}
