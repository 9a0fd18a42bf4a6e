"""Public market data (security NONE), Binance USDⓈ-M "Market Data" endpoints.

Prices come from the replay: the last replayed close is the last price and the mark price;
klines and funding history stop at the replay clock (no look-ahead). ``serverTime`` is the
real wall clock, because clients sign requests with it.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING

from ...engine.enums import ORDER_TYPE_CODE
from ..errors import ApiError
from ..klines import INTERVAL_MS, bar_range, kline_array, price_kline_array
from ..params import Params
from ..replay import next_funding_time
from .common import NONE, endpoint, require_symbol

if TYPE_CHECKING:
    from ..app import Exsim

__all__ = ["ROUTES"]


def _now_ms() -> int:
    return int(time.time() * 1000)


def ping(ex: "Exsim", params: Params) -> dict:
    """``GET /fapi/v1/ping`` → ``{}``."""
    return {}


def server_time(ex: "Exsim", params: Params) -> dict:
    """``GET /fapi/v1/time`` → ``{"serverTime": <wall clock ms>}``."""
    return {"serverTime": _now_ms()}


def exchange_info(ex: "Exsim", params: Params) -> dict:
    """``GET /fapi/v1/exchangeInfo``: rate limits, the USDT asset and one entry per replayed
    symbol with PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE, MIN_NOTIONAL (and more) filters.
    ``orderTypes`` lists only the types the engine matches."""
    symbols = []
    for spec in ex.specs.values():
        info = spec.exchange_info()
        info["orderTypes"] = [t for t in info["orderTypes"] if t in ORDER_TYPE_CODE]
        symbols.append(info)
    return {
        "timezone": "UTC",
        "serverTime": _now_ms(),
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": 2400},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
        ],
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
        "symbols": symbols,
    }


def klines(ex: "Exsim", params: Params) -> list:
    """``GET /fapi/v1/klines?symbol&interval[&startTime&endTime&limit]`` (limit ≤ 1500,
    default 500): recorded bars that closed by the replay clock (see :mod:`..klines`)."""
    return [kline_array(b) for b in _bars(ex, params, require_symbol(ex, params))]


def price_klines(ex: "Exsim", params: Params) -> list:
    """``GET /fapi/v1/markPriceKlines?symbol&...`` and ``indexPriceKlines?pair&...``: the
    mark and index follow the trade price in a replay, so these are the klines' OHLC."""
    raw = params.optional("symbol") or params.optional("pair")
    if raw is None:
        raise ApiError(-1102, "symbol")
    symbol = raw.upper()
    if symbol not in ex.specs:
        raise ApiError(-1121)
    return [price_kline_array(b) for b in _bars(ex, params, symbol)]


def _bars(ex: "Exsim", params: Params, symbol: str) -> list:
    interval = params.required("interval")
    if interval not in INTERVAL_MS:
        raise ApiError(-1120)
    limit = params.limit(default=500, maximum=1500)
    start, end = params.integer("startTime"), params.integer("endTime")
    if start is not None and end is not None and start > end:
        raise ApiError(-1130, "startTime")
    return bar_range(ex.data.symbols[symbol], INTERVAL_MS[interval], ex.replay.clock_ms,
                     start, end, limit)


def _last_price(ex: "Exsim", symbol: str) -> str:
    price = ex.replay.state[symbol].last_price
    if price is None:  # nothing replayed yet: the first bar's open is the price at the start
        price = ex.data.symbols[symbol].kline(0).open
    return price


def _premium(ex: "Exsim", symbol: str) -> dict:
    st = ex.replay.state[symbol]
    clock = ex.replay.clock_ms
    mark = f"{Decimal(_last_price(ex, symbol)):.8f}"
    return {"symbol": symbol, "markPrice": mark, "indexPrice": mark,
            "estimatedSettlePrice": mark, "lastFundingRate": st.funding_rate,
            "interestRate": "0.00010000", "nextFundingTime": next_funding_time(clock - 1),
            "time": clock}


def premium_index(ex: "Exsim", params: Params) -> dict | list:
    """``GET /fapi/v1/premiumIndex[?symbol]``: mark price (= last replayed close; the
    recording has no index), ``lastFundingRate`` = the last *settled* recorded rate (no
    look-ahead), ``nextFundingTime`` = next 00/08/16 UTC, ``time`` = replay clock."""
    symbol = require_symbol(ex, params, required=False)
    if symbol is not None:
        return _premium(ex, symbol)
    return [_premium(ex, s) for s in ex.specs]


def funding_rate(ex: "Exsim", params: Params) -> list:
    """``GET /fapi/v1/fundingRate[?symbol&startTime&endTime&limit]`` (limit ≤ 1000, default
    100): settled funding events up to the replay clock, ascending, with the 8h mark open."""
    symbol = require_symbol(ex, params, required=False)
    limit = params.limit(default=100, maximum=1000)
    start, end = params.integer("startTime"), params.integer("endTime")
    clock = ex.replay.clock_ms
    hi = clock if end is None else min(clock, end + 1)
    rows = []
    for sym in ([symbol] if symbol else list(ex.specs)):
        sd = ex.data.symbols[sym]
        for ft, rate in sd.funding_between(start if start is not None else 0, hi):
            mark = sd.mark_open_at(ft - ft % 3_600_000)
            rows.append({"symbol": sym, "fundingRate": f"{rate:.8f}", "fundingTime": ft,
                         "markPrice": f"{mark:.8f}" if mark is not None else ""})
    rows.sort(key=lambda r: (r["fundingTime"], r["symbol"]))
    return rows[:limit] if start is not None else rows[-limit:]


