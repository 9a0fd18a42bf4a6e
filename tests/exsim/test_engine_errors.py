"""exsim engine: every rejection carries Binance's code and message and changes no state.

Each case starts from the same account: 10,000 USDT, a 0.010 BTC long bought at 94220.0
(close of the first real BTCUSDT 1m kline of data/binance-um/klines) and a resting buy
limit with client order id "keep-1". After the rejection the account JSON, positions,
open orders, trades, income and the next order id must be exactly what they were.
"""

import csv
import gzip
import pathlib

import pytest

from tradefleet.exsim.engine import ERRORS, Engine, ExchangeError

KLINE = (pathlib.Path(__file__).resolve().parents[2] / "data" / "binance-um" / "klines"
         / "BTCUSDT-1m-2025-05-05_2025-05-11.csv.gz")


def first_kline() -> list[str]:
    with gzip.open(KLINE, "rt") as f:
        reader = csv.reader(f)
        next(reader)
        return next(reader)


def setup() -> Engine:
    e = Engine()
    e.create_account("a", "10000")
    r = first_kline()
    e.on_bar("BTCUSDT", int(r[0]), r[1], r[2], r[3], r[4], int(r[6]))
    e.place_order("a", "BTCUSDT", "BUY", "MARKET", quantity="0.010")
    e.place_order("a", "BTCUSDT", "BUY", "LIMIT", quantity="0.010", price="94000.0",
                  time_in_force="GTC", new_client_order_id="keep-1")
    return e


def snapshot(e: Engine) -> tuple:
    return (e.account("a"), e.position_risk("a"), e.position_mode("a"),
            [o.to_binance() for o in e.all_orders("a", "BTCUSDT")],
            [t.to_binance() for t in e.user_trades("a", "BTCUSDT")],
            [i.to_binance() for i in e.income("a", limit=1000)],
            e.leverage("a", "BTCUSDT"), e.margin_type("a", "BTCUSDT"))


def place(**kw):
    args = {"quantity": "0.010"} | kw
    return lambda e: e.place_order("a", args.pop("symbol", "BTCUSDT"), args.pop("side", "BUY"),
                                   args.pop("type", "LIMIT"), **args)


LIMIT = {"time_in_force": "GTC", "price": "94000.0"}

