"""Price channels: Bollinger Bands, Keltner Channel and Donchian channel.

Each ``update(...)`` returns ``True`` once the channel is defined (``ready``) and sets the
``upper``, ``middle`` and ``lower`` attributes (prices, USDT); they are None in warmup.
"""

from __future__ import annotations

from collections import deque

from ._check import check_period, check_positive
from .moving_average import EMA
from .volatility import ATR, RollingStdDev


class BollingerBands:
    """Bollinger Bands: SMA(n) ± k · σ(n) of the closes.

    Formula (Bollinger, J., *Bollinger on Bollinger Bands*, 2001): ``middle = SMA_n(C)``,
    ``upper/lower = middle ± k · σ_n(C)`` with σ the *population* standard deviation of the
    same n closes — TA-Lib ``BBANDS`` with ``matype=SMA`` and talipp ``BB``. Defaults
    ``n = 20``, ``k = 2``. ``warmup == period``; σ is kept by :class:`RollingStdDev`, which is
    more precise than TA-Lib's running Σx² (see there).

    Raises ValueError from the constructor for a bad ``period`` or ``num_std``.
    """

    __slots__ = ("period", "num_std", "warmup", "upper", "middle", "lower", "stddev", "_sd")

    def __init__(self, period: int = 20, num_std: float = 2.0) -> None:
        self._sd = RollingStdDev(check_period("period", period))
        self.period = period
        self.num_std = check_positive("num_std", num_std)
        self.warmup = period
        self.reset()

    def reset(self) -> None:
        """Forget every close."""
        self._sd.reset()
        self.upper: float | None = None
        self.middle: float | None = None
        self.lower: float | None = None
        self.stddev: float | None = None

    @property
    def ready(self) -> bool:
        """True once ``period`` closes have been seen."""
        return self.middle is not None

    def update(self, close: float) -> bool:
        """Add a close; return True once the bands are defined."""
        sd = self._sd.update(close)
        if sd is None:
            return False
        m = self.middle = self._sd.mean
        w = self.num_std * sd
        self.stddev = sd
        self.upper = m + w
        self.lower = m - w
        return True


class KeltnerChannel:
    """Keltner Channel, Linda Raschke's variant: EMA(n) ± k · ATR(m).

    Chester Keltner (*How to Make Money in Commodities*, 1960) used a 10-day SMA of the
    typical price ± the 10-day average range; the form used today, popularised by Linda
    Bradford Raschke, is ``middle = EMA_n(C)``, ``upper/lower = middle ± k · ATR_m`` with
    Wilder's ATR (seed 002: "EMA n=20, ATR n=14, canal = EMA ± k·ATR"). Both parts are seeded
    as TA-Lib does (:class:`EMA`, :class:`ATR`), so the channel equals
    ``talib.EMA(C, n) ± k · talib.ATR(H, L, C, m)``.

    ``warmup == max(ema_period, atr_period + 1)``. Raises ValueError from the constructor
    for a bad period or multiplier.
    """

    __slots__ = ("ema_period", "atr_period", "multiplier", "warmup", "upper", "middle",
                 "lower", "atr", "_ema", "_atr")

    def __init__(self, ema_period: int = 20, atr_period: int = 14, multiplier: float = 2.0):
        self._ema = EMA(check_period("ema_period", ema_period))
        self._atr = ATR(check_period("atr_period", atr_period))
        self.ema_period = ema_period
        self.atr_period = atr_period
        self.multiplier = check_positive("multiplier", multiplier)
        self.warmup = max(self._ema.warmup, self._atr.warmup)
        self.reset()

    def reset(self) -> None:
        """Forget every bar."""
        self._ema.reset()
        self._atr.reset()
        self.upper: float | None = None
        self.middle: float | None = None
        self.lower: float | None = None
        self.atr: float | None = None

    @property
    def ready(self) -> bool:
        """True once both the EMA and the ATR are defined."""
        return self.middle is not None

    def update(self, high: float, low: float, close: float) -> bool:
        """Add a bar; return True once the channel is defined."""
        m = self._ema.update(close)
        a = self._atr.update(high, low, close)
        if m is None or a is None:
            return False
        w = self.multiplier * a
        self.middle = m
        self.atr = a
        self.upper = m + w
        self.lower = m - w
        return True


class DonchianChannel:
    """Donchian channel: highest high and lowest low of the last ``period`` bars.

    Richard Donchian's N-period channel (the "4-week rule"; the Turtle rules' 20/55-day
    entry and 10/20-day exit channels, Faith, *Way of the Turtle*, 2007):
    ``upper = max(H_{t-n+1..t})``, ``lower = min(L_{t-n+1..t})``, ``middle = (upper + lower)/2``.

    The window INCLUDES the bar just passed to ``update`` (as ``talib.MAX``/``talib.MIN`` and
    talipp ``DonchianChannels``). A breakout rule compares a bar's close with the channel as
    it stood *before* that bar was added — read ``upper``/``lower`` first, then ``update``.

    Monotonic deques give amortised O(1) updates. ``warmup == period``. Raises ValueError
    from the constructor for a bad ``period``.
    """

    __slots__ = ("period", "warmup", "upper", "middle", "lower", "_t", "_hv", "_hi",
                 "_lv", "_li")

    def __init__(self, period: int = 20) -> None:
        self.period = check_period("period", period)
        self.warmup = self.period
        self.reset()

    def reset(self) -> None:
        """Forget every bar."""
        self.upper: float | None = None
        self.middle: float | None = None
        self.lower: float | None = None
        self._t = 0
        self._hv: deque[float] = deque()
        self._hi: deque[int] = deque()
        self._lv: deque[float] = deque()
        self._li: deque[int] = deque()

    @property
    def ready(self) -> bool:
        """True once ``period`` bars have been seen."""
        return self.upper is not None

    def update(self, high: float, low: float) -> bool:
        """Add a bar's high and low; return True once ``period`` bars have been seen."""
        t = self._t
        self._t = t + 1
        oldest = t - self.period
        hv, hi = self._hv, self._hi
        while hv and hv[-1] <= high:
            hv.pop()
            hi.pop()
        hv.append(high)
        hi.append(t)
        if hi[0] <= oldest:
            hi.popleft()
            hv.popleft()
        lv, li = self._lv, self._li
        while lv and lv[-1] >= low:
            lv.pop()
            li.pop()
        lv.append(low)
        li.append(t)
        if li[0] <= oldest:
            li.popleft()
            lv.popleft()
        if t + 1 < self.period:
            return False
        u = self.upper = hv[0]
        lo = self.lower = lv[0]
        self.middle = (u + lo) / 2.0
        return True