def funding_info(ex: "Exsim", params: Params) -> list:
    """``GET /fapi/v1/fundingInfo``: 8-hour funding interval for every symbol."""
    return [{"symbol": s, "adjustedFundingRateCap": "0.02000000",
             "adjustedFundingRateFloor": "-0.02000000", "fundingIntervalHours": 8,
             "disclaimer": False} for s in ex.specs]


def ticker_price(ex: "Exsim", params: Params) -> dict | list:
    """``GET /fapi/v1/ticker/price`` and ``/fapi/v2/ticker/price``: last replayed close."""
    symbol = require_symbol(ex, params, required=False)
    clock = ex.replay.clock_ms
    rows = [{"symbol": s, "price": _last_price(ex, s), "time": clock}
            for s in ([symbol] if symbol else ex.specs)]
    return rows[0] if symbol else rows


def book_ticker(ex: "Exsim", params: Params) -> dict | list:
    """``GET /fapi/v1/ticker/bookTicker``: the engine's synthetic top of book."""
    symbol = require_symbol(ex, params, required=False)
    if symbol:
        return ex.engine.book_ticker(symbol)
    return [ex.engine.book_ticker(s) for s in ex.specs]


def depth(ex: "Exsim", params: Params) -> dict:
    """``GET /fapi/v1/depth?symbol[&limit]`` (limit one of 5, 10, 20, 50, 100, 500, 1000)."""
    symbol = require_symbol(ex, params)
    limit = params.integer("limit")
    if limit is None:
        limit = 500
    if limit not in (5, 10, 20, 50, 100, 500, 1000):
        raise ApiError(-1130, "limit")
    return ex.engine.depth(symbol, limit)


def _ticker_24h(ex: "Exsim", symbol: str) -> dict:
    sd = ex.data.symbols[symbol]
    clock = ex.replay.clock_ms
    hi = sd.klines_closed_before(clock)
    lo = max(0, hi - 1440)
    last = _last_price(ex, symbol)
    if hi == 0:
        o = h = lo_p = last
        vol = Decimal(0)
        open_time = clock
    else:
        first = sd.kline(lo)
        o, h, lo_p, vol = first.open, first.high, first.low, Decimal(0)
        for i in range(lo, hi):
            k = sd.kline(i)
            if Decimal(k.high) > Decimal(h):
                h = k.high
            if Decimal(k.low) < Decimal(lo_p):
                lo_p = k.low
            vol += Decimal(k.volume)
        open_time = first.open_time
    change = Decimal(last) - Decimal(o)
    pct = (change / Decimal(o) * 100) if Decimal(o) else Decimal(0)
    return {"symbol": symbol, "priceChange": f"{change:f}", "priceChangePercent": f"{pct:.3f}",
            "weightedAvgPrice": last, "lastPrice": last, "lastQty": "0", "openPrice": o,
            "highPrice": h, "lowPrice": lo_p, "volume": f"{vol:f}", "quoteVolume": "0",
            "openTime": open_time, "closeTime": clock - 1, "firstId": 0, "lastId": 0,
            "count": 0}


def ticker_24h(ex: "Exsim", params: Params) -> dict | list:
    """``GET /fapi/v1/ticker/24hr``: rolling 24 h over the replayed 1m bars (quote volume and
    trade count are not in the recording, so 0; ``weightedAvgPrice`` is the last price)."""
    symbol = require_symbol(ex, params, required=False)
    if symbol:
        return _ticker_24h(ex, symbol)
    return [_ticker_24h(ex, s) for s in ex.specs]


ROUTES = [
    ("/fapi/v1/ping", ["GET"], endpoint(NONE, ping)),
    ("/fapi/v1/time", ["GET"], endpoint(NONE, server_time)),
    ("/fapi/v1/exchangeInfo", ["GET"], endpoint(NONE, exchange_info)),
    ("/fapi/v1/klines", ["GET"], endpoint(NONE, klines)),
    ("/fapi/v1/markPriceKlines", ["GET"], endpoint(NONE, price_klines)),
    ("/fapi/v1/indexPriceKlines", ["GET"], endpoint(NONE, price_klines)),
    ("/fapi/v1/premiumIndex", ["GET"], endpoint(NONE, premium_index)),
    ("/fapi/v1/fundingRate", ["GET"], endpoint(NONE, funding_rate)),
    ("/fapi/v1/fundingInfo", ["GET"], endpoint(NONE, funding_info)),
    ("/fapi/v1/ticker/price", ["GET"], endpoint(NONE, ticker_price)),
    ("/fapi/v2/ticker/price", ["GET"], endpoint(NONE, ticker_price)),
    ("/fapi/v1/ticker/bookTicker", ["GET"], endpoint(NONE, book_ticker)),
    ("/fapi/v1/ticker/24hr", ["GET"], endpoint(NONE, ticker_24h)),
    ("/fapi/v1/depth", ["GET"], endpoint(NONE, depth)),
]
