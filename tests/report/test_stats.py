"""Report statistics: the numbers a user compares between runs."""

from decimal import Decimal as D

import numpy as np
import pandas as pd
import pytest

from tradefleet.report.stats import TradeRecord, drawdown_series, equity_stats, trade_stats


def _curve(values, freq="1h"):
    idx = pd.date_range("2025-05-05", periods=len(values), freq=freq, tz="UTC")
    return pd.Series(values, index=idx, dtype=float)


def test_max_drawdown_is_the_worst_fall_from_a_running_peak():
    eq = _curve([100, 110, 99, 105, 120, 90, 130])
    assert equity_stats(eq)["max_drawdown"] == pytest.approx(90 / 120 - 1)
    assert drawdown_series(eq).iloc[2] == pytest.approx(99 / 110 - 1)


def test_sharpe_is_annualised_on_hourly_returns():
    rng = np.random.default_rng(7)
    eq = _curve(10_000 * np.cumprod(1 + rng.normal(0.0002, 0.002, 500)))
    r = eq.pct_change().dropna()
    expected = r.mean() / r.std(ddof=1) * np.sqrt(365 * 24)
    got = equity_stats(eq)
    assert got["sharpe"] == pytest.approx(expected, rel=1e-9)
    assert got["total_return"] == pytest.approx(eq.iloc[-1] / eq.iloc[0] - 1)


def test_minute_equity_is_resampled_to_hours_before_ratios():
    minutes = _curve(np.linspace(100, 101, 181), freq="1min")
    hours = minutes.resample("1h").last()
    assert equity_stats(minutes)["sharpe"] == equity_stats(hours)["sharpe"]


def test_flat_or_single_point_curves_give_no_ratio_instead_of_nan():
    assert equity_stats(_curve([100]))["sharpe"] is None
    flat = equity_stats(_curve([100, 100, 100, 100]))
    assert flat["max_drawdown"] == 0 and flat["sharpe"] is None


def _trade(net_gross, fees="1", funding="0"):
    return TradeRecord("default/a", "BTCUSDT", "long", 0, 3_600_000, D("0.01"), D(100), D(101),
                       D(net_gross), D(fees), D(funding))


def test_trade_stats_count_net_of_fees_and_funding():
    trades = [_trade("31"), _trade("-19"), _trade("1.5", fees="1", funding="-1")]
    s = trade_stats(trades)
    # nets: 30, -20, -0.5
    assert (s["wins"], s["losses"]) == (1, 2)
    assert s["win_rate"] == pytest.approx(1 / 3)
    assert s["profit_factor"] == pytest.approx(30 / 20.5)
    assert D(s["net_pnl_usdt"]) == D("9.5")
    assert D(s["expectancy_usdt"]) == (D("9.5") / 3).quantize(D("0.00000001"))
    assert D(s["fees_usdt"]) == D(3) and D(s["funding_usdt"]) == D(-1)


def test_no_trades_gives_empty_figures():
    s = trade_stats([])
    assert s["trades"] == 0 and s["win_rate"] is None and s["profit_factor"] is None


def test_html_page_embeds_the_plot_and_escapes_names(tmp_path):
    from tradefleet.report.html import plot_equity_and_drawdown, render_page, table

    png = plot_equity_and_drawdown({"default/<bot>": _curve([100, 90, 110])})
    page = render_page("Fleet report", "test", [
        ("Bots", table([{"bot": "default/<bot>", "sharpe": 1.5}], ["bot", "sharpe"])),
        ("Equity", f"<img src='{png}'>")])
    assert png.startswith("data:image/png;base64,") and len(png) > 1000
    assert "default/&lt;bot&gt;" in page and "<bot>" not in page.replace("<body>", "")
