"""exsim engine: user-data stream events in Binance's ORDER_TRADE_UPDATE / ACCOUNT_UPDATE shape.

Prices from the first real BTCUSDT 1m klines (data/binance-um/klines): last 94220.0 after
row 0; row 3 falls to 94162.5.
"""

import csv
import gzip
import pathlib

from tradefleet.exsim.engine import Engine

KLINE = (pathlib.Path(__file__).resolve().parents[2] / "data" / "binance-um" / "klines"
         / "BTCUSDT-1m-2025-05-05_2025-05-11.csv.gz")


def rows() -> list[list[str]]:
    with gzip.open(KLINE, "rt") as f:
        return list(csv.reader(f))[1:5]


def feed(e: Engine, *indexes: int) -> None:
    for i in indexes:
        r = rows()[i]
        e.on_bar("BTCUSDT", int(r[0]), r[1], r[2], r[3], r[4], int(r[6]))


def setup():
    e = Engine()
    events = []
    e.subscribe(events.append)
    e.create_account("a", "10000")
    e.create_account("b", "10000")
    feed(e, 0)
    events.clear()
    return e, events


def order_updates(events):
    return [(x.payload["o"]["x"], x.payload["o"]["X"]) for x in events if x.event_type == "ORDER_TRADE_UPDATE"]


def test_market_order_streams_new_then_trade_then_account_update():
    e, events = setup()
    e.place_order("a", "BTCUSDT", "BUY", "MARKET", quantity="0.010", new_client_order_id="c1")
    assert [x.event_type for x in events] == ["ORDER_TRADE_UPDATE", "ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE"]
    assert order_updates(events) == [("NEW", "NEW"), ("TRADE", "FILLED")]
    trade = events[1].payload["o"]
    assert (trade["c"], trade["l"], trade["L"], trade["n"], trade["N"], trade["m"]) == (
        "c1", "0.010", "94220.00", "0.47110000", "USDT", False)
    acct = events[2].payload["a"]
    assert acct["m"] == "ORDER" and acct["B"][0]["wb"] == "9999.52890000"
    assert acct["P"][0]["pa"] == "0.010" and acct["P"][0]["ps"] == "BOTH"


def test_events_carry_the_account_they_belong_to():
    e, events = setup()
    e.place_order("b", "BTCUSDT", "SELL", "MARKET", quantity="0.010")
    assert {x.account_id for x in events} == {"b"}


def test_cancel_streams_canceled():
    e, events = setup()
    o = e.place_order("a", "BTCUSDT", "BUY", "LIMIT", quantity="0.010", price="94000",
                      time_in_force="GTC")
    e.cancel_order("a", "BTCUSDT", order_id=o.order_id)
    assert order_updates(events) == [("NEW", "NEW"), ("CANCELED", "CANCELED")]


def test_triggered_stop_reports_market_type_with_its_original_type():
    e, events = setup()
    e.place_order("a", "BTCUSDT", "BUY", "MARKET", quantity="0.010")
    e.place_order("a", "BTCUSDT", "SELL", "STOP_MARKET", quantity="0.010", stop_price="94200.0",
                  reduce_only=True)
    events.clear()
    feed(e, 1, 2, 3)
    upd = [x.payload["o"] for x in events if x.event_type == "ORDER_TRADE_UPDATE"]
    assert [(u["x"], u["o"], u["ot"]) for u in upd] == [("NEW", "MARKET", "STOP_MARKET"),
                                                         ("TRADE", "MARKET", "STOP_MARKET")]
    assert upd[1]["rp"] == "-0.20000000" and upd[1]["R"] is True


def test_funding_streams_an_account_update_with_the_balance_change():
    e, events = setup()
    e.place_order("a", "BTCUSDT", "BUY", "MARKET", quantity="0.010")
    events.clear()
    e.apply_funding("BTCUSDT", "0.0001", "94220.0", 1746432000000)
    (ev,) = events
    assert ev.event_type == "ACCOUNT_UPDATE" and ev.event_time == 1746432000000
    assert ev.payload["a"]["m"] == "FUNDING_FEE"
    assert ev.payload["a"]["B"][0]["bc"] == "-0.09422000"        # −0.010 × 94220 × 0.0001


def test_ioc_that_expires_streams_expired():
    e, events = setup()
    e.place_order("a", "BTCUSDT", "BUY", "LIMIT", quantity="0.010", price="94000",
                  time_in_force="IOC")
    assert order_updates(events) == [("NEW", "NEW"), ("EXPIRED", "EXPIRED")]


def test_unsubscribed_listener_receives_nothing_more():
    e, events = setup()
    other = []
    stop = e.subscribe(other.append)
    stop()
    e.place_order("a", "BTCUSDT", "BUY", "MARKET", quantity="0.010")
    assert other == [] and events
