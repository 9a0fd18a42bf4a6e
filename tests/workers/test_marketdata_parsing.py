"""Market-data messages, Binance frame parsing and feed configuration (no I/O)."""

from __future__ import annotations

import random
from decimal import Decimal

import orjson
import pytest
from pydantic import ValidationError

from tradefleet.bus import codec
from tradefleet.bus.market_messages import BookMsg, KlineMsg, MarkMsg, decode_market
from tradefleet.workers.marketdata import Backoff, FeedConfig, next_open_time
from tradefleet.workers.marketdata.binance import (
    FrameError, parse_frame, rest_funding, rest_kline, routes,
)

KLINE = dict(venue="exsim", symbol="BTCUSDT", interval="1m", open_time=1746403200000,
             close_time=1746403259999, open="94230.2", high="94230.3", low="94159.7",
             close="94220.0", volume="465.598", event_time=1746403260000)
ROUTES = routes(["btcusdt@kline_1m", "btcusdt@markPrice", "btcusdt@bookTicker"])


def frame(stream: str, data: dict) -> bytes:
    return orjson.dumps({"stream": stream, "data": data})


def kline_data(**k) -> dict:
    base = {"t": 1746403200000, "T": 1746403259999, "s": "BTCUSDT", "i": "1m", "o": "94230.2",
            "c": "94220.0", "h": "94230.3", "l": "94159.7", "v": "465.598", "n": 12, "x": True,
            "q": "43870000.1", "V": "200.1", "Q": "18850000.2"}
    base.update(k)
    return {"e": "kline", "E": 1746403260001, "s": "BTCUSDT", "k": base}


# -- message models -------------------------------------------------------------------------


def test_kline_body_round_trips_with_decimal_text_intact():
    msg = KlineMsg(**KLINE)
    back = decode_market(codec.encode(msg), msg.subject)
    assert back == msg and format(back.close, "f") == "94220.0"
    assert (msg.subject, msg.msg_id) == ("md.exsim.BTCUSDT.kline.1m", "exsim:BTCUSDT:1m:1746403200000")


def test_kline_price_sent_as_a_json_float_is_refused():
    body = orjson.dumps({**KLINE, "close": 94220.0, "v": 1})
    with pytest.raises(codec.DecodeError, match="close: .*floats lose digits"):
        decode_market(body, "md.exsim.BTCUSDT.kline.1m")


def test_kline_whose_high_is_below_its_close_is_refused():
    with pytest.raises(ValidationError, match="high 94000 is below"):
        KlineMsg(**{**KLINE, "high": "94000"})


def test_body_on_another_symbols_subject_is_refused():
    with pytest.raises(codec.DecodeError, match="symbol 'BTCUSDT' != subject's 'ETHUSDT'"):
        decode_market(codec.encode(KlineMsg(**KLINE)), "md.exsim.ETHUSDT.kline.1m")


def test_crossed_book_is_refused():
    with pytest.raises(ValidationError, match="crossed book"):
        BookMsg(venue="exsim", symbol="BTCUSDT", bid_price="101", bid_qty="1", ask_price="100",
                ask_qty="1", update_id=1, event_time=1)


def test_time_sent_as_a_string_is_refused():
    with pytest.raises(ValidationError, match="event_time"):
        MarkMsg(venue="exsim", symbol="BTCUSDT", mark_price="1", funding_rate="0.0001",
                next_funding_time=1, event_time="1")


# -- Binance frames ---------------------------------------------------------------------------


def test_closed_kline_frame_becomes_a_kline_message_with_every_field():
    parsed = parse_frame("binanceusdm", frame("btcusdt@kline_1m", kline_data()), ROUTES)
    msg = parsed.msg
    assert isinstance(msg, KlineMsg)
    assert (msg.venue, msg.open_time, msg.close, msg.volume, msg.trades, msg.quote_volume,
            msg.taker_buy_volume, msg.event_time) == (
        "binanceusdm", 1746403200000, Decimal("94220.0"), Decimal("465.598"), 12,
        Decimal("43870000.1"), Decimal("200.1"), 1746403260001)


def test_kline_update_of_a_forming_bar_carries_no_message():
    parsed = parse_frame("exsim", frame("btcusdt@kline_1m", kline_data(x=False)), ROUTES)
    assert parsed.msg is None and parsed.route.kind == "kline"


def test_subscription_reply_is_not_a_market_message():
    assert parse_frame("exsim", b'{"result": null, "id": 1}', ROUTES) is None


