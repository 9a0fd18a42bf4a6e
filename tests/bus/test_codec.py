"""Message bodies: versioned JSON, Decimal as strings, typed decode errors, msg ids."""

from decimal import Decimal

import orjson
import pytest
from pydantic import BaseModel

from tradefleet.bus import codec


class Fill(BaseModel):
    symbol: str
    price: Decimal
    qty: Decimal
    ts: int


def test_encode_adds_schema_version_and_writes_decimals_as_plain_strings():
    data = codec.encode({"price": Decimal("64250.10"), "qty": Decimal("1E-8")})
    assert orjson.loads(data) == {"price": "64250.10", "qty": "0.00000001", "v": 1}


def test_decimal_survives_a_round_trip_exactly():
    fill = Fill(symbol="BTCUSDT", price=Decimal("0.1"), qty=Decimal("0.2"), ts=1_700_000_000_000)
    back = codec.decode(codec.encode(fill), model=Fill)
    assert back == fill and back.price + back.qty == Decimal("0.3")


def test_non_finite_decimal_is_refused():
    with pytest.raises(codec.EncodeError, match="Decimal NaN is not a finite amount"):
        codec.encode({"price": Decimal("NaN")})


def test_decode_error_carries_the_raw_payload():
    with pytest.raises(codec.DecodeError) as info:
        codec.decode(b"{not json", subject="md.exsim.BTCUSDT.mark")
    assert info.value.raw == b"{not json"
    assert info.value.subject == "md.exsim.BTCUSDT.mark"
    assert "not JSON" in info.value.reason


def test_decode_requires_a_schema_version():
    with pytest.raises(codec.DecodeError, match="field 'v' .* must be an integer >= 1, got None"):
        codec.decode(b'{"price": "1"}')


def test_decode_refuses_newer_schema_versions_with_upgrade_advice():
    with pytest.raises(codec.UnsupportedVersion, match="v=2 is newer than supported v<=1; upgrade"):
        codec.decode(b'{"v": 2}')


def test_decode_with_model_names_the_invalid_field():
    with pytest.raises(codec.DecodeError, match=r"invalid Fill: price: .*decimal"):
        codec.decode(b'{"v":1,"symbol":"BTCUSDT","price":"abc","qty":"1","ts":1}', model=Fill)


def test_kline_msg_id_is_deterministic_from_the_kline_key():
    a = codec.kline_msg_id("binanceusdm", "BTCUSDT", "1m", 1_700_000_040_000)
    assert a == "binanceusdm:BTCUSDT:1m:1700000040000"
    assert a == codec.kline_msg_id("binanceusdm", "BTCUSDT", "1m", 1_700_000_040_000)


def test_msg_id_rejects_parts_with_separator():
    with pytest.raises(ValueError, match=r"msg_id part 1 'a:b'"):
        codec.msg_id("x", "a:b")


def test_dead_letter_headers_drop_jetstream_control_headers_but_keep_msg_id():
    h = codec.dead_letter_headers(
        "md.exsim.BTCUSDT.mark",
        ValueError("bad\nline"),
        {"Nats-Msg-Id": "id1", "Nats-Expected-Stream": "MARKET", "traceparent": "00-ab-cd-01"},
    )
    assert h["Nats-Msg-Id"] == "id1" and "Nats-Expected-Stream" not in h
    assert h["traceparent"] == "00-ab-cd-01"
    assert (h[codec.DLQ_ERROR], h[codec.DLQ_ERROR_TYPE]) == ("bad line", "ValueError")
