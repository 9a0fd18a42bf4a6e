"""exsim engine: positions (one-way and hedge), leverage, margin and funding.

Prices come from real BTCUSDT 1m klines (data/binance-um/klines): after row 0 the last
price is 94220.0, after row 1 94334.0, after row 2 94239.3. Funding rates and mark prices
are real rows of data/binance-um/funding and markprice.
"""

import csv
import functools
import gzip
import pathlib
from decimal import Decimal as D

import pytest

from tradefleet.exsim.engine import Engine, EngineConfig, ExchangeError

DATA = pathlib.Path(__file__).resolve().parents[2] / "data" / "binance-um"


@functools.cache
def rows(kind: str, name: str) -> list[list[str]]:
    with gzip.open(DATA / kind / name, "rt") as f:
        return list(csv.reader(f))[1:]


def btc(i: int) -> list[str]:
    return rows("klines", "BTCUSDT-1m-2025-05-05_2025-05-11.csv.gz")[i]


def feed(e: Engine, *indexes: int) -> None:
    for i in indexes:
        r = btc(i)
        e.on_bar("BTCUSDT", int(r[0]), r[1], r[2], r[3], r[4], int(r[6]))


def engine(balance: str = "10000") -> Engine:
    e = Engine()
    e.create_account("a", balance)
    return e


def market(e: Engine, side: str, qty: str, **kw):
    return e.place_order("a", "BTCUSDT", side, "MARKET", quantity=qty, **kw)


