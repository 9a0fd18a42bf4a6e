"""Funding-rate entry filters and the no-trade window around funding times (seed 000).

Binance USDⓈ-M perpetuals settle funding every 8 h at 00:00, 08:00 and 16:00 UTC
(``/fapi/v1/fundingRate``; BTCUSDT, ETHUSDT and SOLUSDT all use the 8 h interval). A long pays
funding when the rate is positive, a short when it is negative; the Momentum seed avoids
entries that would pay an unusually high rate (``FUNDING_LONG_MAX``, ``FUNDING_SHORT_MIN``,
or their percentile forms) and any entry within ``NO_TRADE_FUNDING_WINDOW_S`` of a
funding time.
"""

from __future__ import annotations

from ..indicators import RollingPercentile

FUNDING_INTERVAL_MS = 8 * 60 * 60 * 1000
"""Binance funding interval: funding times are the multiples of 8 h since the epoch (UTC)."""

DAY_MS = 24 * 60 * 60 * 1000


def ms_to_nearest_funding(time_ms: int) -> int:
    """Distance in ms from ``time_ms`` (UTC ms) to the nearest 00/08/16 UTC funding time."""
    r = time_ms % FUNDING_INTERVAL_MS
    return r if r <= FUNDING_INTERVAL_MS - r else FUNDING_INTERVAL_MS - r


def in_no_trade_window(time_ms: int, window_s: int) -> bool:
    """True when ``time_ms`` is within ±``window_s`` seconds of a funding time.

    ``window_s == 0`` disables the window. Strategies pass the bar's close time: the bar's
    time is data, never a clock read, so backtests and live runs agree.
    """
    return window_s > 0 and ms_to_nearest_funding(time_ms) <= window_s * 1000


class FundingFilter:
    """Decides whether the latest funding rate allows a long or a short entry.

    Threshold mode: a long is blocked when ``rate > long_max``, a short when
    ``rate < short_min`` (fractions per funding interval, Binance ``fundingRate``;
    ``0.0001`` = 0.01 %). A None threshold disables that side's filter.

    Percentile mode (``use_percentiles``): the limits are the ``long_max_pctl``-th and
    ``short_min_pctl``-th percentiles (0..100) of the rates of the last ``lookback_days``
    days, the latest included (:class:`RollingPercentile`, numpy's linear definition).

    Before any rate is known nothing is blocked (and the signal's ``reason`` shows
    ``funding_rate: None``): the worker feeds the funding history at start. Funding times
    are snapped to the whole minute because Binance stamps them a few ms after the hour,
    which would otherwise make the look-back edge depend on that jitter.
    """

    __slots__ = ("long_max", "short_min", "use_percentiles", "long_max_pctl",
                 "short_min_pctl", "rate", "time_ms", "_window")

    def __init__(self, *, long_max: float | None, short_min: float | None,
                 use_percentiles: bool = False, lookback_days: int = 14,
                 long_max_pctl: float = 90.0, short_min_pctl: float = 10.0) -> None:
        self.long_max = long_max
        self.short_min = short_min
        self.use_percentiles = use_percentiles
        self.long_max_pctl = long_max_pctl
        self.short_min_pctl = short_min_pctl
        self._window = RollingPercentile(lookback_days * DAY_MS)
        self.rate: float | None = None
        self.time_ms: int | None = None

    def update(self, rate: float, funding_time_ms: int) -> None:
        """Record the rate of the funding event at ``funding_time_ms`` (UTC ms).

        An older event than the latest is ignored; the same event replaces the rate.
        """
        t = funding_time_ms - funding_time_ms % 60_000
        if self.time_ms is not None and t < self.time_ms:
            return
        self._window.update(rate, t)
        self.rate = rate
        self.time_ms = t

    def long_limit(self) -> float | None:
        """The rate above which longs are blocked now, or None (no limit)."""
        if self.use_percentiles:
            return self._window.percentile(self.long_max_pctl)
        return self.long_max

    def short_limit(self) -> float | None:
        """The rate below which shorts are blocked now, or None (no limit)."""
        if self.use_percentiles:
            return self._window.percentile(self.short_min_pctl)
        return self.short_min

    def blocks_long(self) -> bool:
        """True when the latest rate is above the long limit."""
        lim = self.long_limit()
        return self.rate is not None and lim is not None and self.rate > lim

    def blocks_short(self) -> bool:
        """True when the latest rate is below the short limit."""
        lim = self.short_limit()
        return self.rate is not None and lim is not None and self.rate < lim

    @property
    def window_size(self) -> int:
        """Funding events in the percentile look-back window."""
        return len(self._window)
