"""Configuration of one market-data feed (one venue; one WebSocket per endpoint category).

The same model serves the CLI (``tradefleet marketdata``), the operator (one feed per venue
with the union of the bots' symbols) and tests. Nothing in it is specific to exsim: point
``ws_url``/``rest_url`` at ``wss://fstream.binance.com``/``https://fapi.binance.com`` for
Binance USDⓈ-M, or at an exsim server for paper trading.
"""

from __future__ import annotations

import random
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from tradefleet.bus import subjects
from tradefleet.bus.streams import BusConfig

StreamKind = Literal["kline", "mark", "funding", "book"]
"""What a feed can publish: closed klines, mark price, funding settlements, best bid/ask."""

MAX_STREAMS_PER_CONNECTION = 200
"""Binance USDⓈ-M: "A single connection can listen to a maximum of 200 streams"
(Websocket Market Streams, general info)."""

WsRouting = Literal["split", "single"]
"""How streams map onto connections.

``split``: Binance USDⓈ-M's routed endpoints (required since 2026-04-23, when the unrouted
URLs stopped pushing ``/market`` streams): klines and mark price on one connection to
``{ws_url}/market/stream``, best bid/ask on one to ``{ws_url}/public/stream`` (opened only
when ``book`` is published). ``single``: every stream on one connection to
``{ws_url}/stream`` (exsim, Binance testnet and venues that mirror the pre-2026 layout).
exsim serves both.
"""


def _upper_symbol(value: object) -> object:
    # Operators write symbols as they see them (btcusdt, BTCUSDT); subjects use upper case.
    return value.strip().upper() if isinstance(value, str) else value


Symbol = Annotated[str, BeforeValidator(_upper_symbol), AfterValidator(subjects.check_symbol)]
Interval = Annotated[str, AfterValidator(subjects.check_interval)]


def _url(schemes: tuple[str, ...], example: str):
    def check(value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.netloc:
            raise ValueError(f"{value!r} must be a {'/'.join(schemes)} URL, e.g. {example}")
        if parts.query or parts.fragment:
            raise ValueError(f"{value!r} must be a base URL without query or fragment")
        return value.rstrip("/")
    return check


WsUrl = Annotated[str, AfterValidator(_url(("ws", "wss"), "wss://fstream.binance.com"))]
RestUrl = Annotated[str, AfterValidator(_url(("http", "https"), "https://fapi.binance.com"))]


class Backoff(BaseModel):
    """Exponential reconnect backoff with jitter.

    Attempt ``n`` (0-based) waits ``min(max_s, min_s * factor**n)`` seconds, reduced by a
    random share up to ``jitter`` (0.5: between 50 % and 100 % of it), so feeds that lost the
    venue together do not reconnect in lockstep ("Exponential Backoff And Jitter", AWS
    Architecture Blog, 2015). The attempt count resets once a connection delivers data.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_s: float = Field(default=0.5, gt=0, description="first delay, seconds")
    max_s: float = Field(default=30.0, gt=0, description="delay cap, seconds")
    factor: float = Field(default=2.0, ge=1, description="growth per attempt")
    jitter: float = Field(default=0.5, ge=0, le=1, description="random share removed, 0..1")

    @model_validator(mode="after")
    def _ordered(self) -> "Backoff":
        if self.max_s < self.min_s:
            raise ValueError(f"max_s ({self.max_s}) must be >= min_s ({self.min_s})")
        return self

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before reconnect attempt ``attempt`` (0-based)."""
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt}")
        base = min(self.max_s, self.min_s * self.factor ** min(attempt, 64))
        return base * (1.0 - self.jitter * (rng or random).random())


