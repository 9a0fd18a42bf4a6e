"""Performance reports shared by ``tradefleet run`` and ``tradefleet backtest``.

``stats`` turns an equity curve and closed trades into the figures users compare
(return, Sharpe, Sortino, Calmar, max drawdown, win rate, profit factor, expectancy, fees,
funding); ``html`` renders them with equity and drawdown plots into one self-contained page.
"""

from tradefleet.report.stats import TradeRecord, equity_stats, trade_stats

__all__ = ["TradeRecord", "equity_stats", "trade_stats"]