def funding_row(time_ms: int) -> tuple[str, str]:
    """(funding rate, mark price at the funding hour) from the real files."""
    rate = next(r[1] for r in rows("funding", "BTCUSDT-funding-2025-03-06_2025-06-24.csv.gz")
                if int(r[0]) // 1000 * 1000 == time_ms)
    mark = next(r[1] for r in rows("markprice", "BTCUSDT-markprice-8h-2025-03-06_2025-06-24.csv.gz")
                if int(r[0]) == time_ms)
    return rate, mark


# ------------------------------------------------------------------------- one-way mode
def test_entry_price_is_the_quantity_weighted_average():
    e = engine()
    feed(e, 0)
    market(e, "BUY", "0.010")                      # 942.20
    feed(e, 1)
    market(e, "BUY", "0.030")                      # 2830.02
    assert e.position("a", "BTCUSDT").entry_price == D("94305.5")


def test_partial_close_realizes_pnl_and_keeps_the_entry_price():
    e = engine()
    feed(e, 0)
    market(e, "BUY", "0.010")
    feed(e, 1)
    market(e, "BUY", "0.030")
    feed(e, 2)
    market(e, "SELL", "0.010")                     # at 94239.3
    assert e.user_trades("a", "BTCUSDT")[-1].realized_pnl == D("-0.662")  # (94239.3−94305.5)×0.01
    pos = e.position("a", "BTCUSDT")
    assert pos.position_amt == D("0.030") and pos.entry_price == D("94305.5")


def test_one_way_sell_larger_than_the_long_flips_to_a_short_at_the_fill_price():
    e = engine()
    feed(e, 0)
    market(e, "BUY", "0.010")
    feed(e, 1)
    market(e, "SELL", "0.030")
    assert e.user_trades("a", "BTCUSDT")[-1].realized_pnl == D("1.14")   # (94334−94220)×0.01
    pos = e.position("a", "BTCUSDT")
    assert pos.position_amt == D("-0.020") and pos.entry_price == D("94334.0")


def test_unrealized_pnl_is_marked_at_the_mark_price():
    e = engine()
    feed(e, 0)
    market(e, "BUY", "0.010")
    feed(e, 1)                                     # mark follows the close: 94334.0
    (risk,) = e.position_risk("a", "BTCUSDT")
    assert risk["unRealizedProfit"] == "1.14000000" and risk["markPrice"] == "94334.00000000"
    acct = e.account("a")
    assert D(acct["totalMarginBalance"]) == D(acct["totalWalletBalance"]) + D("1.14")


def test_short_position_reports_negative_amount_and_profits_when_price_falls():
    e = engine()
    feed(e, 1)
    market(e, "SELL", "0.010")                     # short at 94334.0
    feed(e, 2)                                     # 94239.3
    (risk,) = e.position_risk("a", "BTCUSDT")
    assert risk["positionAmt"] == "-0.010" and risk["unRealizedProfit"] == "0.94700000"


# --------------------------------------------------------------------------- hedge mode
def test_hedge_mode_holds_a_long_and_a_short_at_once():
    e = engine()
    e.change_position_mode("a", True)
    feed(e, 0)
    market(e, "BUY", "0.010", position_side="LONG")
    market(e, "SELL", "0.020", position_side="SHORT")
    risk = {r["positionSide"]: r["positionAmt"] for r in e.position_risk("a", "BTCUSDT")}
    assert risk == {"LONG": "0.010", "SHORT": "-0.020"}


def test_hedge_mode_closing_order_reduces_only_its_side():
    e = engine()
    e.change_position_mode("a", True)
    feed(e, 0)
    market(e, "BUY", "0.010", position_side="LONG")
    market(e, "SELL", "0.020", position_side="SHORT")
    feed(e, 1)
    market(e, "SELL", "0.010", position_side="LONG")
    assert e.position("a", "BTCUSDT", "LONG").lots == 0
    assert e.position("a", "BTCUSDT", "SHORT").position_amt == D("-0.020")
    assert e.user_trades("a", "BTCUSDT")[-1].realized_pnl == D("1.14")


def test_hedge_mode_closing_more_than_the_position_is_rejected():
    e = engine()
    e.change_position_mode("a", True)
    feed(e, 0)
    market(e, "BUY", "0.010", position_side="LONG")
    with pytest.raises(ExchangeError) as err:
        market(e, "SELL", "0.011", position_side="LONG")
    assert err.value.code == -2022


def test_hedge_mode_refuses_the_reduce_only_parameter():
    e = engine()
    e.change_position_mode("a", True)
    feed(e, 0)
    with pytest.raises(ExchangeError) as err:
        market(e, "SELL", "0.010", position_side="LONG", reduce_only=True)
    assert (err.value.code, err.value.msg) == (-1106, "Parameter 'reduceOnly' sent when not required.")


@pytest.mark.parametrize("dual, position_side", [(False, "LONG"), (True, None), (True, "BOTH")])
def test_position_side_must_match_the_position_mode(dual, position_side):
    e = engine()
    if dual:
        e.change_position_mode("a", True)
    feed(e, 0)
    with pytest.raises(ExchangeError) as err:
        market(e, "BUY", "0.010", position_side=position_side)
    assert err.value.code == -4061


def test_position_mode_change_to_the_same_mode_is_refused():
    e = engine()
    with pytest.raises(ExchangeError) as err:
        e.change_position_mode("a", False)
    assert err.value.code == -4059


def test_position_mode_cannot_change_with_an_open_position():
    e = engine()
    feed(e, 0)
    market(e, "BUY", "0.010")
    with pytest.raises(ExchangeError) as err:
        e.change_position_mode("a", True)
    assert err.value.code == -4068 and e.position_mode("a") is False


def test_position_mode_cannot_change_with_an_open_order():
    e = engine()
    feed(e, 0)
    e.place_order("a", "BTCUSDT", "BUY", "LIMIT", quantity="0.010", price="94000", time_in_force="GTC")
    with pytest.raises(ExchangeError) as err:
        e.change_position_mode("a", True)
    assert err.value.code == -4067


# ----------------------------------------------------------------------- leverage, margin
def test_leverage_change_within_the_symbol_maximum():
    e = engine()
    assert e.change_leverage("a", "BTCUSDT", 125)["leverage"] == 125
    assert e.leverage("a", "BTCUSDT") == 125


@pytest.mark.parametrize("bad", [0, 126, "abc", -3])
def test_leverage_outside_one_to_max_is_invalid(bad):
    e = engine()
    with pytest.raises(ExchangeError) as err:
        e.change_leverage("a", "BTCUSDT", bad)
    assert err.value.code == -4028 and e.leverage("a", "BTCUSDT") == 20


def test_new_exposure_needs_initial_margin_at_the_current_leverage():
    e = engine("100")
    feed(e, 0)
    # 0.030 BTC × 94220.0 = 2826.60 USDT; at 20x needs 141.33 + 1.41 fee > 100
    with pytest.raises(ExchangeError) as err:
        market(e, "BUY", "0.030")
    assert err.value.code == -2019
    e.change_leverage("a", "BTCUSDT", 125)         # 22.61 + 1.41 fee < 100
    assert market(e, "BUY", "0.030").status_name == "FILLED"


def test_closing_needs_no_margin():
    e = engine("100")
    e.change_leverage("a", "BTCUSDT", 125)
    feed(e, 0)
    market(e, "BUY", "0.030")
    e.change_leverage("a", "BTCUSDT", 1)           # now far under-margined for new exposure
    assert market(e, "SELL", "0.030").status_name == "FILLED"


def test_resting_limit_reserves_open_order_initial_margin():
    e = engine()
    feed(e, 0)
    e.place_order("a", "BTCUSDT", "BUY", "LIMIT", quantity="0.100", price="94000.0",
                  time_in_force="GTC")
    acct = e.account("a")
    assert acct["totalOpenOrderInitialMargin"] == "470.00000000"      # 9400 / 20
    assert acct["availableBalance"] == "9530.00000000"


def test_margin_type_is_stored_and_refused_when_unchanged_or_busy():
    e = engine()
    e.change_margin_type("a", "BTCUSDT", "ISOLATED")
    assert e.position_risk("a", "BTCUSDT")[0]["marginType"] == "isolated"
    with pytest.raises(ExchangeError) as err:
        e.change_margin_type("a", "BTCUSDT", "ISOLATED")
    assert err.value.code == -4046
    feed(e, 0)
    market(e, "BUY", "0.010")
    with pytest.raises(ExchangeError) as err:
        e.change_margin_type("a", "BTCUSDT", "CROSSED")
    assert err.value.code == -4048


def test_margin_type_cannot_change_with_open_orders():
    e = engine()
    feed(e, 0)
    e.place_order("a", "BTCUSDT", "BUY", "LIMIT", quantity="0.010", price="94000", time_in_force="GTC")
    with pytest.raises(ExchangeError) as err:
        e.change_margin_type("a", "BTCUSDT", "ISOLATED")
    assert err.value.code == -4047


def test_liquidation_price_follows_binances_cross_formula_for_one_position():
    e = engine("1000")
    feed(e, 0)
    market(e, "BUY", "0.100")                      # wallet 1000 − 4.711 fee = 995.289
    (risk,) = e.position_risk("a", "BTCUSDT")
    # (995.289 − 0.1×94220) / (0.1×0.004 − 0.1)
    assert risk["liquidationPrice"] == "84605.53212851"


# ------------------------------------------------------------------------------ funding
def test_positive_funding_rate_charges_longs_and_credits_shorts():
    rate, mark = funding_row(1746432000000)
    assert (rate, mark) == ("0.00003636", "94697.80169565")
    e = Engine()
    e.create_account("long", "10000")
    e.create_account("short", "10000")
    feed(e, 0)
    e.place_order("long", "BTCUSDT", "BUY", "MARKET", quantity="0.010")
    e.place_order("short", "BTCUSDT", "SELL", "MARKET", quantity="0.010")
    e.apply_funding("BTCUSDT", rate, mark, 1746432000000)
    # 0.010 × 94697.80169565 × 0.00003636 = 0.0344321206…
    (long_fee,) = e.income("long", income_type="FUNDING_FEE")
    (short_fee,) = e.income("short", income_type="FUNDING_FEE")
    assert long_fee.income == D("-0.03443212") and short_fee.income == D("0.03443212")


def test_negative_funding_rate_credits_longs():
    rate, mark = funding_row(1746403200000)
    assert rate == "-0.00002404"
    e = engine()
    feed(e, 0)
    market(e, "BUY", "0.010")
    before = e.wallet_balance("a")
    e.apply_funding("BTCUSDT", rate, mark, 1746403200000)
    assert e.wallet_balance("a") - before == D("0.02265542")   # 0.010 × 94240.5143… × 0.00002404


def test_funding_skips_flat_accounts():
    e = engine()
    feed(e, 0)
    assert e.apply_funding("BTCUSDT", "0.0001", "94220", 1746432000000) == []
    assert e.income("a", income_type="FUNDING_FEE") == []


def test_hedge_mode_protective_stop_closes_only_its_side():
    e = engine()
    e.change_position_mode("a", True)
    feed(e, 0)
    market(e, "BUY", "0.010", position_side="LONG")
    market(e, "SELL", "0.010", position_side="SHORT")
    stop = e.place_order("a", "BTCUSDT", "SELL", "STOP_MARKET", quantity="0.010",
                         stop_price="94200.0", position_side="LONG")
    feed(e, 1, 2, 3)                               # row 3 low 94162.5
    assert stop.status_name == "FILLED" and stop.avg_price == D("94200.0")
    assert e.position("a", "BTCUSDT", "LONG").lots == 0
    assert e.position("a", "BTCUSDT", "SHORT").position_amt == D("-0.010")


def test_next_open_market_order_reserves_margin_until_it_fills():
    e = Engine(config=EngineConfig(fill_model="next_open"))
    e.create_account("a", "10000")
    feed(e, 0)
    market(e, "BUY", "0.100")                      # 9422.0 / 20 = 471.10 reserved
    assert e.account("a")["totalOpenOrderInitialMargin"] == "471.10000000"
    feed(e, 1)
    acct = e.account("a")
    assert acct["totalOpenOrderInitialMargin"] == "0.00000000"
    assert acct["totalPositionInitialMargin"] == "471.67000000"   # 0.1 × 94334.0 / 20