class FeedConfig(BaseModel):
    """One feed: which venue and symbols, what to publish, and how to behave.

    Times are seconds unless the name ends in ``_ms``. Raises ``pydantic.ValidationError``
    naming the field and the reason for bad input.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    venue: Annotated[str, AfterValidator(subjects.check_venue)] = Field(
        description="ccxt exchange id used in subjects: exsim, binanceusdm")
    ws_url: WsUrl = Field(
        description="WebSocket base URL (see ws_routing for the paths added to it)")
    ws_routing: WsRouting = Field(
        default="split", description="split: /market/stream + /public/stream (Binance since "
        "2026-04); single: one /stream connection")
    rest_url: RestUrl = Field(
        description="REST base serving /fapi/v1/klines and /fapi/v1/fundingRate")
    symbols: list[Symbol] = Field(min_length=1, description="exchange symbol ids, e.g. BTCUSDT")
    intervals: list[Interval] = Field(default_factory=lambda: ["1m"], min_length=1,
                                      description="kline intervals, e.g. 1m, 1h")
    streams: frozenset[StreamKind] = Field(
        default=frozenset({"kline", "mark", "funding", "book"}), min_length=1,
        description="what to publish")
    nats_url: str | None = Field(default=None, description="nats://host:port; default NATS_URL")
    bus: BusConfig = Field(default_factory=BusConfig,
                           description="limits and retention of the MARKET and DLQ streams")
    backoff: Backoff = Field(default_factory=Backoff)
    ping_interval_s: float = Field(default=20.0, gt=0, description="WebSocket ping every ...")
    ping_timeout_s: float = Field(default=20.0, gt=0, description="... and reconnect without pong")
    idle_timeout_s: float | None = Field(
        default=60.0, gt=0,
        description="reconnect when no message arrives for this long (None: never). Binance "
                    "sends a mark price every 3 s; a paused exsim replay sends nothing")
    open_timeout_s: float = Field(default=10.0, gt=0, description="WebSocket handshake timeout")
    rest_timeout_s: float = Field(default=10.0, gt=0, description="one REST request")
    rest_retries: int = Field(default=4, ge=0,
                              description="retries of a REST request on 429/418/5XX")
    publish_timeout_s: float = Field(default=5.0, gt=0, description="JetStream ack wait")
    mark_stream: Literal["markPrice", "markPrice@1s"] = Field(
        default="markPrice", description="Binance mark-price stream: every 3 s or every 1 s")
    book_min_interval_ms: int = Field(
        default=100, ge=0,
        description="publish at most one best bid/ask per symbol per this many ms (0: all)")
    initial_backfill_bars: int = Field(
        default=0, ge=0, le=1500,
        description="closed klines to back-fill from REST when a subject has none stored yet")
    backfill_page: int = Field(default=1500, ge=1, le=1500,
                               description="klines per REST request (Binance max 1500)")
    metrics_port: int | None = Field(default=None, ge=0, le=65535,
                                     description="/metrics and /healthz port (0: free, None: off)")
    metrics_host: str = "0.0.0.0"
    max_disconnected_s: float = Field(
        default=300.0, gt=0, description="/healthz fails after this long without a connection")

    @model_validator(mode="after")
    def _check(self) -> "FeedConfig":
        for name, values in (("symbols", self.symbols), ("intervals", self.intervals)):
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"{name} lists {', '.join(dupes)} more than once")
        for group, names in self.stream_groups().items():
            if len(names) > MAX_STREAMS_PER_CONNECTION:
                raise ValueError(
                    f"{len(self.symbols)} symbols need {len(names)} streams on the {group} "
                    f"connection; Binance allows {MAX_STREAMS_PER_CONNECTION}: split the symbols "
                    "over several feeds or publish fewer streams")
        if self.ws_routing == "split":
            tail = self.ws_url.rsplit("/", 1)[-1]
            if tail in ("market", "public", "private", "stream", "ws"):
                raise ValueError(
                    f"ws_url {self.ws_url!r} ends in /{tail}: with ws_routing 'split' give the "
                    "base (wss://fstream.binance.com); the feed adds /market/stream and "
                    "/public/stream itself")
        return self

    @property
    def wants_mark_stream(self) -> bool:
        """The mark-price stream is needed for mark messages and for funding."""
        return bool(self.streams & {"mark", "funding"})

    def stream_names(self) -> list[str]:
        """Binance stream names to subscribe, e.g. ``btcusdt@kline_1m``, ``btcusdt@markPrice``,
        ``btcusdt@bookTicker`` (Binance "Websocket Market Streams": symbols lower case)."""
        names = []
        for symbol in self.symbols:
            low = symbol.lower()
            if "kline" in self.streams:
                names += [f"{low}@kline_{interval}" for interval in self.intervals]
            if self.wants_mark_stream:
                names.append(f"{low}@{self.mark_stream}")
            if "book" in self.streams:
                names.append(f"{low}@bookTicker")
        return names

    def stream_groups(self) -> dict[str, list[str]]:
        """Stream names per connection: ``{"market": [...], "public": [...]}`` when split
        (``public`` only with book streams), ``{"stream": [...]}`` when single."""
        names = self.stream_names()
        if self.ws_routing == "single":
            return {"stream": names}
        groups = {"market": [n for n in names if not n.endswith("@bookTicker")],
                  "public": [n for n in names if n.endswith("@bookTicker")]}
        return {group: streams for group, streams in groups.items() if streams}

    def connection_urls(self) -> dict[str, str]:
        """Combined-stream URL per connection (Binance "Websocket Market Streams"):
        ``{ws_url}/market/stream?streams=btcusdt@kline_1m/...`` and
        ``{ws_url}/public/stream?streams=btcusdt@bookTicker/...`` when split,
        ``{ws_url}/stream?streams=...`` when single (a ``ws_url`` already ending in
        ``/stream`` is used as it is)."""
        out = {}
        for group, names in self.stream_groups().items():
            if group == "stream":
                base = self.ws_url if self.ws_url.endswith("/stream") else f"{self.ws_url}/stream"
            else:
                base = f"{self.ws_url}/{group}/stream"
            out[group] = f"{base}?streams={'/'.join(names)}"
        return out
