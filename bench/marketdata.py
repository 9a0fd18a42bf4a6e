"""Market-data feed throughput: exsim WebSocket → Feed → JetStream, end to end.

Starts an embedded nats-server (JetStream, file storage) and exsim on the bundled data
(``data/binance-um``: BTCUSDT, ETHUSDT, SOLUSDT), runs a :class:`Feed` in-process and
measures, in wall time:

* ``live``: ``--bars`` lockstep bars stepped at once; every closed kline, mark price and
  best bid/ask of the three symbols (3 messages × 3 symbols per bar) parsed, checked and
  published with ``Nats-Msg-Id`` and a JetStream ack → messages stored per second;
* ``backfill``: the feed is stopped, ``--bars`` more bars are replayed, a new feed starts
  and back-fills the gap from ``GET /fapi/v1/klines`` (1500 per page) → klines per second
  from connect until every gap bar is stored.

Both sides share the machine (2 cores here), so the figure is a floor for a pod.

Usage: ``.venv/bin/python bench/marketdata.py [--bars 2000]``; results in
``bench/results/marketdata.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path

import httpx
import nats

from tradefleet.embedded import EmbeddedNats
from tradefleet.exsim.server import ServerConfig, ServerThread
from tradefleet.workers.marketdata import Feed, FeedConfig

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "binance-um"
RESULTS = ROOT / "bench" / "results" / "marketdata.json"
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


async def stored(js, filter_: str) -> int:
    info = await js.stream_info("MARKET", subjects_filter=filter_)
    return sum((info.state.subjects or {}).values())


async def wait_stored(js, filter_: str, want: int, timeout: float = 600) -> float:
    t0 = time.perf_counter()
    while await stored(js, filter_) < want:
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(f"{filter_}: fewer than {want} messages after {timeout}s")
        await asyncio.sleep(0.01)
    return time.perf_counter()


async def run(bars: int) -> dict:
    server = EmbeddedNats().start()
    exsim = ServerThread(ServerConfig(DATA, port=0, paused=True))
    base = exsim.start()
    admin = httpx.AsyncClient(base_url=base, timeout=600)
    config = FeedConfig(venue="exsim", ws_url="ws" + base[4:], rest_url=base, symbols=SYMBOLS,
                        streams=["kline", "mark", "book"], ws_routing="single",
                        book_min_interval_ms=0, idle_timeout_s=None, nats_url=server.url)
    nc = await nats.connect(server.url)
    js = nc.jetstream()
    try:
        feed = Feed(config)
        task = asyncio.create_task(feed.run())
        await feed.wait_connected()
        t0 = time.perf_counter()
        await admin.post("/admin/replay/step", json={"bars": bars})
        stepped = time.perf_counter()
        t1 = await wait_stored(js, "md.>", 3 * len(SYMBOLS) * bars)
        live_msgs = 3 * len(SYMBOLS) * bars
        await feed.stop()
        await task

        await admin.post("/admin/replay/step", json={"bars": bars})
        feed = Feed(config.model_copy(update={"streams": frozenset({"kline"})}))
        t2 = time.perf_counter()
        task = asyncio.create_task(feed.run())
        t3 = await wait_stored(js, "md.exsim.*.kline.1m", 2 * len(SYMBOLS) * bars)
        await feed.stop()
        await task
    finally:
        await nc.close()
        await admin.aclose()
        exsim.stop()
        server.stop()
    return {
        "live": {"bars": bars, "messages": live_msgs, "seconds": round(t1 - t0, 3),
                 "exsim_step_seconds": round(stepped - t0, 3),
                 "messages_per_s": round(live_msgs / (t1 - t0), 1)},
        "backfill": {"klines": len(SYMBOLS) * bars, "seconds": round(t3 - t2, 3),
                     "klines_per_s": round(len(SYMBOLS) * bars / (t3 - t2), 1)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=2000)
    args = parser.parse_args()
    result = asyncio.run(run(args.bars))
    result["machine"] = {"python": sys.version.split()[0], "platform": platform.platform(),
                         "cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    live, back = result["live"], result["backfill"]
    print(f"live:     {live['messages']} messages in {live['seconds']} s = "
          f"{live['messages_per_s']} msg/s stored "
          f"(exsim stepping took {live['exsim_step_seconds']} s)")
    print(f"backfill: {back['klines']} klines in {back['seconds']} s = "
          f"{back['klines_per_s']} klines/s")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
