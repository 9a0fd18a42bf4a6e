"""Market-data message bodies on ``md.*`` subjects: klines, mark price, funding, book.

The market-data feed (:mod:`tradefleet.workers.marketdata`) publishes these; the bot
worker, the recorder and the backtester read them. They are venue-neutral: the feed
translates Binance's WebSocket/REST shapes into them.

==========  ==========================================  ====================================
model       subject                                     ``Nats-Msg-Id``
==========  ==========================================  ====================================
KlineMsg    ``md.{venue}.{symbol}.kline.{interval}``    ``{venue}:{symbol}:{interval}:``
                                                        ``{open_time}``
MarkMsg     ``md.{venue}.{symbol}.mark``                ``{venue}:{symbol}:mark:{event_time}``
FundingMsg  ``md.{venue}.{symbol}.funding``             ``{venue}:{symbol}:funding:``
                                                        ``{funding_time}``
BookMsg     ``md.{venue}.{symbol}.book``                ``{venue}:{symbol}:book:{update_id}:``
                                                        ``{event_time}``
==========  ==========================================  ====================================

Units: prices in the quote asset (USDT for USDⓈ-M), quantities and volumes in base units
(BTC for BTCUSDT), funding rates as a fraction per funding interval (``0.0001`` = 0.01 %
per 8 h), times as integer milliseconds since the Unix epoch, UTC. Money fields are
``Decimal`` and travel as decimal strings (:mod:`tradefleet.bus.codec`).

Parsing is strict on the fields a model knows: amounts must be decimal strings (or
integers), never JSON floats (a float has already lost digits); times must be JSON
integers; prices must be finite and positive; a kline's high/low must bound its open and
close; a book may not be crossed. Unknown fields are ignored, so a producer can add an
optional field without breaking consumers still on the older model (bump ``v`` for
anything else). :func:`decode_market` raises :class:`~tradefleet.bus.codec.DecodeError`
naming the field and the reason, ready for :func:`~tradefleet.bus.codec.dead_letter`.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, model_validator,
)

from tradefleet.bus import codec, subjects

__all__ = [
    "BookMsg", "FundingMsg", "KlineMsg", "MarkMsg", "MarketMsg", "MODELS",
    "decode_market", "decode_kline", "decode_mark", "decode_funding", "decode_book",
]


def _decimal_text(value: Any) -> Any:
    """Accept a decimal string, an int or a Decimal; refuse floats and booleans."""
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError(f"must be a decimal string (e.g. \"94230.2\"), not a JSON "
                         f"{type(value).__name__} {value!r}: floats lose digits")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError("must be a decimal string, got an empty string")
        try:
            return Decimal(text)
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal number") from None
    return value


def _finite(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError(f"must be a finite number, got {value}")
    return value


Amount = Annotated[Decimal, BeforeValidator(_decimal_text), AfterValidator(_finite)]
"""Any finite decimal (signed): funding rates."""
Price = Annotated[Amount, Field(gt=0)]
"""A finite price > 0 in the quote asset (USDT)."""
Quantity = Annotated[Amount, Field(ge=0)]
"""A finite quantity >= 0 in base units (or quote units where the name says quote)."""
BookPrice = Annotated[Amount, Field(ge=0)]
"""A book price >= 0 (0 means that side of the book is empty)."""
TimeMs = Annotated[StrictInt, Field(ge=0)]
"""Milliseconds since the Unix epoch, UTC, as a JSON integer."""

Venue = Annotated[str, AfterValidator(subjects.check_venue)]
Symbol = Annotated[str, AfterValidator(subjects.check_symbol)]
Interval = Annotated[str, AfterValidator(subjects.check_interval)]


class _MarketBody(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    venue: Venue = Field(description="ccxt exchange id, e.g. binanceusdm, exsim")
    symbol: Symbol = Field(description="exchange symbol id, upper case, e.g. BTCUSDT")


class KlineMsg(_MarketBody):
    """One closed kline (candlestick) of ``interval``.

    Fields
    ------
    venue, symbol, interval : str
        ``interval`` is a Binance kline interval (``1m``, ``1h``...).
    open_time, close_time : int
        ms UTC; Binance's ``close_time`` is ``open_time + interval - 1``.
    open, high, low, close : Decimal
        Prices in the quote asset (USDT), > 0, ``low <= open, close <= high``.
    volume : Decimal
        Base-asset volume (BTC for BTCUSDT), >= 0.
    quote_volume, taker_buy_volume, taker_buy_quote_volume : Decimal | None
        Quote-asset volume (USDT) and taker-buy volumes when the venue sends them.
    trades : int | None
        Number of trades in the bar, when the venue sends it.
    closed : True
        Only closed bars are published (Binance ``k.x == true``).
    event_time : int
        ms UTC: the venue's event time ``E`` of the WebSocket message that closed the bar,
        or the feed's receive time for a bar back-filled from REST (``source == "rest"``).
    source : "ws" | "rest"
        Where the feed got the bar: the live stream or a REST back-fill after a gap.

    Source: Binance USDⓈ-M "Kline/Candlestick Streams" and "Kline/Candlestick Data".
    """

    interval: Interval
    open_time: TimeMs
    close_time: TimeMs
    open: Price
    high: Price
    low: Price
    close: Price
    volume: Quantity
    quote_volume: Quantity | None = None
    trades: Annotated[StrictInt, Field(ge=0)] | None = None
    taker_buy_volume: Quantity | None = None
    taker_buy_quote_volume: Quantity | None = None
    closed: Literal[True] = True
    event_time: TimeMs
    source: Literal["ws", "rest"] = "ws"

    @model_validator(mode="after")
    def _consistent(self) -> "KlineMsg":
        if self.close_time <= self.open_time:
            raise ValueError(f"close_time {self.close_time} must be after open_time "
                             f"{self.open_time}")
        if self.high < max(self.open, self.close, self.low):
            raise ValueError(f"high {self.high} is below open {self.open}, close {self.close} "
                             f"or low {self.low}")
        if self.low > min(self.open, self.close):
            raise ValueError(f"low {self.low} is above open {self.open} or close {self.close}")
        return self

    @property
    def subject(self) -> str:
        """``md.{venue}.{symbol}.kline.{interval}``."""
        return subjects.kline(self.venue, self.symbol, self.interval)

    @property
    def msg_id(self) -> str:
        """``{venue}:{symbol}:{interval}:{open_time}`` (:func:`codec.kline_msg_id`)."""
        return codec.kline_msg_id(self.venue, self.symbol, self.interval, self.open_time)


class MarkMsg(_MarketBody):
    """Mark price and the current funding rate of a perpetual.

    Fields
    ------
    mark_price : Decimal
        Mark price (USDT), > 0: what unrealized PnL and liquidation use.
    index_price, estimated_settle_price : Decimal | None
        Index price and estimated settle price (USDT) when the venue sends them.
    funding_rate : Decimal | None
        Binance ``r``: the funding rate that applies at ``next_funding_time``, as a fraction
        per funding interval (signed; positive means longs pay shorts). ``None`` for
        contracts without funding (delivery futures).
    next_funding_time : int | None
        ms UTC of the next funding settlement (00:00/08:00/16:00 UTC for 8 h symbols);
        ``None`` for contracts without funding.
    event_time : int
        ms UTC, the venue's event time ``E``.

    Source: Binance USDⓈ-M "Mark Price Stream" (``<symbol>@markPrice``).
    """

    mark_price: Price
    index_price: Price | None = None
    estimated_settle_price: Price | None = None
    funding_rate: Amount | None = None
    next_funding_time: TimeMs | None = None
    event_time: TimeMs

    @property
    def subject(self) -> str:
        """``md.{venue}.{symbol}.mark``."""
        return subjects.market(self.venue, self.symbol, "mark")

    @property
    def msg_id(self) -> str:
        """``{venue}:{symbol}:mark:{event_time}``."""
        return codec.msg_id(self.venue, self.symbol, "mark", self.event_time)


class FundingMsg(_MarketBody):
    """One settled funding event of a perpetual.

    Fields
    ------
    funding_time : int
        ms UTC of the scheduled settlement (00:00/08:00/16:00 UTC for 8 h symbols). Binance's
        ``fundingTime`` in ``GET /fapi/v1/fundingRate`` lands a few ms after the hour; the
        feed floors it to the hour so both sources give one id.
    funding_rate : Decimal
        Settled rate, a fraction per funding interval (signed; positive: longs pay shorts).
        Payment of a position = -(signed quantity × mark price × funding rate), in USDT.
    mark_price : Decimal | None
        Mark price (USDT) used for the settlement when known.

    Source: Binance USDⓈ-M "Get Funding Rate History"; the WebSocket has no settlement event,
    so the feed also derives it from the mark-price stream when ``T`` (next funding time)
    advances.
    """

    funding_time: TimeMs
    funding_rate: Amount
    mark_price: Price | None = None

    @property
    def subject(self) -> str:
        """``md.{venue}.{symbol}.funding``."""
        return subjects.market(self.venue, self.symbol, "funding")

    @property
    def msg_id(self) -> str:
        """``{venue}:{symbol}:funding:{funding_time}``."""
        return codec.msg_id(self.venue, self.symbol, "funding", self.funding_time)


class BookMsg(_MarketBody):
    """Best bid and ask (top of book).

    Fields
    ------
    bid_price, ask_price : Decimal
        Best bid / best ask (USDT), >= 0 (0: that side is empty); ``bid <= ask`` when both
        sides are present.
    bid_qty, ask_qty : Decimal
        Quantity at the best bid / ask, base units.
    update_id : int
        Venue's order-book update id ``u`` (increases with every change; 0 if the venue
        has none).
    event_time : int
        ms UTC, the venue's event time ``E``.
    transaction_time : int | None
        ms UTC, the matching engine's time ``T`` when sent.

    Source: Binance USDⓈ-M "Individual Symbol Book Ticker Streams" (``<symbol>@bookTicker``).
    """

    bid_price: BookPrice
    bid_qty: Quantity
    ask_price: BookPrice
    ask_qty: Quantity
    update_id: Annotated[StrictInt, Field(ge=0)]
    event_time: TimeMs
    transaction_time: TimeMs | None = None

    @model_validator(mode="after")
    def _not_crossed(self) -> "BookMsg":
        if self.bid_price > 0 and self.ask_price > 0 and self.bid_price > self.ask_price:
            raise ValueError(f"crossed book: bid_price {self.bid_price} > ask_price "
                             f"{self.ask_price}")
        return self

    @property
    def subject(self) -> str:
        """``md.{venue}.{symbol}.book``."""
        return subjects.market(self.venue, self.symbol, "book")

    @property
    def msg_id(self) -> str:
        """``{venue}:{symbol}:book:{update_id}:{event_time}``."""
        return codec.msg_id(self.venue, self.symbol, "book", self.update_id, self.event_time)


MarketMsg = KlineMsg | MarkMsg | FundingMsg | BookMsg
"""Any market-data body."""

MODELS: dict[str, type[BaseModel]] = {
    "kline": KlineMsg, "mark": MarkMsg, "funding": FundingMsg, "book": BookMsg,
}
"""Model by subject kind (``md.{venue}.{symbol}.{kind}``)."""


def decode_market(data: bytes, subject: str) -> MarketMsg:
    """Decode the body received on market subject ``subject`` into its model.

    The model is chosen by the subject's kind, and the body's venue, symbol (and interval)
    must match the subject's. Raises :class:`~tradefleet.bus.codec.DecodeError` (with the
    raw bytes) for a non-market subject, a kind without a model (``trade``), an invalid body,
    or a body that does not belong on ``subject``.
    """
    try:
        parsed = subjects.parse(subject)
    except ValueError as exc:
        raise codec.DecodeError(str(exc), bytes(data), subject) from None
    model = MODELS.get(parsed.kind) if parsed.plane == subjects.MD else None
    if model is None:
        raise codec.DecodeError(f"no market-data model for subject kind {parsed.kind!r}",
                                bytes(data), subject)
    msg = codec.decode(data, subject=subject, model=model)
    wrong = [f"{name} {getattr(msg, name)!r} != subject's {want!r}"
             for name, want in (("venue", parsed.venue), ("symbol", parsed.symbol),
                                ("interval", parsed.interval))
             if want is not None and getattr(msg, name, want) != want]
    if wrong:
        raise codec.DecodeError(f"body does not belong on this subject: {'; '.join(wrong)}",
                                bytes(data), subject)
    return msg  # type: ignore[return-value]


def decode_kline(data: bytes, subject: str | None = None) -> KlineMsg:
    """Decode a :class:`KlineMsg` body; raises :class:`~tradefleet.bus.codec.DecodeError`."""
    return codec.decode(data, subject=subject, model=KlineMsg)  # type: ignore[return-value]


def decode_mark(data: bytes, subject: str | None = None) -> MarkMsg:
    """Decode a :class:`MarkMsg` body; raises :class:`~tradefleet.bus.codec.DecodeError`."""
    return codec.decode(data, subject=subject, model=MarkMsg)  # type: ignore[return-value]


def decode_funding(data: bytes, subject: str | None = None) -> FundingMsg:
    """Decode a :class:`FundingMsg` body; raises :class:`~tradefleet.bus.codec.DecodeError`."""
    return codec.decode(data, subject=subject, model=FundingMsg)  # type: ignore[return-value]


def decode_book(data: bytes, subject: str | None = None) -> BookMsg:
    """Decode a :class:`BookMsg` body; raises :class:`~tradefleet.bus.codec.DecodeError`."""
    return codec.decode(data, subject=subject, model=BookMsg)  # type: ignore[return-value]
