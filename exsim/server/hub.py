"""WebSocket fan-out: market streams by name and user-data streams by account.

Each connected socket is a :class:`StreamClient` with its own bounded send queue and sender
task, so one slow reader never stalls the replay; a client whose queue overflows is dropped
(Binance disconnects slow consumers too). Payloads are encoded once per publish.

Envelopes (Binance "Websocket Market Streams"): raw sockets (``/ws/...``) receive the
payload object itself; combined sockets (``/stream?streams=...``) receive
``{"stream": "<name>", "data": <payload>}``. User-data streams are named by their listenKey.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketState

__all__ = ["StreamClient", "StreamHub"]

log = logging.getLogger("tradefleet.exsim.ws")

QUEUE_LIMIT = 10_000
#: The replay waits for clients above this many queued frames (backpressure) ...
HIGH_WATER = 2_000
#: ... for at most this long before dropping them as too slow.
DRAIN_TIMEOUT_S = 10.0


class StreamClient:
    """One WebSocket connection: its subscribed stream names and its send queue."""

    def __init__(self, ws: WebSocket, combined: bool) -> None:
        self.ws = ws
        self.combined = combined
        self.streams: set[str] = set()
        self.listen_keys: dict[str, str] = {}   # listenKey -> account id
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_LIMIT)
        self.closed = False

    def send_bytes(self, data: bytes) -> bool:
        """Queue one text frame (UTF-8 JSON); False when the queue is full (client too slow)."""
        if self.closed:
            return False
        try:
            self.queue.put_nowait(data)
            return True
        except asyncio.QueueFull:
            return False

    def send_json(self, obj: Any) -> bool:
        """Queue ``obj`` as JSON."""
        return self.send_bytes(orjson.dumps(obj))

    async def run_sender(self) -> None:
        """Write queued frames until :meth:`close` (a None sentinel) or a send error."""
        try:
            while True:
                data = await self.queue.get()
                if data is None:
                    break
                await self.ws.send_text(data.decode())
        except Exception:  # connection gone: the receive loop notices and unregisters
            pass

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Stop the sender and close the socket with ``code``."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)
        if self.ws.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await self.ws.close(code=code, reason=reason)


class StreamHub:
    """Registry of connected clients and their subscriptions; publishes to them."""

    def __init__(self) -> None:
        self.clients: set[StreamClient] = set()
        self._by_stream: dict[str, set[StreamClient]] = defaultdict(set)
        self._by_account: dict[str, set[StreamClient]] = defaultdict(set)

    # -- registration -------------------------------------------------------------------
    def add(self, client: StreamClient) -> None:
        """Register a newly accepted client."""
        self.clients.add(client)

    def remove(self, client: StreamClient) -> None:
        """Forget a client and all its subscriptions."""
        self.clients.discard(client)
        for name in client.streams:
            subs = self._by_stream.get(name)
            if subs is not None:
                subs.discard(client)
                if not subs:
                    del self._by_stream[name]
        for account_id in set(client.listen_keys.values()):
            subs = self._by_account.get(account_id)
            if subs is not None:
                subs.discard(client)
                if not subs:
                    del self._by_account[account_id]
        client.streams.clear()
        client.listen_keys.clear()

    def subscribe(self, client: StreamClient, name: str) -> None:
        """Add market stream ``name`` (e.g. ``btcusdt@kline_1m``) to ``client``."""
        client.streams.add(name)
        self._by_stream[name].add(client)

    def unsubscribe(self, client: StreamClient, name: str) -> None:
        """Remove market stream or listenKey ``name`` from ``client``."""
        if name in client.listen_keys:
            account_id = client.listen_keys.pop(name)
            if account_id not in client.listen_keys.values():
                self._by_account[account_id].discard(client)
            return
        client.streams.discard(name)
        subs = self._by_stream.get(name)
        if subs is not None:
            subs.discard(client)
            if not subs:
                del self._by_stream[name]

    def subscribe_user(self, client: StreamClient, listen_key: str, account_id: str) -> None:
        """Deliver ``account_id``'s user-data events to ``client`` under ``listen_key``."""
        client.listen_keys[listen_key] = account_id
        self._by_account[account_id].add(client)

    @property
    def stream_count(self) -> int:
        """Distinct market streams with at least one subscriber."""
        return len(self._by_stream)

    def subscriptions(self, client: StreamClient) -> list[str]:
        """Every stream name the client receives (market streams and listenKeys)."""
        return sorted(client.streams) + sorted(client.listen_keys)

    # -- publishing ---------------------------------------------------------------------
    def wants(self, name: str) -> bool:
        """True when some client subscribes ``name`` (skip building unused payloads)."""
        return name in self._by_stream

    def publish(self, name: str, payload: Any) -> None:
        """Send ``payload`` to every subscriber of market stream ``name``."""
        subs = self._by_stream.get(name)
        if not subs:
            return
        raw = combined = None
        for client in tuple(subs):
            if client.combined:
                if combined is None:
                    combined = b'{"stream":' + orjson.dumps(name) + b',"data":' + \
                        orjson.dumps(payload) + b"}"
                ok = client.send_bytes(combined)
            else:
                if raw is None:
                    raw = orjson.dumps(payload)
                ok = client.send_bytes(raw)
            if not ok:
                self._drop_slow(client)

    def publish_user(self, account_id: str, payload: Any) -> None:
        """Send a user-data event to every socket listening for ``account_id``."""
        subs = self._by_account.get(account_id)
        if not subs:
            return
        raw = orjson.dumps(payload)
        for client in tuple(subs):
            if client.combined:
                for key, acct in client.listen_keys.items():
                    if acct == account_id:
                        ok = client.send_bytes(b'{"stream":' + orjson.dumps(key) +
                                               b',"data":' + raw + b"}")
                        break
                else:  # pragma: no cover - index and client state agree
                    ok = True
            else:
                ok = client.send_bytes(raw)
            if not ok:
                self._drop_slow(client)

    def _drop_slow(self, client: StreamClient) -> None:
        log.warning("ws client dropped: send queue full", extra={"streams": len(client.streams)})
        self.remove(client)
        asyncio.get_running_loop().create_task(client.close(1008, "client too slow"))

    def congested(self) -> bool:
        """True when some client has more than HIGH_WATER frames queued."""
        return any(c.queue.qsize() > HIGH_WATER for c in self.clients)

    async def drain(self, timeout: float = DRAIN_TIMEOUT_S) -> None:
        """Wait until every client is at or below HIGH_WATER queued frames; clients still
        above it after ``timeout`` seconds are dropped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            slow = [c for c in self.clients if c.queue.qsize() > HIGH_WATER]
            if not slow:
                return
            if loop.time() >= deadline:
                for c in slow:
                    self._drop_slow(c)
                return
            await asyncio.sleep(0.002)

    async def drop_all(self, code: int = 1001, reason: str = "exsim: connections dropped") -> int:
        """Close every connection now (fault injection); returns how many were closed."""
        clients = list(self.clients)
        for client in clients:
            self.remove(client)
        await asyncio.gather(*(c.close(code, reason) for c in clients), return_exceptions=True)
        return len(clients)
