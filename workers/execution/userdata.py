"""User-data stream: learn at once which symbols changed on the exchange.

Stops and take-profits fill on the exchange between the bot's bars. The user-data stream
(Binance "User Data Streams": ``POST /fapi/v1/listenKey``, then ``wss://…/ws/<listenKey>``,
keepalive ``PUT`` every 30 minutes, key valid 60 minutes) pushes ``ORDER_TRADE_UPDATE``,
``ALGO_UPDATE`` and ``ACCOUNT_UPDATE`` events as they happen.

:class:`UserDataWatcher` only says **which symbols** to look at: the bot then calls
:meth:`~.executor.Executor.sync` for them. REST ``sync`` stays the single reconciliation
path — events are lost while a socket reconnects, REST answers are not — and the watcher
just makes it prompt instead of once per bar. The watcher reconnects with backoff and a
fresh listenKey, and marks every watched symbol changed after a reconnect (something may
have happened while it was away).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Iterable
from typing import Any

import orjson
import websockets

from tradefleet.api.tradingbot import Mode, TradingBotSpec

__all__ = ["UserDataWatcher", "user_stream_base"]

log = logging.getLogger("tradefleet.execution.userdata")

_LIVE_WS = "wss://fstream.binance.com"
_TESTNET_WS = "wss://stream.binancefuture.com"
KEEPALIVE_S = 30 * 60  # Binance: "a PUT every 60 minutes is recommended"; 30 leaves margin


def user_stream_base(spec: TradingBotSpec) -> str:
    """WebSocket base for ``spec``: ``endpoints.wsUrl`` when set (exsim), else Binance's
    USDⓈ-M stream host for testnet or live. Raises ValueError for exsim without a wsUrl."""
    if spec.endpoints.ws_url:
        return spec.endpoints.ws_url.rstrip("/")
    if spec.venue == "exsim":
        raise ValueError("endpoints.wsUrl is required for venue exsim's user-data stream "
                         "(e.g. ws://exsim:9010)")
    return _TESTNET_WS if spec.mode is Mode.TESTNET else _LIVE_WS


def symbols_of(event: dict[str, Any]) -> set[str]:
    """Exchange symbols an event touches (``ORDER_TRADE_UPDATE``/``ALGO_UPDATE`` ``o.s``,
    ``ACCOUNT_UPDATE`` ``a.P[].s``)."""
    kind = event.get("e")
    if kind in ("ORDER_TRADE_UPDATE", "ALGO_UPDATE"):
        s = (event.get("o") or {}).get("s")
        return {s} if s else set()
    if kind == "ACCOUNT_UPDATE":
        return {p["s"] for p in (event.get("a") or {}).get("P", []) if p.get("s")}
    return set()


class UserDataWatcher:
    """Watches the account's user-data stream for the bot's symbols.

    Args:
        exchange: the executor's ccxt client (the listenKey is requested with its API key).
        ws_base: WebSocket base (:func:`user_stream_base`), e.g. ``ws://127.0.0.1:9010``.
        symbols: exchange ids to report (others are ignored).
        reconnect_max_s: cap of the reconnect backoff, seconds.

    Use: ``task = asyncio.create_task(watcher.run())``; ``await watcher.wait()`` returns
    the symbols that changed since the last call (waits for at least one); ``changed()``
    takes them without waiting; cancel the task to stop.
    """

    def __init__(self, exchange: Any, ws_base: str, symbols: Iterable[str], *,
                 reconnect_max_s: float = 30.0) -> None:
        self.exchange = exchange
        self.ws_base = ws_base.rstrip("/")
        self.symbols = frozenset(symbols)
        self.reconnect_max_s = reconnect_max_s
        self.connected = asyncio.Event()
        self.events = 0
        self.reconnects = 0
        self._changed: set[str] = set()
        self._wake = asyncio.Event()

    def changed(self) -> set[str]:
        """Symbols with events since the last call (and clears them)."""
        out, self._changed = self._changed, set()
        self._wake.clear()
        return out

    async def wait(self, timeout: float | None = None) -> set[str]:
        """Wait until some symbol changed (or ``timeout`` s passed) and return them."""
        if not self._changed:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
        return self.changed()

    def _mark(self, symbols: Iterable[str]) -> None:
        hit = self.symbols.intersection(symbols)
        if hit:
            self._changed |= hit
            self._wake.set()

    async def run(self) -> None:
        """Connect, read events, reconnect with backoff; runs until cancelled."""
        failures = 0
        while True:
            try:
                key = (await self.exchange.fapiPrivatePostListenKey())["listenKey"]
                async with websockets.connect(f"{self.ws_base}/ws/{key}",
                                              ping_interval=20, ping_timeout=20) as ws:
                    if failures or self.reconnects:
                        self._mark(self.symbols)  # events may have been missed meanwhile
                    self.connected.set()
                    failures = 0
                    keepalive = asyncio.create_task(self._keepalive())
                    try:
                        async for raw in ws:
                            self._on_message(raw)
                    finally:
                        keepalive.cancel()
                        self.connected.clear()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means: reconnect
                failures += 1
                log.warning("user-data stream lost; reconnecting",
                            extra={"error": f"{type(exc).__name__}: {exc}",
                                   "failures": failures})
            self.reconnects += 1
            delay = min(self.reconnect_max_s, 0.5 * 2 ** min(failures, 6))
            await asyncio.sleep(delay / 2 + random.uniform(0, delay / 2))

    def _on_message(self, raw: str | bytes) -> None:
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError:
            log.warning("user-data frame is not JSON; ignored")
            return
        if not isinstance(event, dict):
            return
        if event.get("e") == "listenKeyExpired":
            raise ConnectionError("listenKey expired")
        self.events += 1
        self._mark(symbols_of(event))

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_S)
            try:
                await self.exchange.fapiPrivatePutListenKey()
            except Exception as exc:  # noqa: BLE001 - the next connect gets a new key
                log.warning("listenKey keepalive failed", extra={"error": str(exc)})