@pytest.mark.parametrize("raw, reason", [
    (b"{oops", "not JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"error": {"code": 2, "msg": "Invalid request"}, "id": 3}', "venue error reply"),
    (frame("ethusdt@kline_1m", kline_data()), "was not subscribed"),
    (frame("btcusdt@kline_1m", {**kline_data(), "s": "ETHUSDT"}), "does not match"),
    (frame("btcusdt@kline_1m", kline_data(i="5m")), "interval '5m'"),
    (frame("btcusdt@kline_1m", kline_data(o="-1")), "invalid kline: open"),
    (frame("btcusdt@kline_1m", kline_data(x="yes")), "'x'"),
    (frame("btcusdt@markPrice", {"e": "markPriceUpdate", "E": "soon", "s": "BTCUSDT"}), "'E'"),
    (frame("btcusdt@markPrice", {"e": "markPriceUpdate", "E": 1, "s": "BTCUSDT", "p": "x",
                                 "r": "0.0001", "T": 2}), "invalid mark: mark_price"),
])
def test_malformed_frame_raises_frame_error_with_the_reason(raw, reason):
    with pytest.raises(FrameError, match=reason):
        parse_frame("exsim", raw, ROUTES)


def test_mark_frame_without_funding_fields_is_a_delivery_contract_mark():
    raw = frame("btcusdt@markPrice", {"e": "markPriceUpdate", "E": 5, "s": "BTCUSDT",
                                      "p": "94000.1", "i": "", "P": "94000", "r": "", "T": 0})
    msg = parse_frame("exsim", raw, ROUTES).msg
    assert (msg.mark_price, msg.index_price, msg.funding_rate, msg.next_funding_time) == (
        Decimal("94000.1"), None, None, None)


def test_rest_kline_row_becomes_a_rest_sourced_kline():
    row = [1746403200000, "94230.2", "94230.3", "94159.7", "94220.0", "465.598",
           1746403259999, "0", 0, "0", "0", "0"]
    msg = rest_kline("exsim", "BTCUSDT", "1m", row, received_ms=7)
    assert (msg.source, msg.event_time, msg.high) == ("rest", 7, Decimal("94230.3"))


def test_rest_funding_time_is_floored_to_the_hour_of_the_settlement():
    msg = rest_funding("exsim", "BTCUSDT", {"symbol": "BTCUSDT", "fundingRate": "-0.00001539",
                                            "fundingTime": 1741334400001, "markPrice": ""})
    assert (msg.funding_time, msg.funding_rate, msg.mark_price) == (
        1741334400000, Decimal("-0.00001539"), None)
    assert msg.msg_id == "exsim:BTCUSDT:funding:1741334400000"


# -- configuration and timing -----------------------------------------------------------------


def base_config(**overrides) -> dict:
    return {"venue": "binanceusdm", "ws_url": "wss://fstream.binance.com",
            "rest_url": "https://fapi.binance.com", "symbols": ["btcusdt", "ETHUSDT"], **overrides}


def test_config_routes_klines_and_mark_price_to_market_and_book_to_public_by_default():
    cfg = FeedConfig.model_validate(base_config(streams=["kline", "funding", "book"]))
    assert cfg.symbols == ["BTCUSDT", "ETHUSDT"]
    assert cfg.connection_urls() == {
        "market": "wss://fstream.binance.com/market/stream?streams=btcusdt@kline_1m/"
                  "btcusdt@markPrice/ethusdt@kline_1m/ethusdt@markPrice",
        "public": "wss://fstream.binance.com/public/stream?streams=btcusdt@bookTicker/"
                  "ethusdt@bookTicker",
    }


def test_single_routing_subscribes_every_stream_on_one_connection():
    cfg = FeedConfig.model_validate(base_config(ws_url="ws://127.0.0.1:9010", ws_routing="single",
                                                symbols=["BTCUSDT"], streams=["kline", "book"]))
    assert cfg.connection_urls() == {
        "stream": "ws://127.0.0.1:9010/stream?streams=btcusdt@kline_1m/btcusdt@bookTicker"}


@pytest.mark.parametrize("overrides, field", [
    ({"ws_url": "https://fstream.binance.com"}, "ws_url"),
    ({"ws_url": "wss://fstream.binance.com/market"}, "ends in /market"),
    ({"symbols": ["BTC/USDT:USDT"]}, "symbols"),
    ({"symbols": ["BTCUSDT", "btcusdt"]}, "more than once"),
    ({"intervals": ["7m"]}, "intervals"),
    ({"streams": ["trades"]}, "streams"),
    ({"symbols": [f"S{i}USDT" for i in range(101)]}, "Binance allows 200"),
    ({"backoff": {"min_s": 5, "max_s": 1}}, "max_s"),
])
def test_bad_config_is_refused_naming_the_field(overrides, field):
    with pytest.raises(ValidationError, match=field):
        FeedConfig.model_validate(base_config(**overrides))


def test_backoff_grows_exponentially_to_its_cap_with_jitter_below_the_base():
    backoff = Backoff(min_s=0.5, max_s=8, factor=2, jitter=0.5)
    rng = random.Random(1)
    for attempt, base in [(0, 0.5), (1, 1.0), (3, 4.0), (4, 8.0), (10, 8.0)]:
        delays = [backoff.delay(attempt, rng) for _ in range(50)]
        assert all(base / 2 <= d <= base for d in delays)
        assert max(delays) - min(delays) > base / 10


def test_next_kline_open_time_follows_calendar_months_for_1M():
    assert next_open_time("1m", 1746403200000) == 1746403260000
    assert next_open_time("1M", 1735689600000) == 1738368000000  # 2025-01-01 -> 02-01
    assert next_open_time("1M", 1764547200000) == 1767225600000  # 2025-12-01 -> 2026-01-01
