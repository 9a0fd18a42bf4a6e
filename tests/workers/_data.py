"""Real Binance USDⓈ-M data for the strategy and indicator tests (``data/binance-um``).

The bundled week (2025-05-05 → 2025-05-11, 10,080 one-minute bars per symbol) and the
funding history (2025-03-06 → 2025-06-24) described in ``data/README.md``. Parsed once per
test session and returned as tuples, so no test can alter what another one reads.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
from functools import lru_cache
from pathlib import Path

import numpy as np

from tradefleet.workers.strategies import Bar

DATA = Path(__file__).resolve().parents[2] / "data" / "binance-um"
DAY_MS = 86_400_000


@lru_cache(maxsize=None)
def bars(symbol: str = "BTCUSDT") -> tuple[Bar, ...]:
    """All 10,080 one-minute bars of ``symbol`` in the bundled week, oldest first."""
    (path,) = (DATA / "klines").glob(f"{symbol}-1m-*.csv.gz")
    with gzip.open(path, "rt", newline="") as fh:
        rows = csv.reader(fh)
        assert next(rows) == ["open_time", "open", "high", "low", "close", "volume", "close_time"]
        return tuple(Bar(int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]),
                         float(r[5]), int(r[6])) for r in rows)


def day(date: str, symbol: str = "BTCUSDT") -> tuple[Bar, ...]:
    """The 1,440 bars of one UTC day, ``date`` as ``YYYY-MM-DD``."""
    start = int(dt.datetime.fromisoformat(date).replace(tzinfo=dt.timezone.utc).timestamp()
                * 1000)
    out = tuple(b for b in bars(symbol) if start <= b.open_time < start + DAY_MS)
    assert len(out) == 1440, f"{date} is not a whole day of the bundled week"
    return out


def arrays(window: tuple[Bar, ...]) -> dict[str, np.ndarray]:
    """Columns of ``window`` as float64 arrays (int64 for the times), for TA-Lib and numpy."""
    cols = list(zip(*window))
    names = ("open_time", "open", "high", "low", "close", "volume", "close_time")
    return {n: np.asarray(c, dtype=np.int64 if n.endswith("time") else np.float64)
            for n, c in zip(names, cols)}


@lru_cache(maxsize=None)
def funding(symbol: str = "BTCUSDT") -> tuple[tuple[int, float], ...]:
    """All funding events ``(funding_time ms, rate fraction per 8 h)``, oldest first."""
    (path,) = (DATA / "funding").glob(f"{symbol}-funding-*.csv.gz")
    with gzip.open(path, "rt", newline="") as fh:
        rows = csv.reader(fh)
        assert next(rows) == ["funding_time", "funding_rate"]
        return tuple((int(r[0]), float(r[1])) for r in rows)
