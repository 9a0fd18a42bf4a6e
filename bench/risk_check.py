"""Risk checks/s and check latency of the shared risk service, 50 bots over real NATS.

Starts an embedded nats-server (JetStream, file storage), writes a RiskPolicy to KV
``risk-policy/policy``, runs ``tradefleet risk`` as its own process (``--replicas N`` of
them in queue group ``risk``), and drives it from 50 asyncio bots, each a
RiskServiceClient on its own NATS connection, in this process. Every approved check is
followed by the bot's ``confirm`` (nothing filled), as a real bot does, so the service
handles two requests per check and the reservations stay bounded.

Two phases:

1. closed loop (``--seconds``): every bot checks again as soon as it has its answer and
   confirmed: the most checks/s the service sustains. Latency here is 50 / throughput by
   construction (Little's law), so it says little about latency under a given load.
2. open loop (``--rates`` checks/s in total, each spread over the 50 bots on a fixed
   schedule): latency p50/p99 at each offered load, measured from each check's *scheduled* time, so a
   slow answer also counts against the checks queued behind it (no coordinated omission).

Target (issue): >= 5,000 checks/s with p99 <= 5 ms. Everything runs on this machine (NATS
server, service, 50 bots); ``os.cpu_count()`` and the load average are in the JSON. Because
the machine may be shared, the closed loop also reports the CPU time each process spent per
check (service, NATS server, bots): ``1e6 / service_cpu_us_per_check`` is the rate one
service replica sustains on a core of its own.

Usage: ``.venv/bin/python bench/risk_check.py [--bots 50] [--seconds 10]
[--rates 500,1000,2000,5000] [--replicas 1] [--connections 50]``. Writes
``bench/results/risk_check.json`` (``risk_check_replicas{N}.json`` with ``--replicas N``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import psutil

from tradefleet.api.riskpolicy import RiskPolicySpec
from tradefleet.bus.connect import connect
from tradefleet.bus.streams import KV_RISK_POLICY, ensure_kv, ensure_streams
from tradefleet.embedded import EmbeddedNats
from tradefleet.workers.risk.client import RiskServiceClient
from tradefleet.workers.risk.policy import POLICY_KEY, encode_policy
from tradefleet.workers.risk.protocol import CheckRequest

MAX_BEHIND_S = 2.0
"""Open loop: a bot this far behind its schedule skips the missed checks (saturation)."""
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "risk_check.json"
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT"]
POLICY = RiskPolicySpec.model_validate({
    "perSymbolCapUsdt": 1_000_000, "totalCapUsdt": 3_000_000, "softCapPct": 0.1,
    "correlationClusters": [{"name": "majors", "symbols": ["BTCUSDT", "ETHUSDT"],
                             "capUsdt": 1_500_000, "maxCorrelatedPositions": 100}],
    "dailyMaxLossUsdt": 1_000_000, "checkTimeoutMs": 1_000,
})


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def summary_ms(lat_s: list[float]) -> dict:
    return {f"p{p}_ms".replace(".", "_"): round(pct(lat_s, p) * 1000, 3) for p in (50, 90, 99, 99.9)} | {
        "max_ms": round(max(lat_s) * 1000, 3) if lat_s else None}


def start_service(url: str, replica: str) -> subprocess.Popen:
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    return subprocess.Popen(
        [sys.executable, "-c", "from tradefleet.cli import app; app()", "risk", "--nats-url", url,
         "--metrics-port", "0", "--replica", replica, "--log-level", "INFO"],
        stderr=subprocess.PIPE, text=True, env=env)


def wait_metrics_port(proc: subprocess.Popen) -> int:
    for line in proc.stderr:
        m = re.search(r'"msg": ?"risk service serving".*"metrics_port": ?(\d+)', line)
        if m:
            return int(m.group(1))
    raise SystemExit(f"risk service exited with {proc.wait()}")


async def drain_stderr(proc: subprocess.Popen) -> None:
    """Keep reading the service's log so its pipe never fills."""
    await asyncio.to_thread(lambda: [None for _ in proc.stderr])


