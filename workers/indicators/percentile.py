"""Rolling percentile over a time window (funding-rate percentiles)."""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque

from ._check import check_period


class RollingPercentile:
    """Percentiles of the values seen in the last ``window_ms`` milliseconds.

    The window is the half-open interval ``(t_last − window_ms, t_last]`` where ``t_last`` is
    the newest time passed to ``update``. ``percentile(q)`` interpolates linearly between
    order statistics — Hyndman & Fan (1996) definition 7, ``numpy.percentile``'s default:
    with the window sorted as ``v_0 ≤ … ≤ v_{m-1}``, ``h = (m − 1) · q / 100``,
    ``P = v_⌊h⌋ + (h − ⌊h⌋) · (v_⌊h⌋+1 − v_⌊h⌋)``.

    Kept as a sorted list: an update costs a binary search plus a list shift, O(log m + m)
    with m the window size — a few hundred funding events at most, and funding arrives every
    8 h, never on the per-bar path.

    An update with the same time as the newest value *replaces* it (a revised estimate of the
    same funding event); an older time raises ValueError. Raises ValueError from the
    constructor when ``window_ms`` is not a positive int.
    """

    __slots__ = ("window_ms", "_events", "_sorted")

    def __init__(self, window_ms: int) -> None:
        self.window_ms = check_period("window_ms", window_ms)
        self.reset()

    def reset(self) -> None:
        """Forget every value."""
        self._events: deque[tuple[int, float]] = deque()
        self._sorted: list[float] = []

    def __len__(self) -> int:
        return len(self._sorted)

    @property
    def ready(self) -> bool:
        """True once the window holds at least one value."""
        return bool(self._sorted)

    @property
    def latest(self) -> float | None:
        """The newest value, or None when empty."""
        return self._events[-1][1] if self._events else None

    def _remove(self, value: float) -> None:
        s = self._sorted
        del s[bisect_left(s, value)]

    def update(self, value: float, time_ms: int) -> None:
        """Add ``value`` observed at ``time_ms`` (UTC ms) and drop values that left the window.

        Raises ValueError when ``value`` is not finite or ``time_ms`` is older than the
        newest time seen.
        """
        if not math.isfinite(value):
            raise ValueError(f"value must be a finite number, got {value!r}")
        ev = self._events
        if ev:
            last_t = ev[-1][0]
            if time_ms < last_t:
                raise ValueError(
                    f"time_ms {time_ms} is older than the newest value's time {last_t}; "
                    "feed values in time order"
                )
            if time_ms == last_t:
                self._remove(ev.pop()[1])
        ev.append((time_ms, value))
        insort(self._sorted, value)
        cutoff = time_ms - self.window_ms
        while ev[0][0] <= cutoff:
            self._remove(ev.popleft()[1])

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile (0..100) of the window, or None when empty.

        Raises ValueError when ``q`` is outside 0..100.
        """
        if not 0.0 <= q <= 100.0:
            raise ValueError(f"q must be a percentile between 0 and 100, got {q!r}")
        s = self._sorted
        if not s:
            return None
        h = (len(s) - 1) * (q / 100.0)
        lo = math.floor(h)
        if lo + 1 >= len(s):
            return s[-1]
        return s[lo] + (h - lo) * (s[lo + 1] - s[lo])