CASES = {
    "-1102 LIMIT without price": (-1102, place(time_in_force="GTC")),
    "-1102 LIMIT without quantity": (-1102, place(quantity=None, **LIMIT)),
    "-1102 LIMIT without timeInForce": (-1102, place(price="94000.0")),
    "-1102 STOP_MARKET without stopPrice": (-1102, place(type="STOP_MARKET", side="SELL")),
    "-1102 malformed quantity": (-1102, place(quantity="1e-x", **LIMIT)),
    "-1111 price finer than pricePrecision": (-1111, place(time_in_force="GTC", price="94000.123")),
    "-1111 quantity finer than quantityPrecision": (-1111, place(quantity="0.0101", **LIMIT)),
    "-4014 price off the tick": (-4014, place(time_in_force="GTC", price="94000.05")),
    "-4013 price below PRICE_FILTER minPrice": (-4013, place(time_in_force="GTC", price="261.00")),
    "-4002 price above PRICE_FILTER maxPrice": (-4002, place(time_in_force="GTC", price="4529764.1")),
    "-4005 quantity above LOT_SIZE maxQty": (-4005, place(quantity="1000.001", **LIMIT)),
    "-4005 MARKET quantity above MARKET_LOT_SIZE maxQty": (-4005, place(type="MARKET", quantity="120.001")),
    "-4003 zero quantity": (-4003, place(quantity="0", **LIMIT)),
    "-4003 negative quantity": (-4003, place(quantity="-0.010", **LIMIT)),
    "-4001 zero price": (-4001, place(time_in_force="GTC", price="0")),
    "-4006 zero stop price": (-4006, place(type="STOP_MARKET", side="SELL", stop_price="0")),
    "-4164 notional under MIN_NOTIONAL": (-4164, place(quantity="0.001", **LIMIT)),
    "-1116 unknown order type": (-1116, place(type="LIMIT_MAKER", **LIMIT)),
    "-1115 unknown time in force": (-1115, place(time_in_force="GTD", price="94000.0")),
    "-1117 unknown side": (-1117, place(side="HOLD", **LIMIT)),
    "-1121 unknown symbol": (-1121, place(symbol="DOGEUSDT", **LIMIT)),
    "-4031 unknown working type": (-4031, place(type="STOP_MARKET", side="SELL", stop_price="94000.0",
                                                working_type="INDEX_PRICE")),
    "-4016 limit buy above PERCENT_PRICE cap": (-4016, place(time_in_force="GTC", price="99000.0")),
    "-4024 limit sell below PERCENT_PRICE floor": (-4024, place(side="SELL", time_in_force="GTC",
                                                                price="89000.0")),
    "-2021 sell stop above the last price": (-2021, place(type="STOP_MARKET", side="SELL",
                                                          stop_price="94300.0")),
    "-2021 buy take-profit above the last price": (-2021, place(type="TAKE_PROFIT_MARKET",
                                                                stop_price="94300.0")),
    "-2022 reduce-only on the same side as the position": (-2022, place(type="MARKET", reduce_only=True)),
    "-5022 post-only that would take": (-5022, place(time_in_force="GTX", price="94220.1")),
    "-5021 FOK that cannot fill": (-5021, place(time_in_force="FOK", price="94000.0")),
    "-2019 margin insufficient": (-2019, place(type="MARKET", quantity="5")),
    "-4061 LONG position side in one-way mode": (-4061, place(position_side="LONG", **LIMIT)),
    "-4060 invalid position side": (-4060, place(position_side="UP", **LIMIT)),
    "-4015 client order id too long": (-4015, place(new_client_order_id="x" * 37, **LIMIT)),
    "-4015 client order id with a space": (-4015, place(new_client_order_id="a b", **LIMIT)),
    "-4116 duplicate client order id": (-4116, place(new_client_order_id="keep-1", **LIMIT)),
    "-4136 closePosition on a LIMIT": (-4136, place(quantity=None, close_position=True, **LIMIT)),
    "-4137 closePosition with a quantity": (-4137, place(type="STOP_MARKET", side="SELL",
                                                         stop_price="94000.0", close_position=True)),
    "-1106 reduceOnly with closePosition": (-1106, place(type="STOP_MARKET", side="SELL", quantity=None,
                                                         stop_price="94000.0", close_position=True,
                                                         reduce_only=True)),
    "-2015 unknown account": (-2015, lambda e: e.place_order("nobody", "BTCUSDT", "BUY", "MARKET",
                                                             quantity="0.010")),
    "-2011 cancel of an unknown order": (-2011, lambda e: e.cancel_order("a", "BTCUSDT", order_id=999)),
    "-2011 cancel of an unknown client id": (-2011, lambda e: e.cancel_order(
        "a", "BTCUSDT", orig_client_order_id="nope")),
    "-2013 query of an unknown order": (-2013, lambda e: e.get_order("a", "BTCUSDT", order_id=999)),
    "-1102 cancel without any id": (-1102, lambda e: e.cancel_order("a", "BTCUSDT")),
    "-4028 leverage above the maximum": (-4028, lambda e: e.change_leverage("a", "BTCUSDT", 200)),
    "-4059 position mode unchanged": (-4059, lambda e: e.change_position_mode("a", False)),
    "-4068 position mode with a position": (-4068, lambda e: e.change_position_mode("a", True)),
    "-4046 margin type unchanged": (-4046, lambda e: e.change_margin_type("a", "BTCUSDT", "CROSSED")),
    "-4047 margin type with open orders": (-4047, lambda e: e.change_margin_type("a", "BTCUSDT",
                                                                                  "ISOLATED")),
    "-1130 unknown income type": (-1130, lambda e: e.income("a", income_type="BONUS")),
}


@pytest.mark.parametrize("name", list(CASES))
def test_rejection_has_binances_code_and_changes_no_state(name):
    code, call = CASES[name]
    e = setup()
    before = snapshot(e)
    with pytest.raises(ExchangeError) as err:
        call(e)
    assert err.value.code == code
    assert err.value.msg and err.value.to_binance() == {"code": code, "msg": err.value.msg}
    assert snapshot(e) == before
    # No order id was consumed: the next accepted order takes the next number.
    last_id = max(o.order_id for o in e.all_orders("a", "BTCUSDT"))
    nxt = e.place_order("a", "BTCUSDT", "BUY", "LIMIT", quantity="0.010", price="93000.0",
                        time_in_force="GTC")
    assert nxt.order_id == last_id + 1


def test_messages_are_binances_texts():
    e = setup()
    with pytest.raises(ExchangeError) as err:
        CASES["-4164 notional under MIN_NOTIONAL"][1](e)
    assert err.value.msg == "Order's notional must be no smaller than 100 (unless you choose reduce only)."
    with pytest.raises(ExchangeError) as err:
        CASES["-1102 LIMIT without price"][1](e)
    assert err.value.msg == "Mandatory parameter 'price' was not sent, was empty/null, or malformed."
    with pytest.raises(ExchangeError) as err:
        CASES["-4028 leverage above the maximum"][1](e)
    assert err.value.msg == "Leverage 200 is not valid"


def test_every_raised_code_is_in_the_shared_table():
    assert {code for code, _ in CASES.values()} <= set(ERRORS)
