"""The market-data feed: one WebSocket per venue → JetStream ``md.*`` subjects.

Data path of one closed kline, top to bottom:

1. ``{ws_url}/stream?streams=btcusdt@kline_1m/...`` frame (Binance combined streams);
2. :func:`~.binance.parse_frame` → :class:`~tradefleet.bus.market_messages.KlineMsg`
   (malformed → ``dlq.md.{venue}...`` with the error in ``Tf-Dlq-Error``);
3. order check against the last kline stored for the subject: equal → counted duplicate,
   older → out of order (dead-lettered), a gap → back-fill the missing bars from
   ``GET /fapi/v1/klines`` first, in order;
4. :func:`~tradefleet.bus.publish.publish` on ``md.{venue}.{symbol}.kline.{interval}`` with
   ``Nats-Msg-Id`` ``{venue}:{symbol}:{interval}:{open_time}``.

Exactly-once per bar across restarts and reconnects: at every (re)connect the feed reads
the last kline stored per subject from the MARKET stream (JetStream is the source of
truth), back-fills from REST what closed since, and never publishes an ``open_time`` at or
below it; ``Nats-Msg-Id`` covers the rest inside the stream's duplicate window. A failed
publish ends the connection (reason ``publish``), so nothing is skipped: the next session
starts again from what JetStream holds.

Watchdog: websockets' protocol pings (``ping_interval_s``/``ping_timeout_s``) catch dead TCP;
``idle_timeout_s`` catches a live socket that went silent. Any loss → reconnect after
exponential backoff with jitter, re-subscribe, back-fill the gap, continue.

Funding: Binance's WebSocket has no settlement event. The mark-price stream carries ``r``
(rate for the next settlement) and ``T`` (next funding time); when ``T`` advances the
settlement at the previous ``T`` happened. The feed then reads the settled events from
``GET /fapi/v1/fundingRate`` (also back-filling settlements missed while it was down) and,
when the venue has not listed the newest one yet, publishes it with the last ``r`` seen
before ``T`` advanced. Id ``{venue}:{symbol}:funding:{T}``.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import datetime as dt
import functools
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
import websockets
from nats.js.errors import NotFoundError
from opentelemetry import trace
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from tradefleet.bus import codec, subjects
from tradefleet.bus.connect import connect
from tradefleet.bus.market_messages import BookMsg, FundingMsg, KlineMsg, MarkMsg, decode_market
from tradefleet.bus.publish import publish
from tradefleet.bus.streams import DLQ, MARKET, ensure_streams
from tradefleet.telemetry.metrics import Health, MetricsServer, serve_metrics
from tradefleet.telemetry.tracing import get_tracer, inject_headers

from .binance import Frame, FrameError, Route, parse_frame, rest_funding, rest_kline, routes
from .config import FeedConfig
from .metrics import FeedMetrics
from .rest import RestClient, RestError

log = logging.getLogger(__name__)
tracer = get_tracer(__name__)

DLQ_STREAM_HEADER = "Tf-Md-Stream"
"""Extra dead-letter header: the venue stream name the message came on."""

_INTERVAL_MS = {
    "1s": 1_000, "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000,
    "30m": 1_800_000, "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000,
    "8h": 28_800_000, "12h": 43_200_000, "1d": 86_400_000, "3d": 259_200_000,
    "1w": 604_800_000,
}


def next_open_time(interval: str, open_time: int) -> int:
    """Open time (ms UTC) of the kline after the one opening at ``open_time``.

    ``1M`` bars follow calendar months (UTC); every other interval is a fixed length.
    """
    if interval == "1M":
        d = dt.datetime.fromtimestamp(open_time / 1000, tz=dt.timezone.utc)
        year, month = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
        return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000
    return open_time + _INTERVAL_MS[interval]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class _Reconnect(Exception):
    """Ends the current connection; ``reason`` labels the metric, ``hint`` says what to check."""

    def __init__(self, reason: str, hint: str) -> None:
        self.reason = reason
        self.hint = hint
        super().__init__(hint)


@dataclass
class _FundingState:
    next_time: int | None = None      # last T seen on the mark-price stream
    rate: Decimal | None = None       # last r seen (applies at next_time)
    mark: Decimal | None = None       # last mark price seen
    stored: int | None = None         # funding_time of the last FundingMsg in JetStream


class Feed:
    """One venue's market-data feed. ``await feed.run()`` until ``await feed.stop()``.

    Parameters
    ----------
    config : FeedConfig
        Venue, URLs, symbols, intervals, what to publish, NATS URL, backoff, metrics port.

    Attributes
    ----------
    metrics : FeedMetrics
        Prometheus metrics (own registry).
    health : Health
        ``/healthz`` (liveness: fails after ``max_disconnected_s`` without a connection) and
        ``/readyz`` (ready while subscribed).
    metrics_server : MetricsServer | None
        The running ``/metrics`` server once :meth:`run` started it (``config.metrics_port``).
    connections : int
        How many times a connection was opened, subscribed and back-filled.
    """

    def __init__(self, config: FeedConfig) -> None:
        self.config = config
        self.metrics = FeedMetrics(config.venue)
        self.health = Health()
        self.metrics_server: MetricsServer | None = None
        self.connections = 0
        self._routes: dict[str, Route] = routes(config.stream_names())
        self._rng = random.Random()
        self._stop = asyncio.Event()
        self._state = asyncio.Condition()
        self._live = False
        self._running = False
        self._session_task: asyncio.Task[None] | None = None
        self._starting: asyncio.Task[Any] | None = None
        self._finished = asyncio.Event()
        self._nc: Any = None
        self._js: Any = None
        self._rest: RestClient | None = None
        self._clock_offset_ms = 0
        self._last_kline: dict[str, int] = {}            # subject -> open_time stored
        self._last_key: dict[tuple[str, str], tuple[int, ...]] = {}  # (symbol, kind) -> key
        self._funding: dict[str, _FundingState] = {}
        self._book_sent: dict[str, float] = {}            # symbol -> monotonic time
        self._down_since: float | None = time.monotonic()
        self._last_problem = "not connected yet"
        self._delivered = False
        self._ack_error: BaseException | None = None
        self._handling = asyncio.Lock()
        self.health.live.add_check("websocket", self._liveness)

    # -- lifecycle ----------------------------------------------------------------------

    async def run(self) -> None:
        """Connect NATS, ensure the streams, serve metrics, then keep one WebSocket session
        alive until :meth:`stop`.

        Raises at start-up only: ``ValueError``/``OSError``/``nats.errors.NoServersError``
        when NATS is unreachable after the connect deadline,
        :class:`~tradefleet.bus.streams.StreamConfigError` when the streams cannot be made,
        ``OSError`` when the metrics port is taken. Once running, every failure is logged
        and answered by a reconnect; nothing a venue sends can end :meth:`run`.
        """
        if self._running:
            raise RuntimeError("Feed.run() is already running")
        self._running = True
        self._finished.clear()
        cfg = self.config
        try:
            if self._stop.is_set():
                return
            self._starting = asyncio.current_task()
            try:
                await self._start()
            except asyncio.CancelledError:
                if self._stop.is_set():
                    return  # stop() during start-up (e.g. while NATS is still unreachable)
                raise
            finally:
                self._starting = None
            log.info("market-data feed starting", extra={
                "venue": cfg.venue, "ws_url": cfg.ws_url, "ws_routing": cfg.ws_routing,
                "rest_url": cfg.rest_url, "symbols": cfg.symbols, "intervals": cfg.intervals,
                "streams": sorted(cfg.streams)})
            await self._supervise()
        finally:
            await self._teardown()
            self._running = False
            self._finished.set()

    async def _start(self) -> None:
        cfg = self.config
        self._nc = await connect(cfg.nats_url, name=f"marketdata:{cfg.venue}")
        self._js = self._nc.jetstream(timeout=cfg.publish_timeout_s)
        await ensure_streams(self._js, cfg.bus)
        self._rest = RestClient(cfg.rest_url, timeout_s=cfg.rest_timeout_s,
                                retries=cfg.rest_retries)
        if cfg.metrics_port is not None:
            self.metrics_server = await serve_metrics(
                self.metrics.registry, self.health, port=cfg.metrics_port, host=cfg.metrics_host)

    async def stop(self) -> None:
        """Close the WebSockets and the NATS connection and make :meth:`run` return; waits
        for it. A feed runs once: create a new one to start again."""
        self._stop.set()
        if self._starting is not None and self._starting is not asyncio.current_task():
            self._starting.cancel()
        task = self._session_task
        if task is not None and not task.done():
            task.cancel()
        if self._running:
            await self._finished.wait()

    async def wait_connected(self, count: int = 1, timeout: float = 30.0) -> None:
        """Wait until the ``count``-th connection is subscribed, back-filled and live.

        Raises ``TimeoutError`` after ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            async with self._state:
                await self._state.wait_for(lambda: self.connections >= count and self._live)

    @property
    def live(self) -> bool:
        """True while a WebSocket session is subscribed and streaming."""
        return self._live

    async def _set_live(self, live: bool) -> None:
        async with self._state:
            self._live = live
            if live:
                self.connections += 1
            self._state.notify_all()

    async def _supervise(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            self._session_task = asyncio.create_task(self._session(), name="marketdata-session")
            try:
                await asyncio.wait({self._session_task})
            except asyncio.CancelledError:
                self._session_task.cancel()
                with contextlib.suppress(BaseException):
                    await self._session_task
                raise
            task, self._session_task = self._session_task, None
            if self._stop.is_set():
                break
            if task.cancelled():
                reason, hint = "error", "session cancelled"
            else:
                reason, hint = self._explain(task.exception())
            if self._delivered:
                attempt = 0  # the last connection worked: start the backoff over
            delay = self.config.backoff.delay(attempt, self._rng)
            attempt += 1
            self.metrics.reconnects.labels(self.config.venue, reason).inc()
            self._last_problem = hint
            log.warning("market-data WebSocket lost; reconnecting", extra={
                "venue": self.config.venue, "reason": reason, "check": hint,
                "attempt": attempt, "retry_in_s": round(delay, 3)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    def _explain(self, exc: BaseException | None) -> tuple[str, str]:
        """Reason label and what to check for an exception that ended a session."""
        if isinstance(exc, _Reconnect):
            return exc.reason, exc.hint
        if isinstance(exc, ConnectionClosed):
            rcvd = exc.rcvd
            if rcvd is None and "ping" in str(exc).lower():
                return "ping", (f"no pong within {self.config.ping_timeout_s}s: the network or "
                                "the venue stalled; check connectivity to ws_url")
            code = rcvd.code if rcvd else None
            why = rcvd.reason if rcvd else str(exc)
            return "closed", (f"the venue closed the connection (code {code}, {why!r}); Binance "
                              "closes every connection after 24 h and exsim on admin drop-ws. "
                              "Frequent closes: check the venue status and this pod's network")
        log.error("market-data session failed unexpectedly", exc_info=exc)
        return "error", f"unexpected {type(exc).__name__}: {exc}; see the traceback logged above"

    async def _teardown(self) -> None:
        await self._set_live(False)
        self.metrics.down()
        if self._rest is not None:
            await self._rest.aclose()
            self._rest = None
        if self._nc is not None:
            with contextlib.suppress(Exception):
                if self._nc.is_connected:
                    await self._nc.drain()
                else:
                    await self._nc.close()
            self._nc = self._js = None
        if self.metrics_server is not None:
            await self.metrics_server.stop()
        log.info("market-data feed stopped", extra={"venue": self.config.venue})

    def _liveness(self) -> str | None:
        if self._live or self._down_since is None:
            return None
        down = time.monotonic() - self._down_since
        if down > self.config.max_disconnected_s:
            return (f"no WebSocket connection for {down:.0f}s (last problem: {self._last_problem})")
        return None

    # -- one connection -------------------------------------------------------------------

    async def _open(self, group: str, url: str) -> Any:
        cfg = self.config
        try:
            return await websockets.connect(
                url, open_timeout=cfg.open_timeout_s, ping_interval=cfg.ping_interval_s,
                ping_timeout=cfg.ping_timeout_s, close_timeout=2, max_queue=4096,
                max_size=2 ** 20)
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            raise _Reconnect("connect", (
                f"cannot open the {group} connection {url.split('?')[0]}: {type(exc).__name__}: "
                f"{exc}; check ws_url and ws_routing, DNS and egress (Binance answers HTTP 451 "
                "from restricted locations)")) from exc

    async def _session(self) -> None:
        """One session: open every connection, catch up from JetStream and REST, then
        stream until any connection fails (all are then closed and reopened together)."""
        cfg = self.config
        self._delivered = False
        self._ack_error = None
        sockets: dict[str, Any] = {}
        readers: list[asyncio.Task[None]] = []
        try:
            for group, url in cfg.connection_urls().items():
                sockets[group] = await self._open(group, url)
            # Subscribed by the URLs: frames queue in the sockets while the state is loaded
            # and the gap back-filled, so no bar falls between REST and the stream.
            await self._load_state()
            await self._backfill_all()
            self.metrics.up()
            self._down_since = None
            await self._set_live(True)
            self.health.ready.ok("subscribed")
            log.info("market-data WebSocket subscribed", extra={
                "venue": cfg.venue, "streams": len(self._routes), "connections": sorted(sockets),
                "session": self.connections})
            readers = [asyncio.create_task(self._read(group, ws), name=f"marketdata-{group}")
                       for group, ws in sockets.items()]
            done, _ = await asyncio.wait(readers, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises what ended the connection
            raise _Reconnect("closed", "a connection ended without an error")
        finally:
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            if self._live:
                self._down_since = time.monotonic()
            self.metrics.down()
            await self._set_live(False)
            self.health.ready.fail("WebSocket disconnected; reconnecting")
            for ws in sockets.values():
                with contextlib.suppress(Exception):
                    await asyncio.shield(ws.close())

    async def _read(self, group: str, ws: Any) -> None:
        """Handle frames of one connection in arrival order until it fails or goes idle."""
        idle = self.config.idle_timeout_s
        while True:
            try:
                raw = await asyncio.wait_for(ws.recv(), idle)
            except TimeoutError:
                raise _Reconnect("idle", (
                    f"no message for {idle}s on the {group} connection, which answers pings: "
                    "check the venue's status page; a paused exsim replay sends nothing "
                    "(raise idle_timeout_s for it)")) from None
            # One frame at a time across connections: the order and back-fill state is shared.
            async with self._handling:
                await self._handle(raw)
            self._delivered = True

    async def _load_state(self) -> None:
        """Read the last kline and funding event stored per subject (JetStream is the truth)."""
        cfg = self.config
        for symbol in cfg.symbols:
            if "kline" in cfg.streams:
                for interval in cfg.intervals:
                    subject = subjects.kline(cfg.venue, symbol, interval)
                    last = await self._last_stored(subject)
                    if isinstance(last, KlineMsg):
                        self._last_kline[subject] = max(self._last_kline.get(subject, -1),
                                                        last.open_time)
            if "funding" in cfg.streams:
                last = await self._last_stored(subjects.market(cfg.venue, symbol, "funding"))
                state = self._funding.setdefault(symbol, _FundingState())
                if isinstance(last, FundingMsg):
                    state.stored = max(state.stored or -1, last.funding_time)

    async def _last_stored(self, subject: str) -> Any:
        try:
            raw = await self._js.get_last_msg(MARKET, subject)
        except NotFoundError:
            return None
        except Exception as exc:
            raise _Reconnect("publish", (
                f"cannot read the last message on {subject} from stream {MARKET}: "
                f"{type(exc).__name__}: {exc}; check nats-server and the stream "
                "(nats stream info MARKET)")) from exc
        try:
            return decode_market(raw.data, subject)
        except codec.DecodeError as exc:
            log.warning("last stored message is not a valid market message; ignoring it",
                        extra={"subject": subject, "error": exc.reason, "seq": raw.seq})
            return None

    # -- frames -----------------------------------------------------------------------------

    async def _handle(self, raw: str | bytes) -> None:
        try:
            frame = parse_frame(self.config.venue, raw, self._routes)
        except FrameError as exc:
            self.metrics.received("malformed")
            await self._dead_letter(self._subject_of(exc.stream), raw, exc, "malformed", exc.stream)
            return
        if frame is None:
            self.metrics.received("control")
            return
        kind = frame.route.kind
        if kind == "kline":
            if frame.msg is None:
                self.metrics.received("kline_update", frame.event_time)
                return
            self.metrics.received("kline", frame.event_time)
            await self._on_kline(frame, raw)
        elif kind == "mark":
            self.metrics.received("mark", frame.event_time)
            await self._on_mark(frame, raw)
        else:
            self.metrics.received("book", frame.event_time)
            await self._on_book(frame, raw)

    def _subject_of(self, stream: str | None) -> str:
        venue = self.config.venue
        route = self._routes.get(stream) if stream else None
        if route is None:
            return f"{subjects.MD}.{venue}.ws"  # not attributable to one subject
        if route.kind == "kline":
            return subjects.kline(venue, route.symbol, route.interval or "")
        return subjects.market(venue, route.symbol, route.kind)

    async def _on_kline(self, frame: Frame, raw: str | bytes) -> None:
        msg = frame.msg
        assert isinstance(msg, KlineMsg)
        subject = msg.subject
        last = self._last_kline.get(subject)
        if last is not None:
            if msg.open_time == last:
                self.metrics.duplicates.labels(self.config.venue, "kline").inc()
                return
            if msg.open_time < last:
                self.metrics.out_of_order.labels(self.config.venue, "kline").inc()
                await self._dead_letter(subject, raw, (
                    f"out of order: kline open_time {msg.open_time} is older than the last "
                    f"published {last}"), "out_of_order", frame.stream)
                return
            if msg.open_time > next_open_time(msg.interval, last):
                await self._backfill(msg.symbol, msg.interval, before=msg.open_time)
        await self._publish_kline(msg)

    async def _publish_kline(self, msg: KlineMsg) -> None:
        with tracer.start_as_current_span(
            "md.kline publish", kind=trace.SpanKind.PRODUCER,
            attributes={"messaging.system": "nats", "messaging.destination.name": msg.subject,
                        "md.open_time": msg.open_time, "md.source": msg.source},
        ):
            await self._publish(msg, "kline")
        self._last_kline[msg.subject] = msg.open_time

    def _in_order(self, kind: str, symbol: str, key: tuple[int, ...]) -> str:
        """``new``, ``duplicate`` or ``stale`` for a mark/book message with ordering ``key``."""
        last = self._last_key.get((symbol, kind))
        if last is not None:
            if key == last:
                return "duplicate"
            if key < last:
                return "stale"
        self._last_key[(symbol, kind)] = key
        return "new"

    async def _on_mark(self, frame: Frame, raw: str | bytes) -> None:
        msg = frame.msg
        assert isinstance(msg, MarkMsg)
        order = self._in_order("mark", msg.symbol, (msg.event_time,))
        if order == "duplicate":
            self.metrics.duplicates.labels(self.config.venue, "mark").inc()
            return
        if order == "stale":
            self.metrics.out_of_order.labels(self.config.venue, "mark").inc()
            await self._dead_letter(msg.subject, raw, (
                f"out of order: mark price event_time {msg.event_time} is older than the last "
                f"one {self._last_key[(msg.symbol, 'mark')][0]}"), "out_of_order", frame.stream)
            return
        if "mark" in self.config.streams:
            await self._publish_pipelined(msg, "mark")
        if "funding" in self.config.streams:
            await self._funding_clock(msg)

    async def _on_book(self, frame: Frame, raw: str | bytes) -> None:
        msg = frame.msg
        assert isinstance(msg, BookMsg)
        order = self._in_order("book", msg.symbol, (msg.update_id, msg.event_time))
        if order == "duplicate":
            self.metrics.duplicates.labels(self.config.venue, "book").inc()
            return
        if order == "stale":
            self.metrics.out_of_order.labels(self.config.venue, "book").inc()
            await self._dead_letter(msg.subject, raw, (
                f"out of order: book update {msg.update_id} at {msg.event_time} is older than "
                f"the last one {self._last_key[(msg.symbol, 'book')]}"), "out_of_order",
                frame.stream)
            return
        gap_ms = self.config.book_min_interval_ms
        now = time.monotonic()
        if gap_ms and now - self._book_sent.get(msg.symbol, -1e18) < gap_ms / 1000:
            return  # throttled: the next update carries a newer top of book
        await self._publish_pipelined(msg, "book")
        self._book_sent[msg.symbol] = now

    # -- funding ------------------------------------------------------------------------------

    async def _funding_clock(self, mark: MarkMsg) -> None:
        """Publish funding settlements when the mark stream's next funding time advances."""
        t_next = mark.next_funding_time
        state = self._funding.setdefault(mark.symbol, _FundingState())
        if t_next is not None:
            prev = state.next_time
            if prev is None or t_next > prev:
                lower = state.stored + 1 if state.stored is not None else prev
                if lower is not None and lower < t_next:
                    await self._settle_funding(mark.symbol, lower, t_next, prev, state)
                state.next_time = t_next
            elif t_next < prev:
                log.warning("next funding time went back; keeping the later one", extra={
                    "symbol": mark.symbol, "next_funding_time": t_next, "seen": prev})
        # Only now: the rate seen before T advanced is the one that settled at the old T.
        if mark.funding_rate is not None:
            state.rate = mark.funding_rate
        state.mark = mark.mark_price

    async def _settle_funding(self, symbol: str, lower: int, t_next: int, prev: int | None,
                              state: _FundingState) -> None:
        venue = self.config.venue
        subject = subjects.market(venue, symbol, "funding")
        rows: list[Any] = []
        assert self._rest is not None
        try:
            rows = await self._rest.funding_rates(symbol, start_time=lower, end_time=t_next - 1)
        except RestError as exc:
            log.warning("funding history unavailable; the newest settlement uses the rate last "
                        "seen on the mark-price stream",
                        extra={"symbol": symbol, "error": str(exc)})
        for row in rows:
            try:
                msg = rest_funding(venue, symbol, row)
            except FrameError as exc:
                await self._dead_letter(subject, orjson.dumps(row), exc, "malformed", None)
                continue
            stale = state.stored is not None and msg.funding_time <= state.stored
            if msg.funding_time >= t_next or stale:
                continue
            if msg.mark_price is None and msg.funding_time == prev and state.mark is not None:
                msg = msg.model_copy(update={"mark_price": state.mark})
            await self._publish(msg, "funding")
            if msg.funding_time != prev:
                self.metrics.backfilled.labels(venue, "funding").inc()
            state.stored = msg.funding_time
        unlisted = prev is not None and (state.stored is None or state.stored < prev)
        if unlisted and state.rate is not None:
            # The venue has not listed the settlement yet (Binance: seconds after the hour).
            msg = FundingMsg(venue=venue, symbol=symbol, funding_time=prev,
                             funding_rate=state.rate, mark_price=state.mark)
            await self._publish(msg, "funding")
            state.stored = prev

    # -- back-fill ----------------------------------------------------------------------------

    def _venue_now(self) -> int:
        return _now_ms() + self._clock_offset_ms

    async def _backfill_all(self) -> None:
        cfg = self.config
        if "kline" not in cfg.streams:
            return
        assert self._rest is not None
        try:
            self._clock_offset_ms = await self._rest.server_time() - _now_ms()
        except RestError as exc:
            raise _Reconnect("backfill",
                             f"cannot read the venue clock: {exc}; check rest_url") from exc
        for symbol in cfg.symbols:
            for interval in cfg.intervals:
                await self._backfill(symbol, interval, before=None)

    async def _backfill(self, symbol: str, interval: str, before: int | None) -> int:
        """Publish, in order, the closed klines after the last stored one (and before
        ``before``, an open time in ms, when given) from ``GET /fapi/v1/klines``.

        With nothing stored, back-fills ``initial_backfill_bars`` (only at connect).
        Returns how many were published; raises :class:`_Reconnect` when REST fails.
        """
        cfg = self.config
        subject = subjects.kline(cfg.venue, symbol, interval)
        published, first = 0, None
        try:
            with tracer.start_as_current_span("md.kline backfill", attributes={
                    "messaging.destination.name": subject}):
                async for msg in self._missing_klines(symbol, interval, subject, before):
                    await self._publish_kline(msg)
                    self.metrics.backfilled.labels(cfg.venue, "kline").inc()
                    published += 1
                    first = msg.open_time if first is None else first
        except RestError as exc:
            raise _Reconnect("backfill", (
                f"REST back-fill of {subject} failed: {exc}; check rest_url and the venue's rate "
                "limits (HTTP 429/418)")) from exc
        if published:
            log.info("klines back-filled from REST", extra={
                "subject": subject, "count": published, "from_open_time": first,
                "to_open_time": self._last_kline.get(subject)})
        return published

    async def _missing_klines(self, symbol: str, interval: str, subject: str,
                              before: int | None) -> AsyncIterator[KlineMsg]:
        """Closed klines newer than the last stored one (older than ``before``), oldest
        first, page by page (Binance: at most 1500 per request)."""
        cfg = self.config
        assert self._rest is not None
        last = self._last_kline.get(subject)
        if last is None:
            if before is None and cfg.initial_backfill_bars:
                rows = await self._rest.klines(symbol, interval,
                                               limit=cfg.initial_backfill_bars + 1)
                msgs, _ = await self._closed(symbol, interval, rows, subject)
                for msg in msgs[-cfg.initial_backfill_bars:]:
                    yield msg
            return
        start = last + 1
        while True:
            rows = await self._rest.klines(
                symbol, interval, start_time=start,
                end_time=before - 1 if before is not None else None, limit=cfg.backfill_page)
            msgs, forming = await self._closed(symbol, interval, rows, subject)
            for msg in msgs:
                if msg.open_time > self._last_kline.get(subject, -1) and (
                        before is None or msg.open_time < before):
                    yield msg
            if len(rows) < cfg.backfill_page or forming or not msgs:
                return  # the newest closed bar, or the forming one, was reached
            start = msgs[-1].open_time + 1

    async def _closed(self, symbol: str, interval: str, rows: list[Any],
                      subject: str) -> tuple[list[KlineMsg], bool]:
        """``(closed klines of a REST page oldest first, reached the forming bar)``.
        Malformed rows are dead-lettered and skipped."""
        received = _now_ms()
        now = self._venue_now()
        out = []
        for row in rows:
            try:
                msg = rest_kline(self.config.venue, symbol, interval, row, received)
            except FrameError as exc:
                await self._dead_letter(subject, orjson.dumps(row), exc, "malformed", None)
                continue
            if msg.close_time >= now:
                return out, True  # still forming on the venue
            out.append(msg)
        return out, False

    # -- JetStream ------------------------------------------------------------------------------

    async def _publish(self, msg: KlineMsg | MarkMsg | FundingMsg | BookMsg, kind: str) -> None:
        try:
            ack = await publish(self._js, msg.subject, msg, msg_id=msg.msg_id,
                                timeout=self.config.publish_timeout_s)
        except Exception as exc:
            raise _Reconnect("publish", (
                f"JetStream did not store {msg.subject} ({type(exc).__name__}: {exc}); check "
                "nats-server, NATS_URL and stream MARKET (nats stream info MARKET)")) from exc
        if ack.duplicate:
            self.metrics.duplicates.labels(self.config.venue, kind).inc()
        else:
            self.metrics.published.labels(self.config.venue, kind).inc()

    async def _publish_pipelined(self, msg: MarkMsg | BookMsg, kind: str) -> None:
        """Publish without waiting for the ack (checked in the background).

        Mark prices and book updates are frequent and each supersedes the last, so they do
        not pay a JetStream round trip each (bench/marketdata.py); klines and funding do,
        because their order and completeness rules rely on the ack. A failed ack ends the
        session like a failed publish. Same encoding and headers as
        :func:`tradefleet.bus.publish.publish` (which has no pipelined variant).
        """
        if self._ack_error is not None:
            raise _Reconnect("publish", (
                f"JetStream refused a pipelined {kind} publish ({self._ack_error!r}); check "
                "nats-server and stream MARKET (nats stream info MARKET)"))
        headers = inject_headers({codec.MSG_ID: msg.msg_id})
        try:
            future = await self._js.publish_async(
                msg.subject, codec.encode(msg), headers=headers,
                wait_stall=self.config.publish_timeout_s)
        except Exception as exc:
            raise _Reconnect("publish", (
                f"JetStream did not take {msg.subject} ({type(exc).__name__}: {exc}): too many "
                "unacknowledged publishes; check nats-server and stream MARKET")) from exc
        future.add_done_callback(functools.partial(self._acked, kind))

    def _acked(self, kind: str, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            self._ack_error = exc
        elif future.result().duplicate:
            self.metrics.duplicates.labels(self.config.venue, kind).inc()
        else:
            self.metrics.published.labels(self.config.venue, kind).inc()

    async def _dead_letter(self, subject: str, raw: str | bytes, error: BaseException | str,
                           reason: str, stream: str | None) -> None:
        payload = raw.encode() if isinstance(raw, str) else bytes(raw)
        headers = {DLQ_STREAM_HEADER: stream} if stream else None
        try:
            await codec.dead_letter(self._js, subject, payload, error, headers,
                                    timeout=self.config.publish_timeout_s)
        except Exception as exc:
            raise _Reconnect("publish", (
                f"cannot dead-letter a message of {subject} to stream {DLQ}: "
                f"{type(exc).__name__}: {exc}; check nats-server and stream DLQ")) from exc
        self.metrics.dead_letters.labels(self.config.venue, reason).inc()
        log.warning("market message dead-lettered", extra={
            "subject": subject, "reason": reason, "error": str(error)[:300], "stream": stream})
