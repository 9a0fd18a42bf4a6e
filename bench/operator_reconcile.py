"""How long the operator takes to reconcile a fleet of TradingBots (kopf against kmock).

Starts an embedded nats-server and kmock's Kubernetes emulator (over real HTTP, with the
resourceVersion/uid additions of tests/operator/conftest.py), runs the operator in this
process with production timings (status every 5 s), then creates ``--bots`` TradingBots
(default 200, 4 strategies, 20 symbols, 2 venues-worth of symbols on exsim) as fast as the
API accepts them and measures:

- ``create_s``: until every bot has its ConfigMap, Deployment and Service and a status with
  its config hash (the create handler finished for all);
- ``feeds_s``: until the exsim market-data Deployment lists the union of every bot's symbols;
- ``heartbeat_s``: after one heartbeat per bot is published on NATS, until every bot shows
  ``phase: Running`` (bounded below by the status interval: that is the rate limit);
- ``update_s``: after patching every bot's leverage, until every Deployment has a new
  config hash (200 rollouts);
- ``api_requests``: HTTP requests the operator made to the API for all of it.

Usage: ``.venv/bin/python bench/operator_reconcile.py [--bots 200]``; writes
``bench/results/operator_reconcile.json``. Everything runs on this machine (2 cores shared
with the emulator, NATS and the publishing side), so the figures are upper bounds of the
operator's own cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import platform
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.operator.conftest: the emulator and the kopf runner

import kmock  # noqa: E402

from tests.operator.conftest import (  # noqa: E402
    CONFIGMAPS,
    DEPLOYMENTS,
    SERVICES,
    TB,
    Emulator,
    bot_manifest,
    declare,
    running_operator,
)
from tradefleet.bus.connect import connect  # noqa: E402
from tradefleet.bus.fleet_messages import Phase  # noqa: E402
from tradefleet.embedded import EmbeddedNats  # noqa: E402
from tradefleet.operator.builders import CONFIG_HASH_ANNOTATION  # noqa: E402
from tradefleet.operator.config import OperatorConfig  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "operator_reconcile.json"
SYMBOLS = [f"{base}USDT" for base in ("BTC", "ETH", "SOL", "BNB", "XRP", "ADA", "DOGE", "AVAX",
                                      "LINK", "DOT", "LTC", "TRX", "ATOM", "NEAR", "APT",
                                      "ARB", "OP", "SUI", "FIL", "INJ")]
STRATEGIES = [("ema_cross", {"ema_fast": 20, "ema_slow": 50}), ("momentum", {}),
              ("mean_reversion", {}), ("donchian_breakout", {})]


def _bot(i: int) -> dict:
    name, params = STRATEGIES[i % len(STRATEGIES)]
    symbols = [SYMBOLS[i % len(SYMBOLS)], SYMBOLS[(i * 7 + 3) % len(SYMBOLS)]]
    body = bot_manifest(f"bot-{i:04d}", symbols=sorted(set(symbols)), onDelete="leave")
    body["spec"]["strategy"] = {"name": name, "params": params}
    return body


async def _until(check, timeout: float, what: str) -> float:
    t0 = time.perf_counter()
    while not check():
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.02)
    return time.perf_counter() - t0


async def main(bots: int) -> dict:
    nats = EmbeddedNats().start()
    try:
        nc = await connect(nats.url, name="bench:operator")
        js = nc.jetstream(timeout=10)
        config = OperatorConfig(nats_url=nats.url, namespace="tradefleet")
        async with Emulator() as emu, kmock.Server(emu) as server:
            declare(emu)
            url = str(server.url).rstrip("/")
            async with running_operator(emu, url, config, js, stop_timeout_s=120) as cluster:
                result = await _measure(emu, cluster, bots, config, nats_url=nats.url)
                RESULTS.parent.mkdir(parents=True, exist_ok=True)
                RESULTS.write_text(json.dumps(result, indent=2) + "\n")
                return result
        await nc.close()
    finally:
        nats.stop()


async def _measure(emu, cluster, bots: int, config: OperatorConfig, nats_url: str) -> dict:
    """Run the four phases against a running operator; the result dict."""
    if True:  # (kept at this depth so the phases read as one block)
        if True:
                before = emu.served
                names = [f"bot-{i:04d}" for i in range(bots)]
                t0 = time.perf_counter()
                await asyncio.gather(*(cluster.apply(_bot(i)) for i in range(bots)))
                submit_s = time.perf_counter() - t0

                def all_created() -> bool:
                    return all(cluster.get(SERVICES, "default", n)
                               and cluster.status("default", n).get("configHash")
                               for n in names)
                create_s = submit_s + await _until(all_created, 300, "children")
                union = sorted({s for i in range(bots) for s in _bot(i)["spec"]["symbols"]})

                def feed_ready() -> bool:
                    dep = cluster.get(DEPLOYMENTS, "tradefleet", "marketdata-exsim")
                    if dep is None:
                        return False
                    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
                    return args[args.index("--symbols") + 1] == ",".join(union)
                feeds_s = create_s + await _until(feed_ready, 60, "feed union")
                create_requests = emu.served - before - bots  # minus the bench's POSTs

                t1 = time.perf_counter()
                await asyncio.gather(*(cluster.heartbeat("default", n, phase=Phase.RUNNING)
                                       for n in names))
                heartbeat_s = await _until(lambda: all(
                    cluster.status("default", n).get("phase") == "Running" for n in names),
                    120, "Running")

                hashes = {n: cluster.get(DEPLOYMENTS, "default", n)["spec"]["template"][
                    "metadata"]["annotations"][CONFIG_HASH_ANNOTATION] for n in names}
                t2 = time.perf_counter()
                await asyncio.gather(*(cluster.patch(TB, "default", n,
                                                     {"spec": {"sizing": {"leverage": 4}}})
                                       for n in names))
                update_s = await _until(lambda: all(
                    cluster.get(DEPLOYMENTS, "default", n)["spec"]["template"]["metadata"][
                        "annotations"][CONFIG_HASH_ANNOTATION] != hashes[n] for n in names),
                    300, "rollouts")
                assert all(cluster.get(CONFIGMAPS, "default", n) for n in names)
                total_requests = emu.served - before - 2 * bots  # minus POSTs and PATCHes
    return {
        "bots": bots,
        "create_s": round(create_s, 3),
        "create_per_bot_ms": round(create_s / bots * 1000, 2),
        "feeds_s": round(feeds_s, 3),
        "heartbeat_s": round(heartbeat_s, 3),
        "status_interval_s": config.status_interval_s,
        "update_s": round(update_s, 3),
        "api_requests_create": create_requests,
        "api_requests_total": total_requests,
        "cpu_count": os.cpu_count(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bots", type=int, default=200)
    args = parser.parse_args()
    result = asyncio.run(main(args.bots))
    print(f"operator reconcile, {result['bots']} TradingBots against kmock over HTTP:")
    print(f"  all children + status      {result['create_s']:8.2f} s "
          f"({result['create_per_bot_ms']} ms/bot, {result['api_requests_create']} API requests)")
    print(f"  market-data feed union     {result['feeds_s']:8.2f} s")
    print(f"  heartbeat -> Running       {result['heartbeat_s']:8.2f} s "
          f"(status interval {result['status_interval_s']} s)")
    print(f"  spec change -> rollout     {result['update_s']:8.2f} s")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
