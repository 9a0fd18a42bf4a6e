"""Fixtures: exsim on the bundled data (data/binance-um), driven through real ccxt.

==================  ========  ===========================================================
fixture             scope     what it gives
==================  ========  ===========================================================
exsim_server        session   exsim on a background thread, free port, replay paused;
                              two accounts (KEY/SECRET and OTHER_KEY/OTHER_SECRET)
admin               function  :class:`Admin` for the unsigned /admin API; the exchange is
                              reset first (accounts at INITIAL USDT, replay at the first
                              bar), so every test starts from the same state
exchange            function  ``ccxt.async_support.binanceusdm`` with only its URLs
                              overridden (+ ``fetchCurrencies: False``), markets loaded
make_exchange       function  factory for more ccxt clients (other keys, bad secrets)
==================  ========  ===========================================================

Tests are deterministic: the replay never runs on its own; tests step it bar by bar.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import ccxt.async_support as ccxt
import httpx
import pytest

from tradefleet.exsim.server import ServerConfig, ServerThread, ccxt_urls

DATA = Path(__file__).resolve().parents[2] / "data" / "binance-um"
KEY, SECRET = "test-key-1", "test-secret-1"
OTHER_KEY, OTHER_SECRET = "test-key-2", "test-secret-2"
INITIAL = Decimal("10000")
BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"


def csv_klines(symbol: str) -> list[dict]:
    """The recorded 1m klines of ``symbol`` read straight from the gzip CSV (test oracle)."""
    [path] = sorted((DATA / "klines").glob(f"{symbol}-1m-*.csv.gz"))
    with gzip.open(path, "rt", newline="") as fh:
        return list(csv.DictReader(fh))


def csv_funding(symbol: str) -> list[dict]:
    """The recorded funding events of ``symbol``."""
    [path] = sorted((DATA / "funding").glob(f"{symbol}-funding-*.csv.gz"))
    with gzip.open(path, "rt", newline="") as fh:
        return list(csv.DictReader(fh))


def csv_mark(symbol: str) -> list[dict]:
    """The recorded 8h mark-price klines of ``symbol``."""
    [path] = sorted((DATA / "markprice").glob(f"{symbol}-markprice-8h-*.csv.gz"))
    with gzip.open(path, "rt", newline="") as fh:
        return list(csv.DictReader(fh))


class Admin:
    """Thin client of exsim's unsigned admin API (synchronous; the server runs on its own
    thread, so blocking calls from a test coroutine are safe)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=30)

    def status(self) -> dict:
        return self._ok(self.http.get("/admin/status"))

    def step(self, bars: int = 1) -> dict:
        return self._ok(self.http.post("/admin/replay/step", json={"bars": bars}))

    def reset(self) -> dict:
        return self._ok(self.http.post("/admin/reset"))

    def faults(self, **values) -> dict:
        return self._ok(self.http.post("/admin/faults", json=values))

    def clock(self) -> int:
        return self.status()["replay_clock"]

    @staticmethod
    def _ok(resp: httpx.Response) -> dict:
        assert resp.status_code == 200, f"{resp.request.url}: {resp.status_code} {resp.text}"
        return resp.json()

    def close(self) -> None:
        self.http.close()


def make_client(base_url: str, key: str = KEY, secret: str = SECRET, **extra) -> ccxt.Exchange:
    """ccxt binanceusdm pointed at exsim: only the URLs overridden and fetchCurrencies off
    (exsim has no /sapi wallet API). ccxt's client-side throttle is off to keep the suite
    fast (it spaces orders 200 ms apart; exsim itself does not need it)."""
    config = {"apiKey": key, "secret": secret, "urls": ccxt_urls(base_url),
              "options": {"fetchCurrencies": False}, "enableRateLimit": False}
    config.update(extra)
    return ccxt.binanceusdm(config)


@pytest.fixture(scope="session")
def exsim_server() -> Iterator[ServerThread]:
    srv = ServerThread(ServerConfig(DATA, port=0, paused=True, initial_balance=INITIAL,
                                    api_keys=[(KEY, SECRET), (OTHER_KEY, OTHER_SECRET)]))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def base_url(exsim_server: ServerThread) -> str:
    assert exsim_server.base_url is not None
    return exsim_server.base_url


@pytest.fixture
def admin(base_url: str) -> Iterator[Admin]:
    a = Admin(base_url)
    a.reset()
    yield a
    a.http.delete("/admin/faults")
    a.close()


@pytest.fixture
async def make_exchange(base_url: str, admin: Admin) -> AsyncIterator:
    made: list[ccxt.Exchange] = []

    def make(key: str = KEY, secret: str = SECRET, **extra) -> ccxt.Exchange:
        ex = make_client(base_url, key, secret, **extra)
        made.append(ex)
        return ex

    yield make
    for ex in made:
        await ex.close()


@pytest.fixture
async def exchange(make_exchange) -> ccxt.Exchange:
    ex = make_exchange()
    await ex.load_markets()
    return ex
