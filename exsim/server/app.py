"""The exsim application: engine + replay + keys + streams, served by FastAPI/uvicorn.

``create_app(config)`` builds the ASGI app (data loaded, accounts opened); ``serve(config)``
runs it with uvicorn until cancelled; :class:`ServerThread` runs it on a background thread
(tests, benchmarks, ``tradefleet run``) and reports the bound URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from datetime import datetime, timezone
from typing import Any

import uvicorn
from fastapi import FastAPI
from starlette.routing import Route

from ..engine import Engine, EngineConfig, Event, ExchangeError, default_specs
from .auth import KeyStore
from .config import ServerConfig
from .data import load_market_data
from .faults import Faults
from .hub import StreamHub
from .listenkeys import ListenKeys
from .replay import Replay
from .routes import account, admin, public, trade, ws
from .shapes import algo_update_event, is_algo

__all__ = ["Exsim", "create_app", "serve", "ServerThread"]

log = logging.getLogger("tradefleet.exsim")

_CONDITIONAL_NAMES = {"STOP_MARKET", "TAKE_PROFIT_MARKET", "STOP", "TAKE_PROFIT"}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")


class Exsim:
    """The running exchange: one engine account per API key, the replay and the streams.

    Raises ``DataError`` (bad data dir) or ValueError (a replayed symbol without a spec).
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.data = load_market_data(config.data_dir, config.symbols)
        all_specs = config.specs or default_specs()
        missing = sorted(s for s in self.data.symbols if s not in all_specs)
        if missing:
            raise ValueError(f"no symbol spec (exchangeInfo filters) for {', '.join(missing)}; "
                             f"known: {', '.join(sorted(all_specs))}")
        self.specs = {s: all_specs[s] for s in self.data.symbols}
        self.engine_config = config.engine_config or EngineConfig()
        self.engine = Engine(self.specs, self.engine_config)
        self.keys = KeyStore(config.resolved_keys())
        self.hub = StreamHub()
        self.faults = Faults()
        self.listen_keys = ListenKeys()
        self.replay = Replay(self.data, self.engine, self.hub, config.speed)
        self._algo_seen: dict[int, str] = {}
        self._open_accounts()
        self.replay.prime()
        self.engine.subscribe(self._on_event)

    def _open_accounts(self) -> None:
        for key in self.keys.keys:
            self.engine.create_account(key.account_id, self.config.initial_balance,
                                       time_ms=self.replay.clock_ms)

    # -- user-data events -----------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        """Forward an engine event to the account's user-data sockets, in Binance's shape.

        Conditional orders live in the algo service until they trigger, so their events
        before triggering go out as ``ALGO_UPDATE``; after triggering the order's
        ``ORDER_TRADE_UPDATE`` is followed by an ``ALGO_UPDATE`` when the algo status moves
        (TRIGGERED, FINISHED). Never raises: a stream problem must not fail the order.
        """
        try:
            self._forward(event)
        except Exception:
            log.exception("user-data event not forwarded", extra={"event": event.event_type})

    def _forward(self, event: Event) -> None:
        payload = event.payload
        if event.event_type == "ORDER_TRADE_UPDATE":
            o = payload.get("o", {})
            if o.get("ot") in _CONDITIONAL_NAMES or o.get("o") in _CONDITIONAL_NAMES:
                try:
                    order = self.engine.get_order(event.account_id, o["s"], order_id=o["i"])
                except (ExchangeError, KeyError):
                    order = None
                if order is not None:
                    algo = algo_update_event(order, event.event_time)
                    status = algo["o"]["X"]
                    if is_algo(order):
                        if self._algo_seen.get(order.order_id) != status:
                            self._algo_seen[order.order_id] = status
                            self.hub.publish_user(event.account_id, algo)
                        return
                    self.hub.publish_user(event.account_id, payload)
                    if self._algo_seen.get(order.order_id) != status:
                        self._algo_seen[order.order_id] = status
                        self.hub.publish_user(event.account_id, algo)
                    return
        self.hub.publish_user(event.account_id, payload)

    # -- admin ----------------------------------------------------------------------------
    async def reset(self) -> None:
        """Engine and replay back to the start; faults cleared; sockets stay connected."""
        await self.replay.reset()
        self.engine.reset()
        self.replay.prime()
        self._algo_seen.clear()
        self.faults.clear()

    def status(self) -> dict[str, Any]:
        """The admin status document (see README-exsim.md, "Admin API")."""
        r = self.replay
        timeline = self.data.timeline
        clock = r.clock_ms
        return {
            "symbols": list(self.data.symbols),
            "interval": "1m",
            "bars_loaded": self.data.bars_loaded,
            "bars_replayed": r.bars_replayed,
            "steps_total": r.steps_total,
            "steps_replayed": r.position,
            "replay_clock": clock,
            "replay_clock_iso": _iso(clock) if timeline else None,
            "data_start": timeline[0] if timeline else None,
            "data_end": timeline[-1] + 60_000 if timeline else None,
            "running": r.running,
            "finished": r.finished,
            "speed_bars_per_sec": r.speed,
            "ws_clients": len(self.hub.clients),
            "ws_streams": self.hub.stream_count,
            "server_time": int(time.time() * 1000),
            "accounts": [{"account_id": k.account_id, "api_key": k.key} for k in self.keys.keys],
            "faults": self.faults.to_dict(),
        }


def create_app(config: ServerConfig) -> FastAPI:
    """Build the exsim ASGI app. The replay starts with the app (unless ``config.paused``)."""
    exsim = Exsim(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if not config.paused:
            exsim.replay.start()
        try:
            yield
        finally:
            await exsim.replay.pause()
            await exsim.hub.drop_all(1001, "exsim shutting down")

    app = FastAPI(title="exsim", lifespan=lifespan,
                  description="Binance USDⓈ-M futures simulator: Binance REST under /fapi, "
                              "WebSocket streams under /ws and /stream, admin API under /admin.")
    app.state.exsim = exsim
    for path, methods, handler in public.ROUTES + trade.ROUTES + account.ROUTES:
        app.router.routes.append(Route(path, handler, methods=methods, include_in_schema=False))
    app.router.routes.extend(ws.ROUTES)
    app.include_router(admin.router)
    return app


def _uvicorn_config(app: FastAPI, host: str, port: int, log_level: str) -> uvicorn.Config:
    # log_config=None: keep the process's logging (JSON lines from the CLI) instead of uvicorn's.
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, ws="websockets-sansio",
                          log_config=None,
                          lifespan="on", access_log=False, ws_ping_interval=20.0,
                          ws_ping_timeout=20.0)


async def serve(config: ServerConfig, log_level: str = "info",
                on_started: Any = None) -> None:
    """Run exsim with uvicorn until cancelled. ``on_started(base_url)`` is called once the
    socket is bound (with the real port when ``config.port`` is 0)."""
    app = create_app(config)
    server = uvicorn.Server(_uvicorn_config(app, config.host, config.port, log_level))
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        if task.done():
            await task  # re-raise a bind error
            return
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    if on_started is not None:
        on_started(f"http://{config.host}:{port}")
    try:
        await task
    finally:
        server.should_exit = True


class ServerThread:
    """exsim on a background thread with its own event loop (tests, benchmarks).

    ``start()`` blocks until the server listens and returns the base URL
    (``http://host:port``); ``stop()`` shuts it down. Engine state is only touched on the
    server's loop; talk to it over HTTP/WebSocket.
    """

    def __init__(self, config: ServerConfig, log_level: str = "warning") -> None:
        self.config = config
        self.log_level = log_level
        self.base_url: str | None = None
        self.app: FastAPI | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._ready = threading.Event()

    @property
    def exsim(self) -> Exsim:
        """The running :class:`Exsim` (read-only use from other threads)."""
        assert self.app is not None
        return self.app.state.exsim

    def start(self, timeout: float = 30.0) -> str:
        self._thread = threading.Thread(target=self._run, name="exsim-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"exsim did not start within {timeout} s")
        if self._error is not None:
            raise RuntimeError(f"exsim failed to start: {self._error}") from self._error
        assert self.base_url is not None
        return self.base_url

    def _run(self) -> None:
        try:
            self.app = create_app(self.config)
            self._server = uvicorn.Server(_uvicorn_config(self.app, self.config.host,
                                                          self.config.port, self.log_level))
            asyncio.run(self._main())
        except BaseException as e:  # surfaced by start()
            self._error = e
            self._ready.set()

    async def _main(self) -> None:
        assert self._server is not None
        task = asyncio.get_running_loop().create_task(self._server.serve())
        while not self._server.started:
            if task.done():
                await task
                raise RuntimeError("uvicorn exited before starting")
            await asyncio.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://{self.config.host}:{port}"
        self._ready.set()
        await task

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
