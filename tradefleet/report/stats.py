"""Performance statistics from an equity curve and a list of closed trades.

Ratios come from empyrical-reloaded (the Quantopian library: ``sharpe_ratio``,
``sortino_ratio``, ``calmar_ratio``, ``max_drawdown``, ``cagr``), computed on returns of
the equity curve resampled to one hour (crypto trades 24/7: 8,760 periods a year). Hourly
bars keep a one-week run meaningful without the noise of 1m returns; the resolution is
written into the output so nobody compares it with a daily-returns Sharpe unknowingly.
Trade statistics (win rate, profit factor, expectancy) follow their usual definitions
(e.g. Tharp, *Trade Your Way to Financial Freedom*): expectancy = mean net PnL per trade.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

import empyrical
import numpy as np
import pandas as pd

PERIODS_PER_YEAR = 365 * 24  # hourly returns of a 24/7 market
RESAMPLE = "1h"


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One closed round trip of one bot: net PnL after fees and funding, in USDT."""

    bot: str
    symbol: str
    side: str
    entry_time_ms: int
    exit_time_ms: int
    qty: Decimal
    entry_price: Decimal
    exit_price: Decimal
    gross_pnl_usdt: Decimal
    fees_usdt: Decimal
    funding_usdt: Decimal

    @property
    def net_pnl_usdt(self) -> Decimal:
        return self.gross_pnl_usdt - self.fees_usdt + self.funding_usdt


def _finite(x: float) -> float | None:
    """JSON-safe float: None for NaN/inf (e.g. Sortino with no losing hour)."""
    x = float(x)
    return x if math.isfinite(x) else None


def equity_stats(equity: pd.Series) -> dict:
    """Return, risk ratios and drawdown of an equity curve.

    equity: USDT indexed by UTC timestamps (DatetimeIndex), any sampling. Returns a dict
    of floats (None when undefined): total_return, cagr, sharpe, sortino, calmar,
    max_drawdown (a negative fraction, e.g. -0.08 = 8 % below the running peak),
    volatility_annual, start/end equity, and ``returns_resolution``.
    """
    if len(equity) < 2:
        return {"total_return": 0.0, "cagr": None, "sharpe": None, "sortino": None,
                "calmar": None, "max_drawdown": 0.0, "volatility_annual": None,
                "start_equity": float(equity.iloc[0]) if len(equity) else None,
                "end_equity": float(equity.iloc[-1]) if len(equity) else None,
                "returns_resolution": RESAMPLE}
    hourly = equity.astype(float).resample(RESAMPLE).last().ffill()
    returns = hourly.pct_change().dropna()
    kw = {"annualization": PERIODS_PER_YEAR}
    running_peak = equity.astype(float).cummax()
    max_dd = float((equity.astype(float) / running_peak - 1).min())  # on full resolution
    return {
        "total_return": float(equity.iloc[-1] / equity.iloc[0] - 1),
        "cagr": _finite(empyrical.cagr(returns, **kw)) if len(returns) else None,
        "sharpe": _finite(empyrical.sharpe_ratio(returns, **kw)) if len(returns) > 1 else None,
        "sortino": _finite(empyrical.sortino_ratio(returns, **kw)) if len(returns) > 1 else None,
        "calmar": _finite(empyrical.calmar_ratio(returns, **kw)) if len(returns) > 1 else None,
        "max_drawdown": max_dd,
        "volatility_annual": _finite(empyrical.annual_volatility(returns, **kw))
        if len(returns) > 1 else None,
        "start_equity": float(equity.iloc[0]),
        "end_equity": float(equity.iloc[-1]),
        "returns_resolution": RESAMPLE,
    }


def trade_stats(trades: list[TradeRecord]) -> dict:
    """Win rate, profit factor, expectancy and totals over closed trades (USDT as strings).

    profit_factor = gross wins / |gross losses| on net PnL (None without a loss).
    """
    nets = [t.net_pnl_usdt for t in trades]
    wins = [n for n in nets if n > 0]
    losses = [n for n in nets if n < 0]
    total = sum(nets, Decimal(0))
    return {
        "trades": len(trades),
        "wins": len(wins),
        "losses": len(losses),
        "win_rate": len(wins) / len(trades) if trades else None,
        "profit_factor": float(sum(wins) / -sum(losses)) if losses else None,
        "expectancy_usdt": str((total / len(trades)).quantize(Decimal("0.00000001")))
        if trades else None,
        "net_pnl_usdt": str(total),
        "fees_usdt": str(sum((t.fees_usdt for t in trades), Decimal(0))),
        "funding_usdt": str(sum((t.funding_usdt for t in trades), Decimal(0))),
        "avg_hold_minutes": float(np.mean([(t.exit_time_ms - t.entry_time_ms) / 60_000
                                           for t in trades])) if trades else None,
    }


def drawdown_series(equity: pd.Series) -> pd.Series:
    """Drawdown from the running peak at each point, as a negative fraction."""
    eq = equity.astype(float)
    return eq / eq.cummax() - 1
