"""Wilder's Relative Strength Index, updated one close at a time in O(1)."""

from __future__ import annotations

from ._check import check_period


class RSI:
    """Relative Strength Index with Wilder's smoothing, seeded as TA-Lib does.

    Formula (Wilder, J. W., *New Concepts in Technical Trading Systems*, 1978): with
    ``gain_t = max(C_t − C_{t-1}, 0)`` and ``loss_t = max(C_{t-1} − C_t, 0)``,
    ``G_t = (G_{t-1} · (n − 1) + gain_t) / n`` and likewise ``L_t``;
    ``RSI = 100 · G / (G + L)`` (= ``100 − 100 / (1 + G/L)``). ``G`` and ``L`` start as the
    simple means of the first ``n`` changes, so the first value comes on close ``n + 1``
    (``warmup == period + 1``): TA-Lib ``TA_RSI`` with unstable period 0 (``talib.RSI``).

    One deliberate difference: when ``G + L == 0`` (no price change at all over the
    smoothing memory) this returns 50, "neither overbought nor oversold"; TA-Lib returns 0,
    which a mean-reversion rule would read as deeply oversold.

    Range 0..100. Raises ValueError from the constructor when ``period`` is not an int >= 1.
    """

    __slots__ = ("period", "warmup", "value", "_prev", "_gain", "_loss", "_n", "_pm1")

    def __init__(self, period: int = 14) -> None:
        self.period = check_period("period", period)
        self.warmup = self.period + 1
        self._pm1 = float(self.period - 1)
        self.reset()

    def reset(self) -> None:
        """Forget every close."""
        self.value: float | None = None
        self._prev: float | None = None
        self._gain = 0.0
        self._loss = 0.0
        self._n = 0

    @property
    def ready(self) -> bool:
        """True once ``period + 1`` closes have been seen."""
        return self.value is not None

    def update(self, close: float) -> float | None:
        """Add a close; return the RSI (0..100), or None during warmup."""
        prev = self._prev
        self._prev = close
        if prev is None:
            return None
        change = close - prev
        n = self.period
        if self.value is not None:
            gain = self._gain * self._pm1
            loss = self._loss * self._pm1
            if change < 0.0:
                loss -= change
            else:
                gain += change
            gain /= n
            loss /= n
        else:
            gain = self._gain
            loss = self._loss
            if change < 0.0:
                loss -= change
            else:
                gain += change
            self._n += 1
            if self._n < n:
                self._gain, self._loss = gain, loss
                return None
            gain /= n
            loss /= n
        self._gain = gain
        self._loss = loss
        total = gain + loss
        v = self.value = 100.0 * (gain / total) if total > 0.0 else 50.0
        return v
