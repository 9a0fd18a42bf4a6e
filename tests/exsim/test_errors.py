"""Bad input gets Binance's code, message and HTTP status through real ccxt, and changes
nothing (balance, positions, open orders, open conditional orders, trades).

The error clients merge ccxt's USDⓈ-M error table (``ccxt_linear_errors``) so every code
raises the class it raises against fapi.binance.com; one test shows the classes a client
with only its URLs overridden gets instead.
"""

from __future__ import annotations

import time

import ccxt.async_support as ccxt
import httpx
import pytest

from tradefleet.exsim.server import ccxt_linear_errors

from .conftest import BTC, KEY, SECRET

pytestmark = pytest.mark.timeout(60)


async def snapshot(ex) -> dict:
    """Everything a rejected request must leave alone."""
    balance = await ex.fetch_balance()
    positions = await ex.fetch_positions()
    return {
        "wallet": balance["info"]["totalWalletBalance"],
        "free": balance["USDT"]["free"],
        "positions": sorted((p["symbol"], p["side"], p["contracts"], p["entryPrice"])
                            for p in positions),
        "orders": sorted(o["id"] for o in await ex.fetch_open_orders(BTC)),
        "algo_orders": sorted(o["id"] for o in await ex.fetch_open_orders(BTC, params={"trigger": True})),
        "trades": [t["id"] for t in await ex.fetch_my_trades(BTC)],
    }


@pytest.fixture
async def busy(make_exchange, admin):
    """An account with a long position, a resting LIMIT and a reduce-only STOP_MARKET."""
    ex = make_exchange()
    ccxt_linear_errors(ex)
    await ex.load_markets()
    admin.step(3)
    await ex.create_order(BTC, "market", "buy", 0.01)
    await ex.create_order(BTC, "limit", "buy", 0.01, 90_000)
    await ex.create_order(BTC, "market", "sell", 0.01, None, {"stopLossPrice": 90_000, "reduceOnly": True})
    before = await snapshot(ex)
    assert before["positions"] and before["orders"] and before["algo_orders"]
    return ex, before


async def assert_rejected(ex, before, call, exc_class, code: int) -> None:
    with pytest.raises(exc_class) as info:
        await call
    assert f'"code":{code}' in str(info.value)
    assert await snapshot(ex) == before


async def test_stale_timestamp_is_1021_invalid_nonce(busy, make_exchange):
    ex, before = busy
    stale = make_exchange(options={"fetchCurrencies": False, "timeDifference": 120_000})
    ccxt_linear_errors(stale)
    await stale.load_markets()
    await assert_rejected(ex, before, stale.create_order(BTC, "market", "buy", 0.01),
                          ccxt.InvalidNonce, -1021)


async def test_bad_signature_is_1022_authentication_error(busy, make_exchange):
    ex, before = busy
    wrong = make_exchange(secret="not-the-secret")
    await wrong.load_markets()
    await assert_rejected(ex, before, wrong.create_order(BTC, "market", "buy", 0.01),
                          ccxt.AuthenticationError, -1022)


async def test_malformed_api_key_is_2014_with_http_401(busy, make_exchange, base_url):
    ex, before = busy
    bad = make_exchange(key="not a key!")
    await bad.load_markets()
    await assert_rejected(ex, before, bad.create_order(BTC, "market", "buy", 0.01),
                          ccxt.AuthenticationError, -2014)
    resp = httpx.get(base_url + "/fapi/v2/balance", headers={"X-MBX-APIKEY": "not a key!"})
    assert resp.status_code == 401 and resp.json()["code"] == -2014


async def test_unknown_api_key_is_2015_with_http_401(busy, make_exchange, base_url):
    ex, before = busy
    unknown = make_exchange(key="unknown-key")
    await unknown.load_markets()
    await assert_rejected(ex, before, unknown.fetch_balance(), ccxt.AuthenticationError, -2015)
    resp = httpx.get(base_url + "/fapi/v2/balance", headers={"X-MBX-APIKEY": "unknown-key"})
    assert resp.status_code == 401
    assert resp.json() == {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}


async def test_missing_mandatory_parameter_is_1102_naming_it(busy):
    ex, before = busy
    call = ex.fapiPrivatePostOrder({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                    "timeInForce": "GTC", "quantity": "0.010"})
    await assert_rejected(ex, before, call, ccxt.BadRequest, -1102)
    with pytest.raises(ccxt.BadRequest, match="price"):
        await ex.fapiPrivatePostOrder({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                       "timeInForce": "GTC", "quantity": "0.010"})


def test_missing_timestamp_is_1102_with_http_400(base_url, admin):
    resp = httpx.get(base_url + "/fapi/v2/balance", params={"signature": "00"},
                     headers={"X-MBX-APIKEY": KEY})
    assert resp.status_code == 400
    assert resp.json() == {"code": -1102, "msg": "Mandatory parameter 'timestamp' was not "
                                                 "sent, was empty/null, or malformed."}


async def test_too_many_decimals_is_1111_precision(busy):
    ex, before = busy
    call = ex.fapiPrivatePostOrder({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                    "timeInForce": "GTC", "quantity": "0.0101",
                                    "price": "90000"})
    await assert_rejected(ex, before, call, ccxt.BadRequest, -1111)


