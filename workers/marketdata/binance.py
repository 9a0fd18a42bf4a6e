"""Binance USDⓈ-M market-data shapes → tradefleet message models.

Sources (Binance Derivatives API docs, USDⓈ-M Futures):

- combined stream frame ``{"stream": "<name>", "data": {...}}`` ("Websocket Market Streams");
- ``<symbol>@kline_<interval>``: ``{"e": "kline", "E", "s", "k": {"t", "T", "s", "i", "o",
  "c", "h", "l", "v", "n", "x", "q", "V", "Q"}}``;
- ``<symbol>@markPrice[@1s]``: ``{"e": "markPriceUpdate", "E", "s", "p", "i", "P", "r", "T"}``;
- ``<symbol>@bookTicker``: ``{"e": "bookTicker", "u", "E", "T", "s", "b", "B", "a", "A"}``;
- ``GET /fapi/v1/klines`` rows ``[openTime, "open", "high", "low", "close", "volume",
  closeTime, "quoteVolume", trades, "takerBuyBase", "takerBuyQuote", "ignore"]``;
- ``GET /fapi/v1/fundingRate`` rows ``{"symbol", "fundingRate", "fundingTime", "markPrice"}``.

Everything here is pure: bytes in, models out, :class:`FrameError` (naming the stream and the
field) for anything malformed, so the feed can dead-letter it and carry on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from tradefleet.bus.market_messages import BookMsg, FundingMsg, KlineMsg, MarkMsg

HOUR_MS = 3_600_000


class FrameError(ValueError):
    """A venue message that cannot be turned into a market message.

    ``stream`` is the Binance stream name when the frame named one it subscribed to (the
    feed then dead-letters under that stream's subject), else ``None``.
    """

    def __init__(self, reason: str, stream: str | None = None) -> None:
        self.reason = reason
        self.stream = stream
        super().__init__(f"{stream}: {reason}" if stream else reason)


@dataclass(frozen=True, slots=True)
class Route:
    """What a subscribed stream carries: ``kind`` kline/mark/book, the upper-case symbol and,
    for klines, the interval."""

    kind: str
    symbol: str
    interval: str | None = None


def routes(stream_names: list[str]) -> dict[str, Route]:
    """Map the subscribed stream names (``btcusdt@kline_1m``...) to their :class:`Route`."""
    out = {}
    for name in stream_names:
        low_symbol, _, rest = name.partition("@")
        symbol = low_symbol.upper()
        if rest.startswith("kline_"):
            out[name] = Route("kline", symbol, rest[len("kline_"):])
        elif rest.startswith("markPrice"):
            out[name] = Route("mark", symbol)
        elif rest == "bookTicker":
            out[name] = Route("book", symbol)
        else:
            raise ValueError(f"stream {name!r} is not a kline, markPrice or bookTicker stream")
    return out


@dataclass(frozen=True, slots=True)
class Frame:
    """One parsed frame. ``msg`` is the model, or ``None`` for a kline update of a bar that
    has not closed yet (``k.x == false``); ``event_time`` is the venue's ``E`` (ms)."""

    route: Route
    stream: str
    msg: KlineMsg | MarkMsg | BookMsg | None
    event_time: int


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}"
                     for e in exc.errors())


