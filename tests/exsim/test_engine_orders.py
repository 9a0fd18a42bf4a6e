"""exsim engine: every order type and time in force, matched on real BTCUSDT 1m klines.

Rows used (data/binance-um/klines/BTCUSDT-1m-2025-05-05_2025-05-11.csv.gz, O/H/L/C):
  row 0  94230.2 / 94230.3 / 94159.7 / 94220.0   (down bar: path O→H→L→C)
  row 1  94220.0 / 94334.0 / 94209.0 / 94334.0   (up bar:   path O→L→H→C)
  row 2  94334.0 / 94348.1 / 94231.8 / 94239.3   (down bar)
  row 3  94239.4 / 94239.4 / 94162.5 / 94162.5   (down bar)
  row 4381 close 98145.1, row 4382 opens 98139.3 (a real 5.8 USDT gap)
"""

import csv
import functools
import gzip
import pathlib
from decimal import Decimal as D

import pytest

from tradefleet.exsim.engine import Engine, EngineConfig, ExchangeError

KLINES = pathlib.Path(__file__).resolve().parents[2] / "data" / "binance-um" / "klines"


@functools.cache
def btc_rows() -> list[list[str]]:
    with gzip.open(KLINES / "BTCUSDT-1m-2025-05-05_2025-05-11.csv.gz", "rt") as f:
        return list(csv.reader(f))[1:]


def feed(engine: Engine, *indexes: int) -> None:
    for i in indexes:
        r = btc_rows()[i]
        engine.on_bar("BTCUSDT", int(r[0]), r[1], r[2], r[3], r[4], int(r[6]))


def new_engine(**config) -> Engine:
    e = Engine(config=EngineConfig(**config))
    e.create_account("a", "10000")
    return e


def order(e: Engine, side: str, type_: str, qty: str | None = "0.010", **kw):
    return e.place_order("a", "BTCUSDT", side, type_, quantity=qty, **kw)


def test_real_rows_are_the_documented_ones():
    assert btc_rows()[0][1:5] == ["94230.2", "94230.3", "94159.7", "94220.0"]
    assert btc_rows()[4381][4] == "98145.1" and btc_rows()[4382][1] == "98139.3"


# ------------------------------------------------------------------------------- MARKET
def test_market_buy_fills_at_the_last_close_with_taker_fee():
    e = new_engine()
    feed(e, 0)
    o = order(e, "BUY", "MARKET")
    assert o.status_name == "FILLED" and o.avg_price == D("94220.0")
    (t,) = e.user_trades("a", "BTCUSDT")
    assert t.price == D("94220.0") and not t.maker
    assert t.commission == D("0.4711")          # 942.20 USDT × 5 bps


def test_market_slippage_makes_buys_dearer_and_sells_cheaper():
    e = new_engine(market_slippage_bps=D("10"))
    feed(e, 0)
    buy = order(e, "BUY", "MARKET")
    sell = order(e, "SELL", "MARKET")
    # 94220.0 × 10 bps = 94.22, rounded up to the tick against the trader: 94.3
    assert buy.avg_price == D("94314.3")
    assert sell.avg_price == D("94125.7")


def test_market_order_before_any_price_is_rejected_with_a_reason():
    e = new_engine()
    with pytest.raises(ExchangeError) as err:
        order(e, "BUY", "MARKET")
    assert err.value.code == -2010 and "no market price" in err.value.msg


def test_next_open_fill_model_fills_a_market_order_at_the_next_bar_open():
    e = new_engine(fill_model="next_open")
    feed(e, 0, 1, 2)
    o = order(e, "BUY", "MARKET")
    assert o.status_name == "NEW" and e.position("a", "BTCUSDT").lots == 0
    feed(e, 3)
    assert o.status_name == "FILLED" and o.avg_price == D("94239.4")   # row 3 open, not row 2 close


def test_next_open_market_order_can_be_cancelled_before_the_open():
    e = new_engine(fill_model="next_open")
    feed(e, 0)
    o = order(e, "BUY", "MARKET")
    e.cancel_order("a", "BTCUSDT", order_id=o.order_id)
    feed(e, 1)
    assert o.status_name == "CANCELED" and e.user_trades("a", "BTCUSDT") == []


