"""Recorded market data for the replay: 1m klines, funding events and 8h mark-price klines.

Layout (as ``data/binance-um``, see data/README.md)::

    DIR/klines/{SYMBOL}-1m-*.csv.gz        open_time,open,high,low,close,volume,close_time
    DIR/funding/{SYMBOL}-funding-*.csv.gz  funding_time,funding_rate
    DIR/markprice/{SYMBOL}-markprice-8h-*.csv.gz  open_time,open,high,low,close,close_time

Times are integer ms since the epoch (UTC); prices are USDT, volumes base units. Kline rows
are kept as the exact CSV text, so what the REST and WebSocket APIs serve is the recorded
value to the last digit (a client can compare field by field with the file).
"""

from __future__ import annotations

import bisect
import gzip
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

__all__ = ["Kline", "SymbolData", "MarketData", "DataError", "load_market_data"]

BAR_MS = 60_000
KLINE_HEADER = "open_time,open,high,low,close,volume,close_time"
FUNDING_HEADER = "funding_time,funding_rate"
MARK_HEADER = "open_time,open,high,low,close,close_time"


class DataError(ValueError):
    """The data directory is missing a file, or a file has an unexpected header or row."""


@dataclass(frozen=True, slots=True)
class Kline:
    """One recorded 1m kline; price and volume fields are the CSV text (USDT, base units)."""

    open_time: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    close_time: int

    @classmethod
    def from_row(cls, row: str) -> "Kline":
        """Parse one CSV line ``open_time,open,high,low,close,volume,close_time``."""
        t, o, h, lo, c, v, ct = row.split(",")
        return cls(int(t), o, h, lo, c, v, int(ct))


@dataclass(slots=True)
class SymbolData:
    """All recorded series of one symbol, each sorted by time.

    ``kline_times[i]`` is the open time (ms) of the raw CSV line ``kline_rows[i]``;
    rows are parsed on demand so a 50-day file stays a list of short strings.
    """

    symbol: str
    kline_times: list[int] = field(default_factory=list)
    kline_rows: list[str] = field(default_factory=list)
    funding_times: list[int] = field(default_factory=list)
    funding_rates: list[str] = field(default_factory=list)
    mark_times: list[int] = field(default_factory=list)
    mark_opens: list[str] = field(default_factory=list)

    def kline(self, i: int) -> Kline:
        """The i-th recorded kline."""
        return Kline.from_row(self.kline_rows[i])

    def kline_index(self, open_time: int) -> int | None:
        """Index of the kline opening at ``open_time`` (ms), or None when there is none."""
        i = bisect.bisect_left(self.kline_times, open_time)
        if i < len(self.kline_times) and self.kline_times[i] == open_time:
            return i
        return None

    def klines_closed_before(self, clock_ms: int) -> int:
        """How many klines have ``close_time < clock_ms`` (i.e. closed by the replay clock)."""
        # close_time = open_time + 59999 < clock  <=>  open_time <= clock - BAR_MS
        return bisect.bisect_right(self.kline_times, clock_ms - BAR_MS)

    def funding_at_or_before(self, t_ms: int) -> tuple[int, Decimal] | None:
        """The last recorded funding event with ``funding_time <= t_ms`` as (time ms, rate)."""
        i = bisect.bisect_right(self.funding_times, t_ms)
        if i == 0:
            return None
        return self.funding_times[i - 1], Decimal(self.funding_rates[i - 1])

    def funding_between(self, start_ms: int, end_ms: int) -> list[tuple[int, Decimal]]:
        """Funding events with ``start_ms <= funding_time < end_ms`` as (time ms, rate)."""
        lo = bisect.bisect_left(self.funding_times, start_ms)
        hi = bisect.bisect_left(self.funding_times, end_ms)
        return [(self.funding_times[i], Decimal(self.funding_rates[i])) for i in range(lo, hi)]

    def mark_open_at(self, hour_ms: int) -> Decimal | None:
        """Open of the 8h mark-price kline starting at ``hour_ms`` (the mark at funding)."""
        i = bisect.bisect_left(self.mark_times, hour_ms)
        if i < len(self.mark_times) and self.mark_times[i] == hour_ms:
            return Decimal(self.mark_opens[i])
        return None


