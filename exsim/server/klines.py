"""Kline intervals and aggregation of recorded 1m klines into longer bars.

Binance kline arrays (``GET /fapi/v1/klines``, "Kline/Candlestick Data") are
``[openTime, "open", "high", "low", "close", "volume", closeTime, "quoteAssetVolume",
numberOfTrades, "takerBuyBaseVolume", "takerBuyQuoteVolume", "ignore"]``. The recording has
no quote volume, trade count or taker volumes (see data/README.md), so those are ``"0"`` /
``0``. Longer intervals (3m … 1d, aligned to UTC midnight as Binance's) are built from the
1m bars: open of the first, max high, min low, close of the last, summed volume.
"""

from __future__ import annotations

import bisect
from decimal import Decimal

from .data import BAR_MS, Kline, SymbolData

__all__ = ["INTERVAL_MS", "Bar", "bar_range", "bar_at", "kline_array", "price_kline_array",
           "kline_event"]

INTERVAL_MS: dict[str, int] = {
    "1m": BAR_MS, "3m": 3 * BAR_MS, "5m": 5 * BAR_MS, "15m": 15 * BAR_MS,
    "30m": 30 * BAR_MS, "1h": 60 * BAR_MS, "2h": 120 * BAR_MS, "4h": 240 * BAR_MS,
    "6h": 360 * BAR_MS, "8h": 480 * BAR_MS, "12h": 720 * BAR_MS, "1d": 1440 * BAR_MS,
}


class Bar:
    """One kline of any interval; price/volume fields are decimal strings (USDT, base units).

    ``closed`` is False for the still-forming bar of a longer interval whose last 1m bar
    has not been replayed yet; ``last_1m_close_time`` is the close time of its newest 1m bar.
    """

    __slots__ = ("open_time", "close_time", "open", "high", "low", "close", "volume",
                 "closed", "last_1m_close_time")

    def __init__(self, open_time: int, close_time: int, open_: str, high: str, low: str,
                 close: str, volume: str, closed: bool, last_1m_close_time: int) -> None:
        self.open_time = open_time
        self.close_time = close_time
        self.open = open_
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume
        self.closed = closed
        self.last_1m_close_time = last_1m_close_time

    @classmethod
    def from_kline(cls, k: Kline) -> "Bar":
        """A closed 1m bar with the recorded text of every field."""
        return cls(k.open_time, k.close_time, k.open, k.high, k.low, k.close, k.volume,
                   True, k.close_time)


def _aggregate(sd: SymbolData, lo: int, hi: int, open_time: int, interval_ms: int) -> Bar:
    """Aggregate 1m klines ``sd.kline(lo..hi-1)`` into the bar opening at ``open_time``."""
    first = sd.kline(lo)
    if hi - lo == 1 and interval_ms == BAR_MS:
        return Bar.from_kline(first)
    high, low = first.high, first.low
    hi_d, lo_d = Decimal(high), Decimal(low)
    vol = Decimal(first.volume)
    last = first
    for i in range(lo + 1, hi):
        k = sd.kline(i)
        if Decimal(k.high) > hi_d:
            high, hi_d = k.high, Decimal(k.high)
        if Decimal(k.low) < lo_d:
            low, lo_d = k.low, Decimal(k.low)
        vol += Decimal(k.volume)
        last = k
    close_time = open_time + interval_ms - 1
    return Bar(open_time, close_time, first.open, high, low, last.close, f"{vol:f}",
               last.close_time >= close_time, last.close_time)


def bar_range(sd: SymbolData, interval_ms: int, clock_ms: int, start_time: int | None,
              end_time: int | None, limit: int) -> list[Bar]:
    """Bars of ``interval_ms`` visible at replay time ``clock_ms`` (no look-ahead).

    Only 1m klines with ``close_time < clock_ms`` are used, so a longer interval's newest bar
    may be partial (as Binance's REST shows the forming bar). Filters follow Binance on open
    times (ms, inclusive): ``openTime >= start_time`` and ``openTime <= end_time``; with no
    ``start_time`` the newest ``limit`` bars are returned, else the first ``limit`` from it.
    """
    times = sd.kline_times
    hi = sd.klines_closed_before(clock_ms)
    if end_time is not None:
        hi = min(hi, bisect.bisect_right(times, end_time - end_time % interval_ms + interval_ms - 1))
    lo = 0
    if start_time is not None:
        first_bucket = -(-start_time // interval_ms) * interval_ms  # ceil to the interval grid
        lo = bisect.bisect_left(times, first_bucket)
    bars: list[Bar] = []
    if start_time is not None:
        i = lo
        while i < hi and len(bars) < limit:
            bucket = times[i] - times[i] % interval_ms
            j = bisect.bisect_left(times, bucket + interval_ms, i, hi)
            bars.append(_make(sd, i, j, bucket, interval_ms))
            i = j
        return bars
    i = hi
    while i > lo and len(bars) < limit:
        bucket = times[i - 1] - times[i - 1] % interval_ms
        j = bisect.bisect_left(times, bucket, lo, i)
        bars.append(_make(sd, j, i, bucket, interval_ms))
        i = j
    bars.reverse()
    return bars


def _make(sd: SymbolData, lo: int, hi: int, bucket: int, interval_ms: int) -> Bar:
    if interval_ms == BAR_MS:
        return Bar.from_kline(sd.kline(lo))
    return _aggregate(sd, lo, hi, bucket, interval_ms)


def bar_at(sd: SymbolData, interval_ms: int, index_1m: int) -> Bar:
    """The bar of ``interval_ms`` containing 1m kline ``index_1m``, built from that bar and
    the earlier 1m bars of the same interval (what is known once ``index_1m`` closed)."""
    t = sd.kline_times[index_1m]
    if interval_ms == BAR_MS:
        return Bar.from_kline(sd.kline(index_1m))
    bucket = t - t % interval_ms
    lo = bisect.bisect_left(sd.kline_times, bucket, 0, index_1m + 1)
    return _aggregate(sd, lo, index_1m + 1, bucket, interval_ms)


def kline_array(bar: Bar) -> list:
    """The REST array of one bar (``GET /fapi/v1/klines`` row)."""
    return [bar.open_time, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.close_time,
            "0", 0, "0", "0", "0"]


def price_kline_array(bar: Bar) -> list:
    """A ``markPriceKlines`` / ``indexPriceKlines`` row: OHLC, no volume (``"0"``)."""
    return [bar.open_time, bar.open, bar.high, bar.low, bar.close, "0", bar.close_time,
            "0", 0, "0", "0", "0"]


def kline_event(symbol: str, interval: str, bar: Bar, event_time: int) -> dict:
    """The ``<symbol>@kline_<interval>`` stream payload (Binance "Kline/Candlestick Streams").

    ``k.x`` is True only when the bar is closed; ``f``/``L`` (first/last trade id) are -1
    and ``n``/``q``/``V``/``Q`` are zero because the recording has no trades.
    """
    return {
        "e": "kline", "E": event_time, "s": symbol,
        "k": {"t": bar.open_time, "T": bar.close_time, "s": symbol, "i": interval,
              "f": -1, "L": -1, "o": bar.open, "c": bar.close, "h": bar.high, "l": bar.low,
              "v": bar.volume, "n": 0, "x": bar.closed, "q": "0", "V": "0", "Q": "0",
              "B": "0"},
    }