# -------------------------------------------------------------------------------- LIMIT
def test_resting_limit_buy_fills_at_its_price_as_maker_when_the_bar_touches_it():
    e = new_engine()
    feed(e, 0)
    o = order(e, "BUY", "LIMIT", price="94210.0", time_in_force="GTC")
    assert o.status_name == "NEW"
    feed(e, 1)                                     # low 94209.0
    assert o.status_name == "FILLED" and o.avg_price == D("94210.0")
    (t,) = e.user_trades("a", "BTCUSDT")
    assert t.maker and t.commission == D("0.18842")   # 942.10 × 2 bps


def test_limit_that_the_path_does_not_reach_stays_open():
    e = new_engine()
    feed(e, 0)
    o = order(e, "BUY", "LIMIT", price="94200.0", time_in_force="GTC")
    feed(e, 1)                                     # low 94209.0 > 94200.0
    assert o.status_name == "NEW" and e.open_orders("a") == [o]


def test_marketable_limit_fills_at_once_as_taker_at_the_last_price():
    e = new_engine()
    feed(e, 0)
    o = order(e, "BUY", "LIMIT", price="94300.0", time_in_force="GTC")
    assert o.status_name == "FILLED" and o.avg_price == D("94220.0")
    assert not e.user_trades("a", "BTCUSDT")[0].maker


def test_ioc_that_does_not_cross_expires_without_a_fill():
    e = new_engine()
    feed(e, 0)
    o = order(e, "BUY", "LIMIT", price="94200.0", time_in_force="IOC")
    assert o.status_name == "EXPIRED" and o.executed_qty == 0 and e.open_orders("a") == []


def test_ioc_that_crosses_fills():
    e = new_engine()
    feed(e, 0)
    o = order(e, "SELL", "LIMIT", price="94220.0", time_in_force="IOC")   # at the bid
    assert o.status_name == "FILLED" and o.avg_price == D("94220.0")


def test_fok_that_cannot_fill_is_rejected_and_not_recorded():
    e = new_engine()
    feed(e, 0)
    with pytest.raises(ExchangeError) as err:
        order(e, "BUY", "LIMIT", price="94200.0", time_in_force="FOK")
    assert err.value.code == -5021
    assert e.all_orders("a", "BTCUSDT") == []


def test_fok_that_crosses_fills_completely():
    e = new_engine()
    feed(e, 0)
    o = order(e, "BUY", "LIMIT", price="94220.1", time_in_force="FOK")     # at the ask
    assert o.status_name == "FILLED" and o.executed_qty == D("0.010")


def test_post_only_that_would_take_is_rejected():
    e = new_engine()
    feed(e, 0)                                     # bid 94220.0, ask 94220.1
    with pytest.raises(ExchangeError) as err:
        order(e, "BUY", "LIMIT", price="94220.1", time_in_force="GTX")
    assert err.value.code == -5022
    with pytest.raises(ExchangeError):
        order(e, "SELL", "LIMIT", price="94220.0", time_in_force="GTX")


def test_post_only_inside_the_book_rests_and_fills_as_maker():
    e = new_engine()
    feed(e, 0)
    o = order(e, "BUY", "LIMIT", price="94220.0", time_in_force="GTX")
    assert o.status_name == "NEW"
    feed(e, 1)
    assert o.status_name == "FILLED" and e.user_trades("a", "BTCUSDT")[0].maker


def test_book_ticker_and_depth_follow_the_last_price_with_a_one_tick_spread():
    e = new_engine()
    feed(e, 0)
    bt = e.book_ticker("BTCUSDT")
    assert (bt["bidPrice"], bt["askPrice"]) == ("94220.00", "94220.10")
    depth = e.depth("BTCUSDT", 5)
    assert depth["bids"][1][0] == "94219.90" and depth["asks"][1][0] == "94220.20"


# ------------------------------------------------------------------ stops and take-profits
def test_sell_stop_market_triggers_when_the_path_crosses_and_fills_at_the_stop():
    e = new_engine()
    feed(e, 0)
    order(e, "BUY", "MARKET")
    stop = order(e, "SELL", "STOP_MARKET", stop_price="94200.0", reduce_only=True)
    feed(e, 1, 2)                                  # lows 94209.0 and 94231.8: not reached
    assert stop.status_name == "NEW"
    feed(e, 3)                                     # low 94162.5
    assert stop.status_name == "FILLED" and stop.avg_price == D("94200.0")
    assert e.position("a", "BTCUSDT").lots == 0
    assert e.user_trades("a", "BTCUSDT")[-1].realized_pnl == D("-0.2")   # (94200−94220)×0.01