@dataclass(slots=True)
class MarketData:
    """Recorded data of every replayed symbol plus the shared lockstep timeline.

    ``timeline`` is the sorted union of all kline open times (ms): one replay step per entry.
    """

    symbols: dict[str, SymbolData]
    timeline: list[int]

    @property
    def bars_loaded(self) -> int:
        """Total klines loaded over all symbols."""
        return sum(len(s.kline_times) for s in self.symbols.values())


def _read_lines(path: Path, header: str) -> list[str]:
    with gzip.open(path, "rt", encoding="ascii", newline="") as fh:
        lines = fh.read().splitlines()
    if not lines or lines[0].strip() != header:
        got = lines[0] if lines else "<empty file>"
        raise DataError(f"{path}: header is {got!r}, expected {header!r}")
    return [ln for ln in lines[1:] if ln]


def _files(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.glob(pattern)) if folder.is_dir() else []


def _load_klines(sd: SymbolData, files: list[Path]) -> None:
    by_time: dict[int, str] = {}
    for path in files:
        for n, row in enumerate(_read_lines(path, KLINE_HEADER), start=2):
            parts = row.split(",")
            if len(parts) != 7:
                raise DataError(f"{path}:{n}: expected 7 fields, got {len(parts)}: {row!r}")
            try:
                t = int(parts[0])
            except ValueError:
                raise DataError(f"{path}:{n}: open_time {parts[0]!r} is not an integer") from None
            if t % BAR_MS:
                raise DataError(f"{path}:{n}: open_time {t} is not on the 1m grid")
            by_time[t] = row
    sd.kline_times = sorted(by_time)
    sd.kline_rows = [by_time[t] for t in sd.kline_times]


def _load_pairs(files: list[Path], header: str, value_col: int) -> tuple[list[int], list[str]]:
    by_time: dict[int, str] = {}
    for path in files:
        for n, row in enumerate(_read_lines(path, header), start=2):
            parts = row.split(",")
            try:
                by_time[int(parts[0])] = parts[value_col]
            except (ValueError, IndexError):
                raise DataError(f"{path}:{n}: malformed row {row!r}") from None
    times = sorted(by_time)
    return times, [by_time[t] for t in times]


def load_market_data(data_dir: str | Path, symbols: list[str] | None = None) -> MarketData:
    """Load the recorded data of ``symbols`` (default: every symbol with a klines file).

    Raises :class:`DataError` naming the path when the directory, a symbol's klines or a
    header is missing or malformed. Funding and mark files are optional per symbol (no
    funding is charged for a symbol without them).
    """
    root = Path(data_dir)
    kdir = root / "klines"
    if not kdir.is_dir():
        raise DataError(f"{root}: no klines/ folder (expected the data/binance-um layout)")
    available = sorted({p.name.split("-")[0] for p in kdir.glob("*-1m-*.csv.gz")})
    wanted = [s.upper() for s in symbols] if symbols else available
    if not wanted:
        raise DataError(f"{kdir}: no *-1m-*.csv.gz kline files")
    out: dict[str, SymbolData] = {}
    for sym in wanted:
        kfiles = _files(kdir, f"{sym}-1m-*.csv.gz")
        if not kfiles:
            raise DataError(f"{kdir}: no 1m klines for symbol {sym!r} (have: {', '.join(available)})")
        sd = SymbolData(sym)
        _load_klines(sd, kfiles)
        sd.funding_times, sd.funding_rates = _load_pairs(
            _files(root / "funding", f"{sym}-funding-*.csv.gz"), FUNDING_HEADER, 1)
        sd.mark_times, sd.mark_opens = _load_pairs(
            _files(root / "markprice", f"{sym}-markprice-8h-*.csv.gz"), MARK_HEADER, 1)
        out[sym] = sd
    timeline = sorted(set().union(*(set(s.kline_times) for s in out.values())))
    return MarketData(out, timeline)
