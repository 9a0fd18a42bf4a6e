"""Execution building blocks without orders: client ids, rounding to the exchange filters
(read from a real exsim exchangeInfo through ccxt), the client factory, backoff."""

from __future__ import annotations

import random
from decimal import Decimal as D

import pytest

from tests.workers._execution import BTC, bot_spec
from tradefleet.api.tradingbot import TradingBotSpec
from tradefleet.workers.execution import (CLIENT_ID_PATTERN, ClientIds, RetryPolicy,
                                          build_exchange, client_order_id, pct_stop_fallback,
                                          rules_from_market)

# -- client order ids ---------------------------------------------------------------------


def test_client_order_id_is_a_pure_function_of_bot_symbol_signal_and_leg():
    a = client_order_id("default/momentum-btc", "BTCUSDT", "BTCUSDT-1746403260000-enter_long", "stop")
    assert a == client_order_id("default/momentum-btc", "BTCUSDT",
                                "BTCUSDT-1746403260000-enter_long", "stop")
    assert a != client_order_id("default/momentum-btc", "BTCUSDT",
                                "BTCUSDT-1746403320000-enter_long", "stop")
    assert a != client_order_id("default/other", "BTCUSDT", "BTCUSDT-1746403260000-enter_long", "stop")


def test_every_leg_fits_binance_client_order_id_pattern():
    ids = ClientIds("a-very-long-namespace-name/" + "b" * 63)
    for leg in ("entry", "stop", "tp1", "tp5", "trail-99999", "stop-12", "exit", "rollback",
                "stopfail", "drain", "reverse"):
        cid = ids.for_signal("BTCUSDT", "x" * 200, leg)
        assert CLIENT_ID_PATTERN.match(cid) and len(cid) <= 36, cid


def test_parse_recovers_tag_and_leg_of_own_ids_only():
    ids = ClientIds("default/momentum-btc")
    cid = ids.for_signal("BTCUSDT", "sig", "trail-7")
    parsed = ids.parse(cid)
    assert (parsed.tag, parsed.leg, parsed.stop_generation) == (ids.tag("BTCUSDT", "sig"),
                                                                "trail-7", 7)
    assert ids.parse(ids.for_signal("BTCUSDT", "sig", "stop")).stop_generation == 1
    assert ids.parse(ids.for_signal("BTCUSDT", "sig", "tp1")).stop_generation is None
    assert ids.parse(ClientIds("default/other").for_signal("BTCUSDT", "sig", "stop")) is None
    assert ids.parse("manual-order-1") is None and not ids.owns(None)


def test_malformed_legs_and_empty_signal_are_refused_by_name():
    ids = ClientIds("ns/bot")
    with pytest.raises(ValueError, match="leg must look like"):
        ids.for_signal("BTCUSDT", "sig", "Stop Loss")
    with pytest.raises(ValueError, match="leg must look like"):
        ids.for_signal("BTCUSDT", "sig", "trail-1234567")
    with pytest.raises(ValueError, match="signal_id must be a non-empty"):
        ids.tag("BTCUSDT", "")


# -- filters and rounding -----------------------------------------------------------------


@pytest.fixture
async def btc_rules(exsim):
    client = exsim.ccxt_client(enableRateLimit=False)
    try:
        await client.load_markets()
        yield rules_from_market(client.market(BTC))
    finally:
        await client.close()


async def test_filters_come_from_exchange_info_as_exact_decimals(btc_rules):
    r = btc_rules
    assert (r.symbol, r.market) == ("BTCUSDT", BTC)
    assert (r.tick_size, r.step_size, r.min_qty, r.min_notional) == \
        (D("0.10"), D("0.001"), D("0.001"), D("100"))
    f = r.sizing_filters()
    assert (f.step_size, f.min_qty, f.min_notional) == (D("0.001"), D("0.001"), D("100"))


async def test_quantities_round_down_to_the_step(btc_rules):
    assert btc_rules.floor_qty(D("0.0129")) == D("0.012")
    assert btc_rules.floor_qty(D("0.0009")) == 0