def test_stop_fills_at_the_open_when_the_bar_gaps_through_it():
    e = new_engine()
    feed(e, 4381)                                  # close 98145.1
    order(e, "BUY", "MARKET")
    stop = order(e, "SELL", "STOP_MARKET", stop_price="98142.0", reduce_only=True)
    feed(e, 4382)                                  # opens at 98139.3, below the stop
    assert stop.avg_price == D("98139.3")


def test_stop_slippage_makes_the_stop_fill_worse():
    e = new_engine(stop_slippage_bps=D("1"))
    feed(e, 0)
    order(e, "BUY", "MARKET")
    stop = order(e, "SELL", "STOP_MARKET", stop_price="94200.0", reduce_only=True)
    feed(e, 1, 2, 3)
    # 94200.0 × 1 bp = 9.42 → 9.5 (whole ticks, against the seller)
    assert stop.avg_price == D("94190.5")


def test_buy_stop_opens_a_long_when_the_path_rises_through_it():
    e = new_engine()
    feed(e, 0)
    entry = order(e, "BUY", "STOP_MARKET", stop_price="94300.0")
    feed(e, 1)                                     # high 94334.0
    assert entry.avg_price == D("94300.0")
    assert e.position("a", "BTCUSDT").position_amt == D("0.010")


def test_up_bar_walks_low_before_high_so_the_stop_loss_fires_before_the_take_profit():
    e = new_engine()
    feed(e, 0)
    order(e, "BUY", "MARKET")                      # long at 94220.0
    sl = order(e, "SELL", "STOP_MARKET", stop_price="94210.0", reduce_only=True)
    tp = order(e, "SELL", "TAKE_PROFIT_MARKET", stop_price="94330.0", reduce_only=True)
    feed(e, 1)                                     # up bar: 94220 → 94209 → 94334 → 94334
    assert sl.status_name == "FILLED" and sl.avg_price == D("94210.0")
    assert tp.status_name == "EXPIRED"             # nothing left to reduce when it triggered


def test_down_bar_walks_high_before_low_so_the_take_profit_fires_first():
    e = new_engine()
    feed(e, 0, 1)
    order(e, "BUY", "MARKET")                      # long at 94334.0
    sl = order(e, "SELL", "STOP_MARKET", stop_price="94240.0", reduce_only=True)
    tp = order(e, "SELL", "TAKE_PROFIT_MARKET", stop_price="94340.0", reduce_only=True)
    feed(e, 2)                                     # down bar: 94334 → 94348.1 → 94231.8 → 94239.3
    assert tp.status_name == "FILLED" and tp.avg_price == D("94340.0")
    assert sl.status_name == "EXPIRED"


def test_stop_limit_becomes_a_limit_and_fills_as_taker_when_marketable_at_the_trigger():
    e = new_engine()
    feed(e, 0)
    order(e, "BUY", "MARKET")
    o = order(e, "SELL", "STOP", price="94190.0", stop_price="94200.0", time_in_force="GTC",
              reduce_only=True)
    feed(e, 1, 2, 3)
    assert o.status_name == "FILLED" and o.avg_price == D("94200.0")
    assert not e.user_trades("a", "BTCUSDT")[-1].maker


def test_take_profit_limit_rests_after_trigger_and_fills_later_as_maker():
    e = new_engine()
    feed(e, 0)
    # Buy take-profit (buy the dip): triggers at 94215.0 falling, then rests a buy at 94160.0.
    o = order(e, "BUY", "TAKE_PROFIT", price="94160.0", stop_price="94215.0", time_in_force="GTC")
    feed(e, 1)                                     # low 94209.0 triggers; 94160.0 not reached
    assert o.status_name == "NEW" and o.triggered
    feed(e, 2, 3)                                  # row 3 low 94162.5: still above 94160.0
    assert o.status_name == "NEW"
    e.on_bar("BTCUSDT", int(btc_rows()[4][0]), *btc_rows()[4][1:5])   # low 94150.1
    assert o.status_name == "FILLED" and o.avg_price == D("94160.0")
    assert e.user_trades("a", "BTCUSDT")[-1].maker


