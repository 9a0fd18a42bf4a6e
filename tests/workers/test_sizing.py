"""Risk-per-trade sizing: what a user expects from riskPctPerTrade and the caps."""

from decimal import Decimal as D

import pytest

from tradefleet.workers.sizing import MarketFilters, SizingRefused, size_position

BTC = MarketFilters(step_size=D("0.001"), min_qty=D("0.001"), min_notional=D("100"))


def test_losing_at_the_stop_costs_the_risk_percent_of_equity():
    qty = size_position(equity_usdt=D(10_000), risk_pct=D("1"), entry_price=D(100_000),
                        stop_price=D(99_000), max_notional_usdt=D(1_000_000), filters=BTC)
    assert qty == D("0.100")
    assert qty * (D(100_000) - D(99_000)) == D(100)  # 1 % of 10,000 USDT


def test_quantity_rounds_down_to_step_size_never_up():
    qty = size_position(equity_usdt=D(10_000), risk_pct=D("1"), entry_price=D(100_000),
                        stop_price=D(98_500), max_notional_usdt=D(1_000_000), filters=BTC)
    assert qty == D("0.066")  # 0.0666… rounded down
    assert qty * D(1_500) <= D(100)


def test_max_position_notional_caps_the_size():
    qty = size_position(equity_usdt=D(10_000), risk_pct=D("5"), entry_price=D(100_000),
                        stop_price=D(99_900), max_notional_usdt=D(5_000), filters=BTC)
    assert qty == D("0.050")


def test_short_stop_above_entry_sizes_the_same_way():
    qty = size_position(equity_usdt=D(10_000), risk_pct=D("1"), entry_price=D(100_000),
                        stop_price=D(101_000), max_notional_usdt=D(1_000_000), filters=BTC)
    assert qty == D("0.100")


def test_below_min_notional_is_refused_with_the_numbers():
    with pytest.raises(SizingRefused, match=r"notional .* below the minimum 100"):
        size_position(equity_usdt=D(500), risk_pct=D("0.1"), entry_price=D(100_000),
                      stop_price=D(99_000), max_notional_usdt=D(1_000_000),
                      filters=MarketFilters(D("0.0001"), D("0.0001"), D("100")))


def test_below_min_quantity_is_refused():
    with pytest.raises(SizingRefused, match="below the minimum 0.001"):
        size_position(equity_usdt=D(100), risk_pct=D("0.1"), entry_price=D(100_000),
                      stop_price=D(90_000), max_notional_usdt=D(1_000_000), filters=BTC)


def test_stop_at_entry_is_refused():
    with pytest.raises(SizingRefused, match="no stop distance"):
        size_position(equity_usdt=D(10_000), risk_pct=D("1"), entry_price=D(100),
                      stop_price=D(100), max_notional_usdt=D(1_000), filters=BTC)
