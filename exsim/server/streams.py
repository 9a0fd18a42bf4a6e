"""Market stream names and payloads (Binance USDⓈ-M "Websocket Market Streams").

Supported names (symbol lower-case, as Binance's):

* ``<symbol>@kline_<interval>`` — kline updates; ``k.x`` true on the closing update.
* ``<symbol>@markPrice`` and ``<symbol>@markPrice@1s`` — ``markPriceUpdate``.
* ``<symbol>@bookTicker`` — best bid/ask.
* ``!markPrice@arr`` / ``!markPrice@arr@1s`` and ``!bookTicker`` — all symbols.

In a replay every stream updates once per replayed 1m bar (the @1s / 3s cadences of the
live venue collapse to "once per step").
"""

from __future__ import annotations

from .klines import INTERVAL_MS

__all__ = ["StreamName", "parse_stream", "mark_price_event", "book_ticker_event"]


class StreamName:
    """A parsed stream: ``kind`` in {kline, markPrice, bookTicker, markPriceArr, bookTickerAll},
    ``symbol`` upper-case (None for ``!`` streams), ``interval`` for klines, ``name`` canonical."""

    __slots__ = ("kind", "symbol", "interval", "name")

    def __init__(self, kind: str, symbol: str | None, interval: str | None, name: str) -> None:
        self.kind = kind
        self.symbol = symbol
        self.interval = interval
        self.name = name


def parse_stream(raw: str, symbols: set[str]) -> StreamName:
    """Parse and validate one stream name against the replayed ``symbols`` (upper-case).

    Raises ValueError with a message naming the stream and the reason.
    """
    name = raw.strip()
    low = name.lower()
    if low in ("!markprice@arr", "!markprice@arr@1s"):
        canonical = "!markPrice@arr" + ("@1s" if low.endswith("@1s") else "")
        return StreamName("markPriceArr", None, None, canonical)
    if low == "!bookticker":
        return StreamName("bookTickerAll", None, None, "!bookTicker")
    sym, sep, rest = name.partition("@")
    if not sep or not sym:
        raise ValueError(f"stream {raw!r}: expected <symbol>@<type>, e.g. btcusdt@kline_1m")
    symbol = sym.upper()
    if symbol not in symbols:
        raise ValueError(f"stream {raw!r}: symbol {symbol} is not replayed "
                         f"(have {', '.join(sorted(symbols))})")
    prefix = sym.lower() + "@"
    if rest.startswith("kline_"):
        interval = rest[len("kline_"):]
        if interval not in INTERVAL_MS:
            raise ValueError(f"stream {raw!r}: interval {interval!r} not supported "
                             f"(use one of {', '.join(INTERVAL_MS)})")
        return StreamName("kline", symbol, interval, prefix + rest)
    rest_low = rest.lower()
    if rest_low in ("markprice", "markprice@1s"):
        return StreamName("markPrice", symbol, None,
                          prefix + "markPrice" + ("@1s" if rest_low.endswith("@1s") else ""))
    if rest_low == "bookticker":
        return StreamName("bookTicker", symbol, None, prefix + "bookTicker")
    raise ValueError(f"stream {raw!r}: type {rest!r} not supported "
                     "(kline_<interval>, markPrice, markPrice@1s, bookTicker)")


def mark_price_event(symbol: str, mark: str, funding_rate: str, next_funding_time: int,
                     event_time: int) -> dict:
    """``markPriceUpdate`` payload: ``p`` mark, ``i`` index, ``P`` estimated settle price (all
    the replayed mark, USDT), ``r`` funding rate (fraction per 8 h), ``T`` next funding (ms)."""
    return {"e": "markPriceUpdate", "E": event_time, "s": symbol, "p": mark, "i": mark,
            "P": mark, "r": funding_rate, "T": next_funding_time}


def book_ticker_event(book: dict, event_time: int) -> dict:
    """``bookTicker`` stream payload from a REST bookTicker dict (``GET /fapi/v1/ticker/bookTicker``)."""
    return {"e": "bookTicker", "u": book.get("lastUpdateId", 0), "s": book["symbol"],
            "b": book["bidPrice"], "B": book["bidQty"], "a": book["askPrice"],
            "A": book["askQty"], "T": book.get("time", event_time), "E": event_time}