def test_mark_price_stop_ignores_the_contract_path_and_fires_on_the_mark():
    e = new_engine()
    feed(e, 0)
    order(e, "BUY", "MARKET")
    stop = order(e, "SELL", "STOP_MARKET", stop_price="94200.0", reduce_only=True,
                 working_type="MARK_PRICE")
    e.set_mark_price("BTCUSDT", "94250.0")
    feed(e, 1, 2, 3)                               # contract low 94162.5 crosses; mark does not
    assert stop.status_name == "NEW"
    e.set_mark_price("BTCUSDT", "94190.0")
    assert stop.status_name == "FILLED"
    assert stop.avg_price == D("94162.5")          # fills at the last trade price


def test_close_position_stop_closes_the_whole_position():
    e = new_engine()
    feed(e, 0)
    order(e, "BUY", "MARKET", qty="0.025")
    stop = order(e, "SELL", "STOP_MARKET", qty=None, stop_price="94200.0", close_position=True)
    feed(e, 1, 2, 3)
    assert stop.status_name == "FILLED" and stop.executed_qty == D("0.025")
    assert e.position("a", "BTCUSDT").lots == 0


def test_close_position_stop_expires_when_flat_at_trigger():
    e = new_engine()
    feed(e, 0)
    stop = order(e, "SELL", "STOP_MARKET", qty=None, stop_price="94200.0", close_position=True)
    feed(e, 1, 2, 3)
    assert stop.status_name == "EXPIRED" and e.user_trades("a", "BTCUSDT") == []


def test_second_close_position_order_in_the_same_direction_is_rejected():
    e = new_engine()
    feed(e, 0)
    order(e, "BUY", "MARKET")
    order(e, "SELL", "STOP_MARKET", qty=None, stop_price="94200.0", close_position=True)
    with pytest.raises(ExchangeError) as err:
        order(e, "SELL", "STOP_MARKET", qty=None, stop_price="94100.0", close_position=True)
    assert err.value.code == -4130


# -------------------------------------------------------------------------- reduce-only
def test_reduce_only_market_never_flips_the_position():
    e = new_engine()
    feed(e, 0)
    order(e, "BUY", "MARKET", qty="0.004")
    o = order(e, "SELL", "MARKET", qty="0.010", reduce_only=True)
    assert o.executed_qty == D("0.004") and o.status_name == "EXPIRED"
    assert e.position("a", "BTCUSDT").lots == 0


def test_resting_reduce_only_limit_is_trimmed_when_the_position_shrinks():
    e = new_engine()
    feed(e, 0)
    order(e, "BUY", "MARKET")
    tp = order(e, "SELL", "LIMIT", price="94400.0", time_in_force="GTC", reduce_only=True)
    order(e, "SELL", "MARKET", qty="0.004")
    assert tp.status_name == "NEW" and tp.orig_qty == D("0.006")


def test_resting_reduce_only_limit_expires_when_the_position_is_closed():
    e = new_engine()
    feed(e, 0)
    order(e, "BUY", "MARKET")
    tp = order(e, "SELL", "LIMIT", price="94400.0", time_in_force="GTC", reduce_only=True)
    order(e, "SELL", "MARKET")
    assert tp.status_name == "EXPIRED" and e.open_orders("a") == []


# ------------------------------------------------------------------ cancel / query / ids
def test_cancel_by_order_id_and_by_client_order_id():
    e = new_engine()
    feed(e, 0)
    a = order(e, "BUY", "LIMIT", price="94000.0", time_in_force="GTC")
    b = order(e, "BUY", "LIMIT", price="94000.0", time_in_force="GTC", new_client_order_id="bot1-entry-7")
    assert e.cancel_order("a", "BTCUSDT", order_id=a.order_id) is a
    assert e.cancel_order("a", "BTCUSDT", orig_client_order_id="bot1-entry-7") is b
    assert a.status_name == b.status_name == "CANCELED" and e.open_orders("a") == []


