"""Incremental technical indicators: pure, deterministic, O(1) per update, floats inside.

(Amortised O(1) for the rolling stddev and Donchian channel; the funding-rate
:class:`RollingPercentile` is O(m) in its window size and never on the per-bar path.)

Every indicator is a small ``__slots__`` class fed one observation at a time, for the live
bot worker, paper trading and the backtester alike (no I/O, no clock, no numpy):

- ``update(...)`` adds one observation. Single-value indicators return the new value, or
  ``None`` while warming up; channels return ``True`` once defined and expose ``upper``,
  ``middle`` and ``lower``.
- ``warmup`` is the number of updates before the first value; ``ready`` says whether it
  has been reached; ``value`` (or the channel attributes) holds the latest output.
- ``reset()`` returns to the freshly constructed state.

Seeding follows TA-Lib (the tests compare against ``talib`` on the real Binance data in
``data/binance-um`` to 1e-9 relative error): EMA starts from the SMA of its first
``period`` inputs; RSI and ATR use Wilder's smoothing seeded with simple means.

Classes (inputs → output):

- :class:`SMA` (x → mean of the last n), :class:`EMA` (x → SMA-seeded EMA)
- :class:`RollingStdDev` (x → population σ, plus ``mean``)
- :class:`RSI` (close → Wilder RSI, 0..100)
- :class:`TrueRange` and :class:`ATR` (high, low, close → Wilder TR / ATR)
- :class:`BollingerBands` (close → SMA ± k·σ)
- :class:`KeltnerChannel` (high, low, close → EMA ± k·ATR)
- :class:`DonchianChannel` (high, low → highest high / lowest low)
- :class:`RollingPercentile` (value, time_ms → ``percentile(q)`` over a time window)
"""

from .channels import BollingerBands, DonchianChannel, KeltnerChannel
from .moving_average import EMA, SMA
from .percentile import RollingPercentile
from .rsi import RSI
from .volatility import ATR, RollingStdDev, TrueRange

__all__ = [
    "ATR",
    "EMA",
    "RSI",
    "SMA",
    "BollingerBands",
    "DonchianChannel",
    "KeltnerChannel",
    "RollingPercentile",
    "RollingStdDev",
    "TrueRange",
]