class Bot:
    def __init__(self, i: int, client: RiskServiceClient):
        self.name = f"bench/bot-{i}"
        self.symbol = SYMBOLS[i % len(SYMBOLS)]
        self.client = client
        self.latencies: list[float] = []
        self.outcomes: dict[str, int] = {}
        self.skipped = 0

    async def one(self, t_start: float) -> None:
        req = CheckRequest(uuid.uuid4().hex, self.name, self.symbol, "long", Decimal("250.5"),
                           time.time_ns() // 1_000_000, "paper")
        d = await self.client.check(req)
        self.latencies.append(time.perf_counter() - t_start)
        self.outcomes[d.outcome.value] = self.outcomes.get(d.outcome.value, 0) + 1
        if d.outcome.approved:
            await self.client.confirm(d.reservation_id, self.name, self.symbol, Decimal(0))

    async def closed(self, until: float) -> None:
        while time.perf_counter() < until:
            await self.one(time.perf_counter())

    async def open(self, rate_per_bot: float, until: float, phase: float) -> None:
        interval = 1.0 / rate_per_bot
        t = time.perf_counter() + phase * interval
        while t < until:
            delay = t - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif -delay > MAX_BEHIND_S:  # saturated: give up these slots (counted as skipped)
                late = int(-delay / interval)
                self.skipped += late
                t += late * interval
                continue
            await self.one(t)  # latency from the scheduled time
            t += interval


async def scrape(ports: list[int]) -> dict:
    totals: dict[str, float] = {}
    async with httpx.AsyncClient() as http:
        for port in ports:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
            for name in ("risk_checks_total", "risk_state_commits_total",
                         "risk_state_conflicts_total", "risk_reports_total"):
                for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.M):
                    totals[name] = totals.get(name, 0.0) + float(m.group(1))
    return totals