def _int(data: dict, key: str, stream: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FrameError(f"field {key!r} must be an integer (ms), got {value!r}", stream)
    return value


def _optional(value: Any) -> Any:
    # Binance sends "" for fields that do not apply (index price, funding rate of a
    # delivery contract); an absent value is None in the models.
    return None if value in ("", None) else value


def parse_frame(venue: str, raw: bytes | str, subscribed: dict[str, Route]) -> Frame | None:
    """Parse one combined-stream frame.

    Returns ``None`` for replies to control requests (``{"result": ..., "id": ...}``).
    Raises :class:`FrameError` when the frame is not JSON, is an error reply, names a stream
    not subscribed, or its payload does not validate (bad price, symbol mismatch...).
    """
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FrameError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise FrameError(f"frame must be a JSON object, got {type(obj).__name__}")
    if "error" in obj:
        raise FrameError(f"venue error reply: {obj['error']!r}")
    if "result" in obj and "id" in obj:
        return None
    stream, data = obj.get("stream"), obj.get("data")
    if not isinstance(stream, str):
        raise FrameError("combined-stream frame has no 'stream' name")
    route = subscribed.get(stream)
    if route is None:
        raise FrameError(f"stream {stream!r} was not subscribed")
    if not isinstance(data, dict):
        raise FrameError("frame has no 'data' object", stream)
    if data.get("s") != route.symbol:
        raise FrameError(f"symbol {data.get('s')!r} does not match the stream's {route.symbol}",
                         stream)
    event_time = _int(data, "E", stream)
    try:
        if route.kind == "kline":
            msg = _kline(venue, route, stream, data, event_time)
        elif route.kind == "mark":
            msg = _mark(venue, route, stream, data, event_time)
        else:
            msg = _book(venue, route, stream, data, event_time)
    except ValidationError as exc:
        raise FrameError(f"invalid {route.kind}: {_problems(exc)}", stream) from None
    return Frame(route, stream, msg, event_time)


def _expect_event(data: dict, event: str, stream: str) -> None:
    if data.get("e") != event:
        raise FrameError(f"event type {data.get('e')!r}, expected {event!r}", stream)


def _kline(venue: str, route: Route, stream: str, data: dict, event_time: int) -> KlineMsg | None:
    _expect_event(data, "kline", stream)
    k = data.get("k")
    if not isinstance(k, dict):
        raise FrameError("kline event has no 'k' object", stream)
    if k.get("i") != route.interval:
        raise FrameError(f"interval {k.get('i')!r} does not match the stream's {route.interval}",
                         stream)
    if k.get("s", route.symbol) != route.symbol:
        raise FrameError(f"k.s {k.get('s')!r} does not match the stream's {route.symbol}", stream)
    closed = k.get("x")
    if not isinstance(closed, bool):
        raise FrameError(f"field 'x' (closed) must be true or false, got {closed!r}", stream)
    if not closed:
        return None
    return KlineMsg.model_validate({
        "venue": venue, "symbol": route.symbol, "interval": route.interval,
        "open_time": k.get("t"), "close_time": k.get("T"),
        "open": k.get("o"), "high": k.get("h"), "low": k.get("l"), "close": k.get("c"),
        "volume": k.get("v"), "quote_volume": _optional(k.get("q")), "trades": k.get("n"),
        "taker_buy_volume": _optional(k.get("V")), "taker_buy_quote_volume": _optional(k.get("Q")),
        "closed": True, "event_time": event_time, "source": "ws",
    })


def _mark(venue: str, route: Route, stream: str, data: dict, event_time: int) -> MarkMsg:
    _expect_event(data, "markPriceUpdate", stream)
    next_funding = data.get("T")
    return MarkMsg.model_validate({
        "venue": venue, "symbol": route.symbol, "mark_price": data.get("p"),
        "index_price": _optional(data.get("i")),
        "estimated_settle_price": _optional(data.get("P")),
        "funding_rate": _optional(data.get("r")),
        "next_funding_time": None if next_funding in (0, None) else next_funding,
        "event_time": event_time,
    })


def _book(venue: str, route: Route, stream: str, data: dict, event_time: int) -> BookMsg:
    _expect_event(data, "bookTicker", stream)
    return BookMsg.model_validate({
        "venue": venue, "symbol": route.symbol,
        "bid_price": data.get("b"), "bid_qty": data.get("B"),
        "ask_price": data.get("a"), "ask_qty": data.get("A"),
        "update_id": data.get("u"), "event_time": event_time,
        "transaction_time": data.get("T"),
    })


def rest_kline(venue: str, symbol: str, interval: str, row: Any, received_ms: int) -> KlineMsg:
    """One ``GET /fapi/v1/klines`` row as a closed :class:`KlineMsg` (``source="rest"``,
    ``event_time`` = ``received_ms``). Raises :class:`FrameError` for a malformed row."""
    if not isinstance(row, list) or len(row) < 7:
        raise FrameError(f"kline row must be an array of at least 7 fields, got {row!r:.120}")
    extra = row + [None] * (11 - len(row))
    try:
        return KlineMsg.model_validate({
            "venue": venue, "symbol": symbol, "interval": interval,
            "open_time": row[0], "open": row[1], "high": row[2], "low": row[3], "close": row[4],
            "volume": row[5], "close_time": row[6], "quote_volume": _optional(extra[7]),
            "trades": extra[8], "taker_buy_volume": _optional(extra[9]),
            "taker_buy_quote_volume": _optional(extra[10]), "closed": True,
            "event_time": received_ms, "source": "rest",
        })
    except ValidationError as exc:
        raise FrameError(f"invalid REST kline: {_problems(exc)}") from None


def rest_funding(venue: str, symbol: str, row: Any) -> FundingMsg:
    """One ``GET /fapi/v1/fundingRate`` row as a :class:`FundingMsg`.

    ``fundingTime`` lands a few ms after the hour on Binance; it is floored to the hour so
    the id matches the one derived from the mark-price stream's ``T``. Raises
    :class:`FrameError` for a malformed row or one of another symbol.
    """
    if not isinstance(row, dict):
        raise FrameError(f"funding row must be an object, got {row!r:.120}")
    if row.get("symbol") != symbol:
        raise FrameError(f"funding row of symbol {row.get('symbol')!r}, asked for {symbol}")
    ft = row.get("fundingTime")
    if isinstance(ft, bool) or not isinstance(ft, int) or ft < 0:
        raise FrameError(f"fundingTime must be an integer (ms), got {ft!r}")
    try:
        return FundingMsg.model_validate({
            "venue": venue, "symbol": symbol, "funding_time": ft - ft % HOUR_MS,
            "funding_rate": row.get("fundingRate"), "mark_price": _optional(row.get("markPrice")),
        })
    except ValidationError as exc:
        raise FrameError(f"invalid funding row: {_problems(exc)}") from None
