"""Volatility: True Range, Wilder's ATR and a rolling (population) standard deviation."""

from __future__ import annotations

from math import sqrt

from ._check import check_period


class TrueRange:
    """Wilder's True Range of a bar.

    Formula (Wilder, J. W., *New Concepts in Technical Trading Systems*, 1978):
    ``TR_t = max(H_t − L_t, |H_t − C_{t-1}|, |L_t − C_{t-1}|)``.

    The first bar has no previous close, so — like ``talib.TRANGE`` — ``update`` returns
    None for it (``warmup == 2``) and the TR from the second bar on. Units: price (USDT).
    """

    __slots__ = ("warmup", "value", "_prev_close")

    def __init__(self) -> None:
        self.warmup = 2
        self.reset()

    def reset(self) -> None:
        """Forget every bar."""
        self.value: float | None = None
        self._prev_close: float | None = None

    @property
    def ready(self) -> bool:
        """True once two bars have been seen."""
        return self.value is not None

    def update(self, high: float, low: float, close: float) -> float | None:
        """Add a bar; return its True Range, or None for the very first bar."""
        pc = self._prev_close
        self._prev_close = close
        if pc is None:
            return None
        tr = high - low
        d = high - pc if high > pc else pc - high
        if d > tr:
            tr = d
        d = low - pc if low > pc else pc - low
        if d > tr:
            tr = d
        self.value = tr
        return tr


class ATR:
    """Average True Range with Wilder's smoothing, seeded as TA-Lib does.

    Formula (Wilder 1978): ``ATR_t = (ATR_{t-1} · (n − 1) + TR_t) / n``. The first ATR is the
    simple mean of the first ``n`` True Ranges; since the first bar has no True Range, the
    first value comes on bar ``n + 1`` (``warmup == period + 1``). This is ``talib.ATR``
    (TA-Lib ``TA_ATR``, unstable period 0), which the tests compare against.

    Units: price (USDT). Raises ValueError from the constructor when ``period`` is not an
    int >= 1.
    """

    __slots__ = ("period", "warmup", "value", "_prev_close", "_sum", "_n", "_pm1")

    def __init__(self, period: int = 14) -> None:
        self.period = check_period("period", period)
        self.warmup = self.period + 1
        self._pm1 = float(self.period - 1)
        self.reset()

    def reset(self) -> None:
        """Forget every bar."""
        self.value: float | None = None
        self._prev_close: float | None = None
        self._sum = 0.0
        self._n = 0

    @property
    def ready(self) -> bool:
        """True once ``period + 1`` bars have been seen."""
        return self.value is not None

    def update(self, high: float, low: float, close: float) -> float | None:
        """Add a bar; return the ATR, or None during warmup."""
        pc = self._prev_close
        self._prev_close = close
        if pc is None:
            return None
        # True Range inlined: this runs on every bar of every ATR strategy.
        tr = high - low
        d = high - pc if high > pc else pc - high
        if d > tr:
            tr = d
        d = low - pc if low > pc else pc - low
        if d > tr:
            tr = d
        v = self.value
        if v is not None:
            v = (v * self._pm1 + tr) / self.period  # TA-Lib: prev·(n−1) + TR, then / n
            self.value = v
            return v
        self._sum += tr
        self._n += 1
        if self._n < self.period:
            return None
        v = self.value = self._sum / self.period
        return v


class RollingStdDev:
    """Population standard deviation (and mean) of the last ``period`` values.

    Formula: ``σ = sqrt(Σ(x_i − μ)² / n)`` over the window, ``μ = Σx_i / n`` — the population
    form (divide by n), as in Bollinger's bands and TA-Lib ``BBANDS``/``STDDEV``.

    Numerics: TA-Lib keeps ``Σx²`` over the whole series and takes ``E[x²] − μ²``; at BTC
    prices (x² ≈ 10¹⁰) that loses about 7 significant digits of a 1-minute variance. Here
    sums are kept of ``d = x − K`` with a reference ``K`` reset to the window mean every
    ``period`` updates (one O(period) re-sum per ``period`` updates: amortised O(1)), so the
    result agrees with an exact two-pass computation (talipp ``StdDev``) to ~1e-12 relative.

    ``update(x)`` returns σ once ``period`` values were seen (``warmup == period``), else
    None; ``mean`` holds μ, kept as TA-Lib's running sum so it is bit-for-bit ``talib.SMA``
    (a close exactly at the middle band compares the same way as there). Units are those
    of ``x``.
    """

    __slots__ = ("period", "warmup", "value", "mean", "_buf", "_i", "_n", "_k",
                 "_s1", "_s2", "_since", "_sum")

    def __init__(self, period: int = 20) -> None:
        self.period = check_period("period", period)
        self.warmup = self.period
        self.reset()

    def reset(self) -> None:
        """Forget every value."""
        self.value: float | None = None
        self.mean: float | None = None
        self._buf = [0.0] * self.period
        self._i = 0
        self._n = 0
        self._k = 0.0
        self._s1 = 0.0
        self._s2 = 0.0
        self._since = 0
        self._sum = 0.0

    @property
    def ready(self) -> bool:
        """True once ``period`` values have been seen."""
        return self.value is not None

    def _rebase(self) -> None:
        buf = self._buf
        n = self.period
        k = sum(buf) / n
        s1 = 0.0
        s2 = 0.0
        for v in buf:
            d = v - k
            s1 += d
            s2 += d * d
        self._k, self._s1, self._s2, self._since = k, s1, s2, 0

    def update(self, x: float) -> float | None:
        """Add ``x``; return σ of the last ``period`` values, or None during warmup."""
        n = self.period
        i = self._i
        buf = self._buf
        self._sum = (self._sum - buf[i]) + x  # TA-Lib TA_SMA order (buf holds 0.0 in warmup)
        if self._n < n:
            buf[i] = x
            self._n += 1
            self._i = 0 if i + 1 == n else i + 1
            if self._n < n:
                return None
            self._rebase()
        else:
            k = self._k
            d_out = buf[i] - k
            d_in = x - k
            buf[i] = x
            self._i = 0 if i + 1 == n else i + 1
            self._s1 += d_in - d_out
            self._s2 += d_in * d_in - d_out * d_out
            self._since += 1
            if self._since >= n:
                self._rebase()
        m1 = self._s1 / n
        var = self._s2 / n - m1 * m1
        self.mean = self._sum / n
        v = self.value = sqrt(var) if var > 0.0 else 0.0
        return v
