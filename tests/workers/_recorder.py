"""Helpers for the recorder tests: run a Recorder in-process, publish bodies, count rows."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import psycopg

from tradefleet.bus import codec, subjects
from tradefleet.bus.publish import publish
from tradefleet.workers.recorder import Recorder, RecorderConfig

T0 = 1746403200000
"""2025-05-05 00:00:00 UTC in ms (the bundled data's first bar)."""
MINUTE = 60_000


def recorder_config(nats_url: str, database_url: str, **overrides: Any) -> RecorderConfig:
    """A config for tests: small batches, quick flush and backoff, metrics on a free port."""
    values: dict[str, Any] = dict(nats_url=nats_url, database_url=database_url,
                                  metrics_port=0, metrics_host="127.0.0.1", batch_size=500,
                                  flush_ms=20, ack_wait_s=5, backoff_min_s=0.1,
                                  backoff_max_s=0.5, fetch_timeout_s=0.5, stop_grace_s=5)
    values.update(overrides)
    return RecorderConfig(**values)


async def wait_ready(recorder: Recorder, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not recorder.health.ready.evaluate()[0]:
        if time.monotonic() > deadline:
            raise AssertionError(f"recorder not ready: {recorder.health.ready.evaluate()[1]}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(config: RecorderConfig, **kwargs: Any) -> AsyncIterator[Recorder]:
    """A Recorder running in a task; stopped gracefully at the end."""
    recorder = Recorder(config, **kwargs)
    task = asyncio.create_task(recorder.run())
    try:
        await wait_ready(recorder)
        yield recorder
    finally:
        await recorder.stop()
        await asyncio.wait_for(task, 30)


def kline(symbol: str, i: int, *, venue: str = "exsim", interval: str = "1m",
          close: str | None = None) -> dict[str, Any]:
    """The i-th 1m kline body of ``symbol`` (prices move with i so rows differ)."""
    base = Decimal(1000 + i) / 10
    open_time = T0 + i * MINUTE
    return {"venue": venue, "symbol": symbol, "interval": interval, "open_time": open_time,
            "close_time": open_time + MINUTE - 1, "open": str(base),
            "high": str(base + 2), "low": str(base - 1),
            "close": close or str(base + 1), "volume": f"{i}.5", "quote_volume": "1234.56",
            "trades": 10 + i, "event_time": open_time + MINUTE + 3}


async def publish_klines(js: Any, bodies: list[dict[str, Any]], chunk: int = 500) -> None:
    """Publish kline bodies on their subjects with their Nats-Msg-Id, ``chunk`` at a time."""
    for start in range(0, len(bodies), chunk):
        await asyncio.gather(*(
            publish(js, subjects.kline(b["venue"], b["symbol"], b["interval"]), b,
                    msg_id=codec.kline_msg_id(b["venue"], b["symbol"], b["interval"],
                                              b["open_time"]))
            for b in bodies[start:start + chunk]))


async def count(dsn: str, table: str, where: str = "") -> int:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(f"SELECT count(*) FROM {table} {where}")
        return (await cur.fetchone())[0]


async def wait_rows(dsn: str, table: str, n: int, timeout_s: float = 30) -> int:
    """Wait until ``table`` has at least ``n`` rows; return the count (fails on timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = await count(dsn, table)
        if got >= n or time.monotonic() > deadline:
            assert got >= n, f"{table}: {got} rows after {timeout_s}s, expected {n}"
            return got
        await asyncio.sleep(0.05)


async def rows(dsn: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(query, params or None)
        return await cur.fetchall()


def metric(recorder: Recorder, name: str, **labels: str) -> float:
    return recorder.registry.get_sample_value(name, labels or None) or 0.0
