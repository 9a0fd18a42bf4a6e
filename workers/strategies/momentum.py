"""``momentum``: ATR breakout with ATR stop and trailing, funding filters and no-trade windows.

The Momentum seed (000): entry on a break of the recent range, a reduce-only STOP_MARKET at
``ATR_STOP_MULT × ATR``, a trailing stop at ``ATR_TRAIL_MULT × ATR`` that only tightens, an ATR
floor as a fraction of price (``ATR_MIN_PCT_*``), funding filters (``FUNDING_LONG_MAX``,
``FUNDING_SHORT_MIN`` or percentiles) and no entries within ``NO_TRADE_FUNDING_WINDOW_S`` of
the 00/08/16 UTC funding times.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt

from ..indicators import ATR, DonchianChannel
from .base import Strategy, StrategyParams
from .funding import FundingFilter, in_no_trade_window, ms_to_nearest_funding
from .types import Bar, Signal

Fraction = Annotated[float, Field(gt=0, lt=1)]
SymbolId = Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9_]{1,31}$")]


class MomentumParams(StrategyParams):
    """Parameters of :class:`Momentum` (seed 000 env names, lower-cased)."""

    breakout_period: PositiveInt = Field(
        default=20, le=10_000,
        description="Bars in the prior range the close must break (current bar excluded).")
    breakout_atr_mult: NonNegativeFloat = Field(
        default=0.5, le=100,
        description="How far beyond the prior range the close must be, in ATRs "
        "(0 = any close outside the range).")
    atr_period: PositiveInt = Field(default=14, le=10_000,
                                    description="Wilder ATR period, bars.")
    atr_stop_mult: PositiveFloat = Field(
        default=2.0, le=100,
        description="Protective stop distance in ATRs from the entry (seed ATR_STOP_MULT).")
    atr_trail_mult: PositiveFloat | None = Field(
        default=3.0, le=100,
        description="Trailing stop distance in ATRs from the close (seed ATR_TRAIL_MULT); "
        "null disables trailing.")
    atr_min_pct: Fraction = Field(
        default=0.001,
        description="ATR floor as a fraction of price (0.001 = 0.1 %), used when the ATR is "
        "smaller or not yet defined (seed ATR_MIN_PCT_DEFAULT).")
    atr_min_pct_by_symbol: dict[SymbolId, Fraction] = Field(
        default_factory=dict,
        description="Per-symbol override of atr_min_pct, e.g. {BTCUSDT: 0.0008} "
        "(seed ATR_MIN_PCT_BTC, ATR_MIN_PCT_ETH).")
    allow_shorts: bool = Field(default=True,
                               description="Enter shorts on a downside breakout.")
    funding_long_max: float | None = Field(
        default=0.0005, gt=-1, lt=1,
        description="Block longs while the funding rate is above this fraction per funding "
        "interval (0.0005 = 0.05 % per 8 h); null disables (seed FUNDING_LONG_MAX).")
    funding_short_min: float | None = Field(
        default=-0.0005, gt=-1, lt=1,
        description="Block shorts while the funding rate is below this fraction per funding "
        "interval; null disables (seed FUNDING_SHORT_MIN).")
    use_funding_percentiles: bool = Field(
        default=False,
        description="Use look-back percentiles of the funding rate instead of the fixed "
        "thresholds (seed USE_FUNDING_PERCENTILES).")
    funding_pctl_lookback_days: PositiveInt = Field(
        default=14, le=365,
        description="Days of funding history the percentiles are taken over "
        "(seed FUNDING_PCTL_LOOKBACK_DAYS).")
    funding_long_max_pctl: float = Field(
        default=90.0, ge=0, le=100,
        description="Percentile mode: block longs while funding is above this percentile "
        "of the look-back (seed FUNDING_LONG_MAX_PCTL).")
    funding_short_min_pctl: float = Field(
        default=10.0, ge=0, le=100,
        description="Percentile mode: block shorts while funding is below this percentile "
        "of the look-back (seed FUNDING_SHORT_MIN_PCTL).")
    no_trade_funding_window_s: int = Field(
        default=300, ge=0, le=4 * 3600,
        description="No entries when the bar closes within ± this many seconds of a "
        "00/08/16 UTC funding time; 0 disables (seed NO_TRADE_FUNDING_WINDOW_S).")


class Momentum(Strategy):
    """ATR breakout.

    Each bar: ``ATR_eff = max(ATR(atr_period), close × atr_min_pct)``, the ATR including this
    bar (the floor alone while the ATR is warming up). With ``H``/``L`` the highest high /
    lowest low of the ``breakout_period`` bars *before* this one:

    - ``close > H + breakout_atr_mult × ATR_eff`` → ``enter_long``, stop
      ``close − atr_stop_mult × ATR_eff``, trailing distance ``atr_trail_mult × ATR_eff``;
    - ``close < L − breakout_atr_mult × ATR_eff`` → ``enter_short`` (symmetric) when
      ``allow_shorts``, else ``exit`` of a long.

    Entries are skipped inside the no-trade window around funding times and when the
    funding filter blocks that side; a breakout against an open position still exits it
    (exits are never blocked). Until a funding rate is fed (``on_funding``) the funding
    filter lets entries through. Otherwise positions end at the exchange stop, which
    :meth:`trail_stop` tightens.
    """

    name = "momentum"
    Params = MomentumParams
    params: MomentumParams

    __slots__ = ("_atr", "_dc", "_atr_update", "_dc_update", "_k", "_stop_mult", "_min_pct",
                 "_shorts", "_window_s", "_funding", "_blocked_funding", "_blocked_window")

    def reset(self) -> None:
        p = self.params
        self._atr = ATR(p.atr_period)
        self._dc = DonchianChannel(p.breakout_period)
        self._atr_update = self._atr.update
        self._dc_update = self._dc.update
        self._k = p.breakout_atr_mult
        self._stop_mult = p.atr_stop_mult
        self._min_pct = p.atr_min_pct_by_symbol.get(self.symbol, p.atr_min_pct)
        self._shorts = p.allow_shorts
        self._window_s = p.no_trade_funding_window_s
        self._funding = FundingFilter(
            long_max=p.funding_long_max, short_min=p.funding_short_min,
            use_percentiles=p.use_funding_percentiles,
            lookback_days=p.funding_pctl_lookback_days,
            long_max_pctl=p.funding_long_max_pctl, short_min_pctl=p.funding_short_min_pctl)
        self._blocked_funding = 0
        self._blocked_window = 0
        super().reset()

    @property
    def warmup_bars(self) -> int:
        return max(self.params.atr_period, self.params.breakout_period)

    def on_funding(self, rate: float, funding_time_ms: int) -> None:
        super().on_funding(rate, funding_time_ms)
        if self._funding_time == funding_time_ms:  # accepted: not older than the latest
            self._funding.update(float(rate), int(funding_time_ms))

    def effective_atr(self, price: float) -> float:
        """``max(ATR, price × atr_min_pct)`` in USDT (the floor alone before the ATR exists)."""
        floor = price * self._min_pct
        atr = self._atr.value
        return atr if atr is not None and atr > floor else floor

    def on_bar(self, bar: Bar) -> Signal | None:
        t = bar.close_time
        if t <= self._last_time:
            return None
        self._last_time = t
        self._bars += 1
        dc = self._dc
        prior_high = dc.upper  # the channel before this bar: the prior breakout_period bars
        prior_low = dc.lower
        close = bar.close
        atr = self._atr_update(bar.high, bar.low, close)
        self._dc_update(bar.high, bar.low)
        if atr is None or prior_high is None:
            return None
        floor = close * self._min_pct
        eff = atr if atr > floor else floor
        if close > prior_high + self._k * eff:
            return self._breakout(True, bar, prior_high, atr, eff)
        if close < prior_low - self._k * eff:
            return self._breakout(False, bar, prior_low, atr, eff)
        return None

    def _breakout(self, up: bool, bar: Bar, level: float, atr: float, eff: float) -> Signal | None:
        pos = self._pos
        if (pos > 0 and up) or (pos < 0 and not up):
            return None
        reason = self._reason(up, bar, level, atr, eff)
        if not up and not self._shorts:
            if pos > 0:
                reason["rule"] += " (shorts not allowed: exit)"
                return self._exit(bar, reason)
            return None
        blocked = None
        if in_no_trade_window(bar.close_time, self._window_s):
            blocked = "no-trade window around funding time"
            self._blocked_window += 1
        elif self._funding.blocks_long() if up else self._funding.blocks_short():
            blocked = "funding filter"
            self._blocked_funding += 1
        if blocked is not None:
            if pos != 0:  # a breakout against the position still closes it
                reason["rule"] += f" (entry blocked by {blocked}: exit)"
                return self._exit(bar, reason)
            return None
        close = bar.close
        dist = self._stop_mult * eff
        trail = None if self.params.atr_trail_mult is None else self.params.atr_trail_mult * eff
        return self._enter(up, bar, close - dist if up else close + dist, trail, reason)

    def _reason(self, up: bool, bar: Bar, level: float, atr: float, eff: float) -> dict[str, Any]:
        p = self.params
        f = self._funding
        return {
            "rule": (f"close broke the prior {p.breakout_period}-bar "
                     f"{'high' if up else 'low'} by more than {p.breakout_atr_mult} ATR"),
            "close": bar.close,
            "prior_high" if up else "prior_low": level,
            "threshold": level + p.breakout_atr_mult * eff if up
            else level - p.breakout_atr_mult * eff,
            "atr": atr,
            "atr_effective": eff,
            "funding_rate": f.rate,
            "funding_limit": f.long_limit() if up else f.short_limit(),
            "ms_to_funding": ms_to_nearest_funding(bar.close_time),
        }

    def _trail_distance(self, price: float) -> float | None:
        mult = self.params.atr_trail_mult
        return None if mult is None else mult * self.effective_atr(price)

    def _indicators(self) -> dict[str, Any]:
        return {
            "atr": self._atr.value,
            # the range the next bar must break (it includes the latest bar)
            "range_high": self._dc.upper,
            "range_low": self._dc.lower,
            "funding_long_limit": self._funding.long_limit(),
            "funding_short_limit": self._funding.short_limit(),
            "funding_window_events": self._funding.window_size,
            "entries_blocked_by_funding": self._blocked_funding,
            "entries_blocked_by_window": self._blocked_window,
        }
