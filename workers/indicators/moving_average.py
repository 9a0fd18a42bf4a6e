"""Simple and exponential moving averages, updated one value at a time in O(1)."""

from __future__ import annotations

from ._check import check_period


class SMA:
    """Simple moving average of the last ``period`` values.

    Formula: ``SMA_t = (x_t + x_{t-1} + … + x_{t-n+1}) / n``, kept as a running sum
    (add the new value, subtract the one leaving the window) exactly as TA-Lib ``TA_SMA``
    does, so results agree with ``talib.SMA`` to rounding.

    ``update(x)`` returns the average once ``period`` values have been seen (``warmup ==
    period``), ``None`` before. Units are those of ``x`` (USDT for prices).

    Raises ValueError from the constructor when ``period`` is not an int >= 1.
    """

    __slots__ = ("period", "warmup", "value", "_buf", "_i", "_sum", "_n")

    def __init__(self, period: int) -> None:
        self.period = check_period("period", period)
        self.warmup = self.period
        self.reset()

    def reset(self) -> None:
        """Forget every value: back to the state right after construction."""
        self.value: float | None = None
        self._buf = [0.0] * self.period
        self._i = 0
        self._sum = 0.0
        self._n = 0

    @property
    def ready(self) -> bool:
        """True once ``period`` values have been seen and ``value`` is defined."""
        return self.value is not None

    def update(self, x: float) -> float | None:
        """Add ``x``; return the average of the last ``period`` values, or None in warmup."""
        i = self._i
        # TA-Lib order: drop the leaving value, then add the new one.
        self._sum = (self._sum - self._buf[i]) + x
        self._buf[i] = x
        i += 1
        self._i = 0 if i == self.period else i
        if self.value is None:
            self._n += 1
            if self._n < self.period:
                return None
        v = self.value = self._sum / self.period
        return v


class EMA:
    """Exponential moving average, seeded with the SMA of the first ``period`` values.

    Formula: ``α = 2 / (n + 1)``; ``EMA_t = EMA_{t-1} + α · (x_t − EMA_{t-1})``. The first
    value (after ``period`` inputs) is the simple mean of those inputs — TA-Lib's default
    ("classic") seeding in ``TA_EMA``; ``talib.EMA`` therefore gives the same series.

    ``update(x)`` returns the EMA once ``period`` values have been seen (``warmup ==
    period``), ``None`` before. Units are those of ``x``.

    Raises ValueError from the constructor when ``period`` is not an int >= 1.
    """

    __slots__ = ("period", "warmup", "alpha", "value", "_sum", "_n")

    def __init__(self, period: int) -> None:
        self.period = check_period("period", period)
        self.warmup = self.period
        self.alpha = 2.0 / (self.period + 1)
        self.reset()

    def reset(self) -> None:
        """Forget every value: back to the state right after construction."""
        self.value: float | None = None
        self._sum = 0.0
        self._n = 0

    @property
    def ready(self) -> bool:
        """True once ``period`` values have been seen and ``value`` is defined."""
        return self.value is not None

    def update(self, x: float) -> float | None:
        """Add ``x``; return the new EMA, or None while fewer than ``period`` values were seen."""
        v = self.value
        if v is not None:
            v += self.alpha * (x - v)  # same operation order as TA-Lib: prev + k·(x − prev)
            self.value = v
            return v
        self._sum += x
        self._n += 1
        if self._n < self.period:
            return None
        v = self.value = self._sum / self.period
        return v