async def test_stops_round_toward_the_position_and_take_profits_toward_the_entry(btc_rules):
    r = btc_rules
    assert r.round_stop(D("93700.04"), "long") == D("93700.1")   # up: never a wider loss
    assert r.round_stop(D("95300.06"), "short") == D("95300.0")  # down
    assert r.round_take_profit(D("95300.06"), "long") == D("95300.0")
    assert r.round_take_profit(D("93700.04"), "short") == D("93700.1")
    assert r.round_stop(D("93700.1"), "long") == D("93700.1")    # on a tick: unchanged
    with pytest.raises(ValueError, match="price must be > 0"):
        r.round_stop(D("-1"), "long")


def test_pct_stop_fallback_is_a_share_of_the_mark():
    assert pct_stop_fallback("1.5")("BTCUSDT", D("100000")) == D("1500")
    with pytest.raises(ValueError, match="pct must be a percentage"):
        pct_stop_fallback(0)


# -- client factory -----------------------------------------------------------------------


def _spec(**overrides) -> TradingBotSpec:
    base = {"venue": "binanceusdm", "mode": "testnet", "symbols": ["BTCUSDT"],
            "strategy": {"name": "ema_cross"}, "credentialsSecretRef": {"name": "keys"},
            "execution": {"orderTimeoutMs": 2500}}
    base.update(overrides)
    return TradingBotSpec.model_validate(base)


async def test_exsim_client_overrides_only_the_futures_urls():
    ex = build_exchange(bot_spec("http://exsim:9010/"), "k", "s")
    try:
        api = ex.urls["api"]
        assert api["fapiPrivate"] == "http://exsim:9010/fapi/v1"
        assert api["fapiPrivateV2"] == "http://exsim:9010/fapi/v2"
        assert api["fapiPublicV3"] == "http://exsim:9010/fapi/v3"
        assert api["public"].startswith("https://api.binance.com")  # untouched
        assert ex.options["fetchCurrencies"] is False
        assert ex.exceptions["exact"]["-2021"].__name__ == "OrderImmediatelyFillable"
    finally:
        await ex.close()


async def test_testnet_client_uses_ccxt_sandbox_urls_and_the_spec_timeout():
    ex = build_exchange(_spec(), "k", "s")
    try:
        assert ex.urls["api"]["fapiPrivate"].startswith("https://testnet.binancefuture.com")
        assert ex.timeout == 2500 and ex.options["recvWindow"] == 2500
    finally:
        await ex.close()


async def test_live_client_keeps_ccxt_defaults():
    ex = build_exchange(_spec(mode="live"), "k", "s")
    try:
        assert ex.urls["api"]["fapiPrivate"] == "https://fapi.binance.com/fapi/v1"
    finally:
        await ex.close()


def test_client_needs_both_keys_and_an_exsim_url():
    with pytest.raises(ValueError, match="api_key and api_secret"):
        build_exchange(_spec(), "k", "")
    no_url = TradingBotSpec.model_validate({"venue": "exsim", "symbols": ["BTCUSDT"],
                                            "strategy": {"name": "ema_cross"}})
    with pytest.raises(ValueError, match="endpoints.restUrl is required"):
        build_exchange(no_url, "k", "s")


# -- backoff ------------------------------------------------------------------------------


def test_backoff_doubles_with_jitter_and_is_capped():
    policy = RetryPolicy(max_retries=5, base_delay_ms=100, max_delay_ms=800, rng=random.Random(1))
    delays = [policy.delay_ms(n) for n in range(1, 6)]
    for n, d in enumerate(delays, start=1):
        ceiling = min(800, 100 * 2 ** (n - 1))
        assert ceiling / 2 <= d <= ceiling
    assert policy.attempts == 6


def test_retry_policy_refuses_nonsense_by_field():
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError, match="base_delay_ms"):
        RetryPolicy(base_delay_ms=0)
