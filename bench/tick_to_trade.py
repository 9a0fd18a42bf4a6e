"""Tick-to-trade: from exsim closing a bar to the bot's entry order ACK.

Path measured (every hop real, as deployed): exsim (own process) replays one bar →
WebSocket ``btcusdt@kline_1m`` → ``tradefleet marketdata`` (own process) → JetStream
``md.exsim.BTCUSDT.kline.1m`` (embedded nats-server) → the bot worker (this process:
durable pull consumer, strategy, sizing, local risk check) → ccxt ``create_order`` MARKET
→ exsim → ACK.

Clocks: both ends are this machine's wall clock (``time.time_ns``). Start = just before the
bench sends ``POST /admin/replay/step`` (exsim closes the bar while serving it, so the HTTP
request to the admin API is *included* — a conservative start); end = the moment the
executor receives the entry's ACK (the bot's ``order_latency`` execution hook, called as the
response is parsed). The replay is stepped one bar at a time and the next step waits until
the bot has processed the bar, so each sample is one bar on an idle pipeline.

Strategy: ``ema_cross`` with ``ema_fast=1, ema_slow=2`` (an entry every few bars), long
only, so entries start from flat — the bot's fast path (no pre-bar sync; see
``tradefleet.workers.bot.trader``). ``--shorts`` measures reversals instead (a sync and a
reduce-only close precede the entry).

Reported: p50/p90/p99/max of tick-to-trade (ms) and its parts, from the bot's own
OpenTelemetry spans (in-memory exporter): *to signal* (step request → the bot's ``signal``
span starts: exsim step, WebSocket, marketdata, JetStream, decode, strategy), *signal to
order sent* (sizing, risk check, the executor up to sending the entry — including its
client-order-id lookup) and the entry's REST round trip (``order_latency_ms``); also the
admin step request's own duration. Written to ``bench/results/tick_to_trade.json``.

Usage: ``.venv/bin/python bench/tick_to_trade.py [--bars 1500] [--shorts]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "tick_to_trade.json"
DATA = ROOT / "data" / "binance-um"
SYM = "BTCUSDT"
KEY, SECRET = "bench-key", "bench-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tradefleet.cli", *args], cwd=ROOT,
                            stdout=log.open("w"), stderr=subprocess.STDOUT,
                            env={**os.environ, "LOG_LEVEL": "WARNING", **(env or {})})


async def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while True:
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} not ready in {timeout} s")
            await asyncio.sleep(0.1)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(xs: list[float]) -> dict:
    return {"n": len(xs), "p50_ms": round(pct(xs, 50), 3), "p90_ms": round(pct(xs, 90), 3),
            "p99_ms": round(pct(xs, 99), 3), "max_ms": round(max(xs), 3) if xs else None,
            "mean_ms": round(statistics.fmean(xs), 3) if xs else None}


async def run(bars: int, shorts: bool, logs: Path) -> dict:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from tradefleet.workers.bot.config import BotOptions, Credentials
    from tradefleet.workers.bot.worker import BotWorker
    from tradefleet.workers.execution import NullHooks

    from tradefleet.api import TradingBot
    from tradefleet.embedded import nats_server
    from tradefleet.telemetry import setup_logging, setup_tracing

    setup_logging("bench", "WARNING")
    spans = InMemorySpanExporter()
    setup_tracing("tradefleet-bench", span_exporter=spans)  # the bot reuses this provider
    nats = nats_server()
    nats.start()
    exsim_port, md_port = free_port(), free_port()
    base = f"http://127.0.0.1:{exsim_port}"
    procs = [spawn(["exsim", "--data", str(DATA), "--port", str(exsim_port), "--paused",
                    "--symbols", SYM, "--api-key", KEY, "--api-secret", SECRET,
                    "--log-level", "warning"], logs / "exsim.log")]
    try:
        await wait_http(f"{base}/admin/status")
        procs.append(spawn(["marketdata", "--venue", "exsim", "--ws-url", f"ws://127.0.0.1:{exsim_port}",
                            "--rest-url", base, "--symbols", SYM, "--streams", "kline,mark,funding",
                            "--metrics-port", str(md_port), "--idle-timeout", "0",
                            "--nats-url", nats.url], logs / "marketdata.log"))
        await wait_http(f"http://127.0.0.1:{md_port}/readyz")

        acks: list[tuple[int, float]] = []   # (ACK wall ns, REST round trip ms) per entry

        class AckClock(NullHooks):
            def order_latency(self, symbol: str, purpose: str, latency_ms: float) -> None:
                if purpose == "entry":
                    acks.append((time.time_ns(), latency_ms))

        bot = TradingBot.model_validate({
            "apiVersion": "tradefleet.io/v1alpha1", "kind": "TradingBot",
            "metadata": {"name": "tick-to-trade", "namespace": "bench"},
            "spec": {"venue": "exsim", "symbols": [SYM], "interval": "1m",
                     "strategy": {"name": "ema_cross", "params": {
                         "ema_fast": 1, "ema_slow": 2, "allow_shorts": shorts,
                         "stop_pct": 0.01}},
                     "endpoints": {"restUrl": base},
                     "sizing": {"riskPctPerTrade": 1, "maxPositionNotionalUsdt": 2000},
                     "risk": {"lossStreakLimit": 100}, "execution": {"trailing": False},
                     "heartbeatIntervalS": 5}})
        worker = BotWorker(bot, BotOptions(nats_url=nats.url, metrics_port=0,
                                           exchange_options={"enableRateLimit": False}),
                           credentials=Credentials(KEY, SECRET), hooks=AckClock())
        task = asyncio.create_task(worker.run())
        await asyncio.wait_for(worker.started.wait(), 60)
        trader = worker.trader
        samples, parts_sent, parts_rest, step_http = [], [], [], []
        upstream, in_bot = [], []
        async with httpx.AsyncClient(base_url=base) as http:
            for _ in range(bars):
                seen = len(acks)  # the pipeline is idle: ACKs after this are this bar's
                spans.clear()
                t0 = time.time_ns()
                resp = await http.post("/admin/replay/step", json={"bars": 1})
                step_http.append((time.time_ns() - t0) / 1e6)
                if resp.status_code != 200:
                    break
                close = resp.json()["replay_clock"] - 1
                deadline = time.monotonic() + 30
                while trader.last_close.get(SYM, -1) < close:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"bar {close} not processed in 30 s")
                    await asyncio.sleep(0.0005)
                if len(acks) > seen:
                    ack_ns, rest_ms = acks[seen]
                    total = (ack_ns - t0) / 1e6
                    samples.append(total)
                    parts_rest.append(rest_ms)
                    parts_sent.append(total - rest_ms)
                    signal = [x for x in spans.get_finished_spans() if x.name == "signal"]
                    if signal:  # the signal span starts once the bar went through the strategy
                        start = signal[0].start_time
                        upstream.append((start - t0) / 1e6)
                        in_bot.append((ack_ns - rest_ms * 1e6 - start) / 1e6)
        counters = trader.counters.model_copy()
        worker.request_stop("bench done")
        await task
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        nats.stop()
    return {
        "scenario": "reversal (sync + close + entry)" if shorts else "entry from flat",
        "bars": bars, "entries": len(samples), "counters": counters.model_dump(),
        "tick_to_trade": summary(samples),
        "to_order_sent": summary(parts_sent),
        "to_signal": summary(upstream),
        "signal_to_order_sent": summary(in_bot),
        "order_rest_round_trip": summary(parts_rest),
        "exsim_step_http": summary(step_http),
        "target": {"p50_ms": 5.0, "p99_ms": 20.0},
        "meets_target": bool(samples) and pct(samples, 50) <= 5.0 and pct(samples, 99) <= 20.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1500, help="bars to replay (default 1500)")
    parser.add_argument("--shorts", action="store_true", help="measure reversals instead")
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="tick_to_trade-"))  # exsim / marketdata output
    result = asyncio.run(run(args.bars, args.shorts, logs))
    result["process_logs"] = str(logs)
    result["machine"] = {"python": platform.python_version(), "platform": platform.platform(),
                         "cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)}
    out = RESULTS if not args.shorts else RESULTS.with_name("tick_to_trade_reversal.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    t = result["tick_to_trade"]
    print(f"{result['scenario']}: {result['entries']} entries over {result['bars']} bars")
    print(f"tick-to-trade  p50 {t['p50_ms']} ms  p90 {t['p90_ms']} ms  p99 {t['p99_ms']} ms  "
          f"max {t['max_ms']} ms   (target p50 <= 5, p99 <= 20: "
          f"{'met' if result['meets_target'] else 'NOT met'})")
    for name in ("to_signal", "signal_to_order_sent", "order_rest_round_trip",
                 "to_order_sent", "exsim_step_http"):
        x = result[name]
        print(f"  {name:22s} p50 {x['p50_ms']} ms  p99 {x['p99_ms']} ms")
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
