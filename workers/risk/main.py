"""Entrypoints behind ``tradefleet risk`` (the service) and ``tradefleet risk-lock``."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Coroutine
from typing import Any

from tradefleet.api.riskpolicy import RiskPolicySpec
from tradefleet.bus.connect import connect
from tradefleet.bus.streams import ensure_kv
from tradefleet.telemetry.logging import setup_logging
from tradefleet.telemetry.metrics import Health, new_registry, serve_metrics
from tradefleet.telemetry.tracing import setup_tracing
from tradefleet.workers.risk.locks import PoolLocks
from tradefleet.workers.risk.policy import load_policy_file
from tradefleet.workers.risk.service import RiskService

log = logging.getLogger(__name__)


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run on uvloop when installed (it ships with uvicorn[standard]): the NATS client's
    per-message overhead is roughly halved."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - plain asyncio works too
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def load_file_policy(policy_file: str | None) -> RiskPolicySpec | None:
    """The ``--policy`` file's spec (None without a file). Raises ValueError
    (ManifestError) naming the file and each bad field."""
    return load_policy_file(policy_file) if policy_file else None


async def serve(file_policy: RiskPolicySpec | None, nats_url: str | None, metrics_port: int,
                replica: str | None = None, metrics_host: str = "0.0.0.0") -> None:
    """Run the risk service until SIGTERM/SIGINT."""
    setup_tracing("tradefleet-risk")
    nc = await connect(nats_url, name=f"risk:{replica or 'service'}")
    registry, health = new_registry(), Health()
    metrics = await serve_metrics(registry, health, port=metrics_port, host=metrics_host)
    service = RiskService(nc, file_policy=file_policy, replica=replica, registry=registry,
                          health=health)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await service.start()
        log.info("risk service serving", extra={"metrics_port": metrics.port})
        await stop.wait()
    finally:
        await service.stop()
        await metrics.stop()
        if nc.is_connected:
            await nc.drain()


def run(file_policy: RiskPolicySpec | None, nats_url: str | None, metrics_port: int,
        replica: str | None = None, log_level: str | None = None) -> None:
    """``tradefleet risk``: JSON logs on stderr, metrics on ``metrics_port``."""
    setup_logging("risk", log_level)
    _run(serve(file_policy, nats_url, metrics_port, replica))


async def lock_action(action: str, pool: str, bot: str | None, nats_url: str | None) -> str:
    """``grant`` / ``release`` / ``show`` a capital-pool lock; returns a line to print.

    Raises ValueError for a bad action, pool or bot name.
    """
    if action not in ("grant", "release", "show"):
        raise ValueError(f"action {action!r} must be grant, release or show")
    if action == "grant" and not bot:
        raise ValueError("grant needs --bot namespace/name")
    nc = await connect(nats_url, name="risk-lock", connect_deadline_s=10)
    try:
        js = nc.jetstream()
        await ensure_kv(js)
        locks = await PoolLocks.open(js)
        if action == "grant":
            held = await locks.grant(pool, bot)
            return f"pool {pool}: lock granted to {held.holder}"
        if action == "release":
            current = await locks.holder(pool)
            if current is None:
                return f"pool {pool}: lock already free"
            if bot and current.holder != bot:
                return f"pool {pool}: lock is held by {current.holder}, not {bot}; nothing released"
            await locks.revoke(pool)
            return f"pool {pool}: lock released (was held by {current.holder})"
        current = await locks.holder(pool)
        return f"pool {pool}: " + (f"held by {current.holder} since {current.since_ms} "
                                   f"(by {current.by})" if current else "free")
    finally:
        await nc.drain()


def run_lock(action: str, pool: str, bot: str | None, nats_url: str | None) -> str:
    return _run(lock_action(action, pool, bot, nats_url))
