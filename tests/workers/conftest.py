"""Fixtures for worker tests: a real exsim exchange over HTTP/WebSocket.

==================  ========  ===========================================================
fixture             scope     what it gives
==================  ========  ===========================================================
exsim_thread        session   exsim (``tradefleet.exsim.server``) on a background thread,
                              free port, bundled ``data/binance-um`` (BTC/ETH/SOL USDT,
                              1m, 2025-05-05 → 05-11), replay paused, two accounts
exsim               function  :class:`ExsimHandle`; the exchange is reset first (accounts
                              at :data:`INITIAL_BALANCE` USDT, replay paused at the first
                              bar, faults cleared), so every test starts from one state
==================  ========  ===========================================================

The :class:`ExsimHandle` contract (the market-data, execution and bot-worker tests rely on
it; keep it stable):

- ``rest_url``  ``http://127.0.0.1:PORT`` (Binance REST base, ``/fapi/v1/...``)
- ``ws_url``    ``ws://127.0.0.1:PORT`` (WebSocket base: ``/ws/...``, ``/stream?streams=``)
- ``api_key`` / ``api_secret``  account 1; ``accounts`` every ``(key, secret)`` pair
- ``await step(n=1)``  replay ``n`` lockstep 1m bars (every symbol) and return the status
  once done (the WebSocket frames of those bars are queued to connected clients)
- ``await status()``  the admin status document (``replay_clock`` ms, ``bars_replayed``...)
- ``await reset()``   accounts, orders and replay back to the start, faults cleared
- ``await fault(**settings)``  REST fault injection (``order_reject_rate``,
  ``http_429_rate``, ``http_5xx_rate``, ``latency_ms``, ``retry_after_s``, ``seed``)
- ``await drop_ws()`` close every WebSocket connection now (code 1001); returns how many
- ``await clear_faults()``
- ``ccxt_client(api_key=None, api_secret=None, **config)``  a new
  ``ccxt.async_support.binanceusdm`` with only its URLs overridden and
  ``options.fetchCurrencies = False``; ``config`` is merged in; the caller closes it.

Tests are deterministic: the replay never runs on its own; tests step it.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt_async
import httpx
import pytest

from tradefleet.exsim.server import ServerConfig, ServerThread, ccxt_urls

DATA = Path(__file__).resolve().parents[2] / "data" / "binance-um"
ACCOUNTS: tuple[tuple[str, str], ...] = (
    ("workers-key-1", "workers-secret-1"),
    ("workers-key-2", "workers-secret-2"),
)
INITIAL_BALANCE = Decimal("10000")
"""USDT in every exsim account after a reset."""
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
"""Symbols of the bundled data, all replayed in lockstep."""


@lru_cache(maxsize=None)
def csv_klines(symbol: str) -> tuple[dict[str, str], ...]:
    """The recorded 1m klines of ``symbol`` straight from the gzip CSV (test oracle):
    ``open_time, open, high, low, close, volume, close_time`` as the file's text."""
    [path] = sorted((DATA / "klines").glob(f"{symbol}-1m-*.csv.gz"))
    with gzip.open(path, "rt", newline="") as fh:
        return tuple(csv.DictReader(fh))


@lru_cache(maxsize=None)
def csv_funding(symbol: str) -> tuple[dict[str, str], ...]:
    """The recorded funding events of ``symbol``: ``funding_time`` (ms), ``funding_rate``."""
    [path] = sorted((DATA / "funding").glob(f"{symbol}-funding-*.csv.gz"))
    with gzip.open(path, "rt", newline="") as fh:
        return tuple(csv.DictReader(fh))


class ExsimHandle:
    """One test's view of the shared exsim server (see the module docstring)."""

    def __init__(self, base_url: str, accounts: tuple[tuple[str, str], ...]) -> None:
        self.rest_url = base_url
        self.ws_url = "ws" + base_url[len("http"):]
        self.accounts = accounts
        self.api_key, self.api_secret = accounts[0]
        self._http = httpx.AsyncClient(base_url=base_url, timeout=60)

    async def _call(self, method: str, path: str, json: Any = None) -> Any:
        resp = await self._http.request(method, path, json=json)
        if resp.status_code != 200:
            raise AssertionError(
                f"exsim admin {method} {path}: HTTP {resp.status_code} {resp.text}")
        return resp.json()

    async def step(self, n: int = 1) -> dict:
        """Replay ``n`` 1m bars now; returns the status (with ``stepped``) once done."""
        return await self._call("POST", "/admin/replay/step", {"bars": n})

    async def status(self) -> dict:
        """``GET /admin/status``."""
        return await self._call("GET", "/admin/status")

    async def reset(self) -> dict:
        """Engine, accounts and replay back to the first bar; faults cleared."""
        return await self._call("POST", "/admin/reset")

    async def fault(self, **settings: Any) -> dict:
        """Set REST fault injection (partial update); returns the settings in effect."""
        return await self._call("POST", "/admin/faults", settings)

    async def clear_faults(self) -> dict:
        """No faults."""
        return await self._call("DELETE", "/admin/faults")

    async def drop_ws(self) -> int:
        """Close every market and user-data WebSocket now; returns how many were closed."""
        return (await self._call("POST", "/admin/faults/drop-ws"))["dropped"]

    def ccxt_client(self, api_key: str | None = None, api_secret: str | None = None,
                    **config: Any) -> ccxt_async.binanceusdm:
        """A new ccxt ``binanceusdm`` pointed at this exsim (URLs overridden,
        ``fetchCurrencies`` off since exsim has no /sapi wallet API); ``config`` keys are
        merged over that. The caller must ``await client.close()``."""
        options = {"fetchCurrencies": False, **config.pop("options", {})}
        settings = {"apiKey": api_key or self.api_key, "secret": api_secret or self.api_secret,
                    "urls": ccxt_urls(self.rest_url), "options": options, **config}
        return ccxt_async.binanceusdm(settings)

    async def aclose(self) -> None:
        await self._http.aclose()


@pytest.fixture(scope="session")
def exsim_thread() -> Iterator[ServerThread]:
    srv = ServerThread(ServerConfig(DATA, port=0, paused=True, initial_balance=INITIAL_BALANCE,
                                    api_keys=list(ACCOUNTS)))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
async def exsim(exsim_thread: ServerThread) -> AsyncIterator[ExsimHandle]:
    assert exsim_thread.base_url is not None
    handle = ExsimHandle(exsim_thread.base_url, ACCOUNTS)
    await handle.reset()
    yield handle
    try:
        await handle.clear_faults()
        await handle.drop_ws()  # no socket of this test hears the next test's bars
    finally:
        await handle.aclose()