async def main(args: argparse.Namespace) -> dict:
    nats = EmbeddedNats().start()
    procs: list[subprocess.Popen] = []
    conns = []
    admin = None
    try:
        admin = await connect(nats.url, name="bench-admin")
        js = admin.jetstream()
        await ensure_streams(js)
        await ensure_kv(js)
        await (await js.key_value(KV_RISK_POLICY)).put(POLICY_KEY, encode_policy(POLICY))
        procs = [start_service(nats.url, f"bench-{i}") for i in range(args.replicas)]
        ports = [await asyncio.to_thread(wait_metrics_port, p) for p in procs]
        drains = [asyncio.create_task(drain_stderr(p)) for p in procs]
        for i in range(args.connections):
            conns.append(await connect(nats.url, name=f"bench-bots-{i}"))
        bots = [Bot(i, RiskServiceClient(conns[i % len(conns)], timeout_ms=POLICY.check_timeout_ms))
                for i in range(args.bots)]

        # warm-up
        await asyncio.gather(*(b.closed(time.perf_counter() + 1.0) for b in bots))
        for b in bots:
            b.latencies.clear()
            b.outcomes.clear()

        watched = {"service": [psutil.Process(p.pid) for p in procs],
                   "nats_server": [psutil.Process(nats.pid)], "bots": [psutil.Process()]}

        def cpu() -> dict[str, float]:
            return {k: sum(sum(p.cpu_times()[:2]) for p in ps) for k, ps in watched.items()}

        before, cpu0 = await scrape(ports), cpu()
        t0 = time.perf_counter()
        await asyncio.gather(*(b.closed(t0 + args.seconds) for b in bots))
        elapsed = time.perf_counter() - t0
        after, cpu1 = await scrape(ports), cpu()
        lat = [x for b in bots for x in b.latencies]
        outcomes: dict[str, int] = {}
        for b in bots:
            for k, v in b.outcomes.items():
                outcomes[k] = outcomes.get(k, 0) + v
        checks = after["risk_checks_total"] - before["risk_checks_total"]
        reports = after.get("risk_reports_total", 0) - before.get("risk_reports_total", 0)
        commits = after["risk_state_commits_total"] - before["risk_state_commits_total"]
        closed = {
            "seconds": round(elapsed, 2), "checks": len(lat),
            "checks_per_s": round(len(lat) / elapsed, 1),
            "requests_per_s": round((checks + reports) / elapsed, 1),
            "kv_commits_per_s": round(commits / elapsed, 1),
            "requests_per_commit": round((checks + reports) / commits, 1) if commits else None,
            "cas_conflicts": after.get("risk_state_conflicts_total", 0)
            - before.get("risk_state_conflicts_total", 0),
            "outcomes": outcomes, **summary_ms(lat),
            **{f"{k}_cpu_us_per_check": round((cpu1[k] - cpu0[k]) / len(lat) * 1e6, 1)
               for k in cpu0},
        }
        closed["service_checks_per_cpu_s"] = round(1e6 / closed["service_cpu_us_per_check"])
        print(f"closed loop: {closed['checks_per_s']:.0f} checks/s "
              f"({closed['requests_per_s']:.0f} requests/s incl. confirms), "
              f"p50 {closed['p50_ms']} ms, p99 {closed['p99_ms']} ms, "
              f"{closed['requests_per_commit']} requests per KV write")
        print(f"CPU per check: service {closed['service_cpu_us_per_check']} us "
              f"(= {closed['service_checks_per_cpu_s']} checks per CPU-second), NATS server "
              f"{closed['nats_server_cpu_us_per_check']} us, bots {closed['bots_cpu_us_per_check']} us")

        opened = []
        for rate in args.rates:
            for b in bots:
                b.latencies.clear()
                b.outcomes.clear()
                b.skipped = 0
            t0 = time.perf_counter()
            await asyncio.gather(*(b.open(rate / args.bots, t0 + args.seconds, i / args.bots)
                                   for i, b in enumerate(bots)))
            elapsed = time.perf_counter() - t0
            lat = [x for b in bots for x in b.latencies]
            run = {"offered_checks_per_s": rate, "seconds": round(elapsed, 2),
                   "achieved_checks_per_s": round(len(lat) / elapsed, 1),
                   "skipped_checks": sum(b.skipped for b in bots), **summary_ms(lat)}
            opened.append(run)
            print(f"open loop at {rate:.0f} checks/s offered: {run['achieved_checks_per_s']:.0f} "
                  f"achieved, p50 {run['p50_ms']} ms, p99 {run['p99_ms']} ms, "
                  f"p99.9 {run['p99_9_ms']} ms")
            await asyncio.sleep(1.0)  # let the backlog of a saturated run drain
        for d in drains:
            d.cancel()
        return {
            "bench": "risk_check", "bots": args.bots, "replicas": args.replicas,
            "bot_connections": args.connections,
            "closed_loop": closed, "open_loop": opened,
            "target": {"checks_per_s": 5000, "p99_ms": 5.0},
            "meets_target": closed["checks_per_s"] >= 5000 and any(
                o["offered_checks_per_s"] >= 5000 and o["p99_ms"] <= 5.0 for o in opened),
            "notes": "service in its own process on uvloop, 50 bots in this process, NATS "
                     "server, all on one machine; every approved check followed by a confirm",
            "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg(),
                        "python": platform.python_version(),
                        "platform": platform.platform()},
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    finally:
        for nc in [*conns, admin]:
            if nc is not None:
                await nc.close()
        for p in procs:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        nats.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bots", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rates", type=lambda v: [float(x) for x in v.split(",")],
                        default=[500.0, 1000.0, 2000.0, 5000.0],
                        help="open-loop offered checks/s in total, comma-separated")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--connections", type=int, default=50,
                        help="NATS connections the bots share (50 = one per bot, as pods)")
    args = parser.parse_args()
    try:
        import uvloop
        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        result = runner.run(main(args))
    out = RESULTS if args.replicas == 1 else RESULTS.with_name(f"risk_check_replicas{args.replicas}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