def test_cancel_all_cancels_only_that_symbols_open_orders():
    e = new_engine()
    feed(e, 0)
    e.on_bar("ETHUSDT", 0, "1807.87", "1807.88", "1806.25", "1806.82")
    order(e, "BUY", "LIMIT", price="94000.0", time_in_force="GTC")
    order(e, "SELL", "STOP_MARKET", stop_price="94000.0")
    eth = e.place_order("a", "ETHUSDT", "BUY", "LIMIT", quantity="0.1", price="1800",
                        time_in_force="GTC")
    cancelled = e.cancel_all_orders("a", "BTCUSDT")
    assert len(cancelled) == 2 and e.open_orders("a") == [eth]


def test_query_returns_closed_orders_and_cancel_of_a_filled_order_is_unknown():
    e = new_engine()
    feed(e, 0)
    o = order(e, "BUY", "MARKET", new_client_order_id="x1")
    assert e.get_order("a", "BTCUSDT", orig_client_order_id="x1").status_name == "FILLED"
    with pytest.raises(ExchangeError) as err:
        e.cancel_order("a", "BTCUSDT", order_id=o.order_id)
    assert err.value.code == -2011


def test_client_order_id_is_reusable_once_the_first_order_is_closed():
    e = new_engine()
    feed(e, 0)
    first = order(e, "BUY", "LIMIT", price="94000.0", time_in_force="GTC", new_client_order_id="dup")
    e.cancel_order("a", "BTCUSDT", order_id=first.order_id)
    second = order(e, "BUY", "LIMIT", price="94000.0", time_in_force="GTC", new_client_order_id="dup")
    assert e.get_order("a", "BTCUSDT", orig_client_order_id="dup") is second


def test_order_json_carries_the_binance_fields():
    e = new_engine()
    feed(e, 0)
    j = order(e, "BUY", "LIMIT", price="94000.0", time_in_force="GTC").to_binance()
    for field in ("orderId", "clientOrderId", "symbol", "side", "positionSide", "type", "origType",
                  "timeInForce", "price", "avgPrice", "stopPrice", "origQty", "executedQty",
                  "cumQuote", "status", "reduceOnly", "closePosition", "workingType",
                  "priceProtect", "time", "updateTime"):
        assert field in j
    assert (j["price"], j["origQty"], j["status"], j["avgPrice"]) == ("94000.00", "0.010", "NEW", "0.00000")


def test_bar_with_no_open_orders_only_moves_the_last_and_mark_price():
    e = new_engine()
    feed(e, 0)
    before = e.account("a")
    feed(e, 1)
    assert e.last_price("BTCUSDT") == e.mark_price("BTCUSDT") == D("94334.0")
    assert e.account("a") == before


def test_default_specs_match_binance_exchange_info():
    e = Engine()
    f = {s["symbol"]: {x["filterType"]: x for x in s["filters"]} for s in e.exchange_info()["symbols"]}
    assert f["BTCUSDT"]["PRICE_FILTER"]["tickSize"] == "0.10"
    assert f["BTCUSDT"]["LOT_SIZE"]["stepSize"] == "0.001"
    assert f["BTCUSDT"]["MIN_NOTIONAL"]["notional"] == "100"
    assert f["ETHUSDT"]["PRICE_FILTER"]["tickSize"] == "0.01"
    assert f["ETHUSDT"]["MIN_NOTIONAL"]["notional"] == "20"
    assert f["SOLUSDT"]["PRICE_FILTER"]["tickSize"] == "0.0100"
    assert f["SOLUSDT"]["LOT_SIZE"]["stepSize"] == "1"
    assert f["SOLUSDT"]["MIN_NOTIONAL"]["notional"] == "5"


def test_paper_mode_trade_price_fires_stops_like_a_gap():
    e = new_engine()
    feed(e, 0)
    order(e, "BUY", "MARKET")
    stop = order(e, "SELL", "STOP_MARKET", stop_price="94200.0", reduce_only=True)
    e.set_price("BTCUSDT", "94210.0")
    assert stop.status_name == "NEW"
    e.set_price("BTCUSDT", "94150.3")                  # jumps through the stop
    assert stop.status_name == "FILLED" and stop.avg_price == D("94150.3")


def test_inconsistent_bar_is_refused_with_the_reason():
    e = new_engine()
    with pytest.raises(ValueError, match="low <= open,close <= high"):
        e.on_bar("BTCUSDT", 0, "94230.2", "94200.0", "94159.7", "94220.0")
    assert e.last_price("BTCUSDT") == 0