async def test_price_off_the_tick_grid_is_4014_price_filter_failure(busy):
    ex, before = busy
    call = ex.fapiPrivatePostOrder({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                    "timeInForce": "GTC", "quantity": "0.010",
                                    "price": "90000.05"})
    await assert_rejected(ex, before, call, ccxt.BadRequest, -4014)


async def test_notional_below_minimum_is_4164_invalid_order(busy):
    ex, before = busy
    await assert_rejected(ex, before, ex.create_order(BTC, "limit", "buy", 0.001, 90_000),
                          ccxt.InvalidOrder, -4164)


async def test_unknown_order_type_is_1116(busy):
    ex, before = busy
    call = ex.fapiPrivatePostOrder({"symbol": "BTCUSDT", "side": "BUY", "type": "ICEBERG",
                                    "quantity": "0.010"})
    await assert_rejected(ex, before, call, ccxt.BadRequest, -1116)


async def test_conditional_type_on_the_plain_order_endpoint_is_4120(busy):
    ex, before = busy
    call = ex.fapiPrivatePostOrder({"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET",
                                    "stopPrice": "90000", "quantity": "0.010"})
    await assert_rejected(ex, before, call, ccxt.InvalidOrder, -4120)


async def test_cancel_of_an_unknown_order_is_2011_order_not_found(busy):
    ex, before = busy
    await assert_rejected(ex, before, ex.cancel_order("987654321", BTC), ccxt.OrderNotFound, -2011)


async def test_cancel_of_an_unknown_conditional_order_is_2011(busy):
    ex, before = busy
    await assert_rejected(ex, before, ex.cancel_order("987654321", BTC, {"trigger": True}),
                          ccxt.OrderNotFound, -2011)


async def test_query_of_an_unknown_order_is_2013_order_not_found(busy):
    ex, before = busy
    await assert_rejected(ex, before, ex.fetch_order("987654321", BTC), ccxt.OrderNotFound, -2013)


async def test_order_beyond_available_margin_is_2019_insufficient_funds(busy):
    ex, before = busy
    await assert_rejected(ex, before, ex.create_order(BTC, "market", "buy", 5),
                          ccxt.InsufficientFunds, -2019)


async def test_stop_that_would_trigger_at_once_is_2021(busy):
    ex, before = busy
    call = ex.create_order(BTC, "market", "sell", 0.01, None,
                           {"stopLossPrice": 95_000, "reduceOnly": True})
    await assert_rejected(ex, before, call, ccxt.OrderImmediatelyFillable, -2021)


async def test_reduce_only_that_would_increase_the_position_is_2022(busy):
    ex, before = busy
    call = ex.create_order(BTC, "market", "buy", 0.01, None, {"reduceOnly": True})
    await assert_rejected(ex, before, call, ccxt.InvalidOrder, -2022)


async def test_post_only_that_would_take_is_5022_order_not_fillable(busy):
    ex, before = busy
    call = ex.create_order(BTC, "limit", "buy", 0.01, 95_000, {"postOnly": True})
    await assert_rejected(ex, before, call, ccxt.OrderNotFillable, -5022)


async def test_unknown_symbol_is_1121(base_url, admin):
    resp = httpx.get(base_url + "/fapi/v1/klines", params={"symbol": "DOGEUSDT", "interval": "1m"})
    assert resp.status_code == 400 and resp.json() == {"code": -1121, "msg": "Invalid symbol."}


async def test_unknown_interval_is_1120(exchange):
    with pytest.raises(ccxt.BadRequest, match="-1120"):
        await exchange.fapiPublicGetKlines({"symbol": "BTCUSDT", "interval": "7m"})


async def test_non_numeric_price_is_1100_illegal_characters(busy):
    ex, before = busy
    call = ex.fapiPrivatePostOrder({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                    "timeInForce": "GTC", "quantity": "0.010", "price": "abc"})
    await assert_rejected(ex, before, call, ccxt.BadRequest, -1100)


async def test_with_only_urls_overridden_usdm_only_codes_raise_the_base_exchange_error(exchange, admin):
    """ccxt chooses its USDⓈ-M error table by host: with overridden URLs -2019 arrives as
    ExchangeError (code in the message); ccxt_linear_errors restores InsufficientFunds."""
    admin.step(3)
    with pytest.raises(ccxt.ExchangeError) as info:
        await exchange.create_order(BTC, "market", "buy", 5)
    assert type(info.value) is ccxt.ExchangeError and '"code":-2019' in str(info.value)


def test_signature_over_form_body_and_query_is_accepted(base_url, admin):
    """totalParams = query string + body, as Binance signs them."""
    import hashlib
    import hmac

    query = "symbol=BTCUSDT"
    body = f"leverage=7&timestamp={int(time.time() * 1000)}"
    sig = hmac.new(SECRET.encode(), (query + body).encode(), hashlib.sha256).hexdigest()
    resp = httpx.post(f"{base_url}/fapi/v1/leverage?{query}", content=f"{body}&signature={sig}",
                      headers={"X-MBX-APIKEY": KEY,
                               "Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 200 and resp.json()["leverage"] == 7
