"""Prometheus metrics of a market-data feed (served on ``/metrics`` with ``/healthz``).

Seed names (seed 002, "Monitoreo & Ops"): ``ws_uptime`` and ``ingest_rate``. The rest use the
``md_`` prefix of the subjects they describe. Every series carries ``venue``.

=============================  =======  ==================================================
name                           type     meaning
=============================  =======  ==================================================
ws_uptime                      gauge    seconds the current WebSocket has been open (0 down)
ws_connected                   gauge    1 while the WebSocket is open and subscribed
ingest_rate                    gauge    WebSocket messages received per second, last 60 s
md_messages_total              counter  messages received by ``kind``: kline (closed),
                                        kline_update (bar still forming), mark, book,
                                        control, malformed
md_published_total             counter  messages stored in JetStream by ``kind``
                                        (kline, mark, funding, book)
md_duplicates_total            counter  not published again by ``kind``: equal to the last
                                        one published, or JetStream answered "duplicate"
md_out_of_order_total          counter  older than the last one published, by ``kind``
md_dead_letters_total          counter  sent to ``dlq.md.*`` by ``reason`` (malformed,
                                        out_of_order)
md_reconnects_total            counter  WebSocket reconnects by ``reason`` (closed, idle,
                                        connect, ping, publish, backfill, error)
md_backfill_total              counter  messages back-filled from REST by ``kind``
md_lag_ms                      gauge    receive time − venue event time of the last
                                        message, by ``kind`` (ms; meaningless for a replay,
                                        whose event times are the replay clock)
=============================  =======  ==================================================
"""

from __future__ import annotations

import time
from collections import deque

from prometheus_client import CollectorRegistry, Counter, Gauge

from tradefleet.telemetry.metrics import new_registry

RATE_WINDOW_S = 60.0
RECONNECT_REASONS = ("closed", "idle", "connect", "ping", "publish", "backfill", "error")
"""Values of ``md_reconnects_total{reason}``."""


class RateWindow:
    """Events per second over the last ``window_s`` seconds, kept as per-second buckets."""

    def __init__(self, window_s: float = RATE_WINDOW_S, clock=time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._buckets: deque[list[float]] = deque()  # [second, count]

    def add(self, n: int = 1) -> None:
        now = int(self._clock())
        if self._buckets and self._buckets[-1][0] == now:
            self._buckets[-1][1] += n
        else:
            self._buckets.append([now, n])
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._buckets and self._buckets[0][0] <= now - self.window_s:
            self._buckets.popleft()

    def rate(self) -> float:
        """Events per second averaged over the window."""
        self._trim(int(self._clock()))
        return sum(c for _, c in self._buckets) / self.window_s


class FeedMetrics:
    """The metrics of one feed in their own registry (see the module table)."""

    def __init__(self, venue: str, registry: CollectorRegistry | None = None) -> None:
        self.venue = venue
        self.registry = registry or new_registry()
        r = self.registry
        self.connected_since: float | None = None
        self.ingest = RateWindow()

        self.ws_uptime = Gauge("ws_uptime", "Seconds the current market-data WebSocket has been "
                               "open (0 while disconnected)", ["venue"], registry=r)
        self.ws_uptime.labels(venue).set_function(self._uptime)
        self.ws_connected = Gauge("ws_connected", "1 while the market-data WebSocket is open "
                                  "and subscribed", ["venue"], registry=r)
        self.ws_connected.labels(venue).set(0)
        self.ingest_rate = Gauge("ingest_rate", "WebSocket messages received per second over "
                                 "the last 60 s", ["venue"], registry=r)
        self.ingest_rate.labels(venue).set_function(self.ingest.rate)
        self.messages = Counter("md_messages", "WebSocket messages received, by kind",
                                ["venue", "kind"], registry=r)
        self.published = Counter("md_published", "Messages stored in JetStream, by kind",
                                 ["venue", "kind"], registry=r)
        self.duplicates = Counter("md_duplicates", "Messages not published again (already "
                                  "stored), by kind", ["venue", "kind"], registry=r)
        self.out_of_order = Counter("md_out_of_order", "Messages older than the last one "
                                    "published, by kind", ["venue", "kind"], registry=r)
        self.dead_letters = Counter("md_dead_letters", "Messages sent to the DLQ, by reason",
                                    ["venue", "reason"], registry=r)
        self.reconnects = Counter("md_reconnects", "WebSocket reconnects, by reason",
                                  ["venue", "reason"], registry=r)
        self.backfilled = Counter("md_backfill", "Messages back-filled from REST, by kind",
                                  ["venue", "kind"], registry=r)
        self.lag_ms = Gauge("md_lag_ms", "Receive time minus venue event time of the last "
                            "message, ms", ["venue", "kind"], registry=r)
        # Series exist from the start (at 0), so rate() and alerts work before a first event.
        for reason in RECONNECT_REASONS:
            self.reconnects.labels(venue, reason)
        for reason in ("malformed", "out_of_order"):
            self.dead_letters.labels(venue, reason)

    def _uptime(self) -> float:
        since = self.connected_since
        return 0.0 if since is None else time.monotonic() - since

    def up(self) -> None:
        """The WebSocket is open and subscribed."""
        self.connected_since = time.monotonic()
        self.ws_connected.labels(self.venue).set(1)

    def down(self) -> None:
        """The WebSocket is gone."""
        self.connected_since = None
        self.ws_connected.labels(self.venue).set(0)

    def received(self, kind: str, event_time: int | None = None) -> None:
        """Count one WebSocket message of ``kind``; record its lag when it has an event time."""
        self.ingest.add()
        self.messages.labels(self.venue, kind).inc()
        if event_time is not None:
            self.lag_ms.labels(self.venue, kind).set(time.time() * 1000 - event_time)
