"""Market data through unmodified ccxt: markets, klines, tickers, book, funding."""

from __future__ import annotations

from decimal import Decimal

import pytest

from .conftest import BTC, ETH, csv_funding, csv_klines

pytestmark = pytest.mark.timeout(60)


async def test_load_markets_exposes_the_three_perpetuals(exchange):
    assert {BTC, ETH, "SOL/USDT:USDT"} <= set(exchange.markets)
    m = exchange.market(BTC)
    assert (m["id"], m["swap"], m["linear"], m["settle"], m["active"]) == ("BTCUSDT", True, True, "USDT", True)


async def test_markets_carry_binance_filters_as_precision_and_limits(exchange):
    m = exchange.market(BTC)
    assert m["precision"]["price"] == 0.1 and m["precision"]["amount"] == 0.001
    assert m["limits"]["amount"]["min"] == 0.001 and m["limits"]["cost"]["min"] == 100
    assert m["limits"]["market"]["max"] == 120
    sol = exchange.market("SOL/USDT:USDT")
    assert sol["precision"]["amount"] == 1 and sol["limits"]["cost"]["min"] == 5


async def test_exchange_info_lists_the_four_filters_of_every_symbol(exchange):
    info = await exchange.fapiPublicGetExchangeInfo()
    for symbol in info["symbols"]:
        kinds = {f["filterType"] for f in symbol["filters"]}
        assert {"PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "MIN_NOTIONAL"} <= kinds
        assert "TRAILING_STOP_MARKET" not in symbol["orderTypes"]


async def test_ohlcv_without_since_ends_at_the_replay_clock(exchange, admin):
    rows = csv_klines("BTCUSDT")
    admin.step(10)
    candles = await exchange.fetch_ohlcv(BTC, "1m", limit=4)
    assert [c[0] for c in candles] == [int(r["open_time"]) for r in rows[6:10]]


async def test_ohlcv_is_empty_before_the_first_step(exchange, admin):
    assert await exchange.fetch_ohlcv(BTC, "1m") == []


async def test_ticker_last_price_is_the_last_replayed_close(exchange, admin):
    rows = csv_klines("ETHUSDT")
    admin.step(2)
    ticker = await exchange.fetch_ticker(ETH)
    assert ticker["last"] == float(rows[1]["close"]) and ticker["open"] == float(rows[0]["open"])


async def test_last_prices_come_from_ticker_price(exchange, admin):
    rows = csv_klines("BTCUSDT")
    admin.step(1)
    prices = await exchange.fetch_last_prices([BTC])
    assert prices[BTC]["price"] == float(rows[0]["close"])


async def test_book_ticker_and_order_book_quote_one_tick_around_the_last_close(exchange, admin):
    close = Decimal(csv_klines("BTCUSDT")[0]["close"])
    admin.step(1)
    book = await exchange.fetch_order_book(BTC, 5)
    bid, ask = Decimal(str(book["bids"][0][0])), Decimal(str(book["asks"][0][0]))
    assert bid <= close <= ask and ask - bid == Decimal("0.1")
    quotes = await exchange.fetch_bids_asks([BTC])
    assert quotes[BTC]["bid"] == float(bid) and quotes[BTC]["ask"] == float(ask)


async def test_funding_rate_is_the_last_settled_recorded_rate(exchange, admin):
    first = int(csv_klines("BTCUSDT")[0]["open_time"])
    settled = [r for r in csv_funding("BTCUSDT") if int(r["funding_time"]) <= first]
    admin.step(1)
    rate = await exchange.fetch_funding_rate(BTC)
    assert rate["fundingRate"] == float(settled[-1]["funding_rate"])
    assert rate["fundingTimestamp"] == first + 8 * 3600 * 1000
    assert rate["markPrice"] == float(csv_klines("BTCUSDT")[0]["close"])


async def test_funding_rate_history_stops_at_the_replay_clock(exchange, admin):
    first = int(csv_klines("BTCUSDT")[0]["open_time"])
    recorded = [r for r in csv_funding("BTCUSDT") if int(r["funding_time"]) < first]
    history = await exchange.fetch_funding_rate_history(BTC, limit=5)
    assert [h["timestamp"] for h in history] == [int(r["funding_time"]) for r in recorded[-5:]]
    assert [h["fundingRate"] for h in history] == [float(r["funding_rate"]) for r in recorded[-5:]]


async def test_mark_price_klines_follow_the_replayed_trade_prices(exchange, admin):
    rows = csv_klines("SOLUSDT")
    admin.step(3)
    candles = await exchange.fetch_ohlcv("SOL/USDT:USDT", "1m", params={"price": "mark"})
    assert [c[:5] for c in candles] == [[int(r["open_time"]), *(float(r[k]) for k in
                                         ("open", "high", "low", "close"))] for r in rows[:3]]
