"""``tradefleet bot --config bot.yaml``: validate, then run one bot worker until SIGTERM.

Exit codes: 0 stopped cleanly (SIGTERM/SIGINT), 1 failed while running or starting (the
reason is in the log and in the last ``fleet.{ns}.{bot}.status``), 2 bad configuration
(each bad field named on stderr; nothing was started).
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
import signal
import sys
from typing import TextIO

from tradefleet.api import ManifestError
from tradefleet.telemetry import setup_logging

from .config import (
    BotOptions,
    ConfigError,
    credentials_from_env,
    load_bot,
    load_risk_policy,
)

log = logging.getLogger("tradefleet.workers.bot")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def main(config: str, *, nats_url: str | None = None, metrics_port: int = 9001,
         risk_policy: str | None = None, otlp_endpoint: str | None = None,
         risk_service: bool = False, ack_wait_s: float = 30.0, log_level: str | None = None,
         stderr: TextIO | None = None) -> int:
    """Load and validate everything, then run the worker; returns the exit code.

    A bad manifest, RiskPolicy, option or missing credential prints one line per problem
    to ``stderr`` (``spec.sizing.riskPctPerTrade: Input should be ...``) and returns 2.
    """
    stderr = stderr or sys.stderr
    try:
        bot = load_bot(config)
        policy = load_risk_policy(risk_policy)
        options = BotOptions(
            **({"nats_url": nats_url} if nats_url else {}), metrics_port=metrics_port,
            risk_policy=pathlib.Path(risk_policy) if risk_policy else None,
            otlp_endpoint=otlp_endpoint, ack_wait_s=ack_wait_s,
            risk_timeout_ms=policy.check_timeout_ms)
        credentials = credentials_from_env(bot)
    except (ManifestError, ConfigError) as exc:
        print(f"tradefleet bot: invalid configuration\n{exc}", file=stderr)
        return EXIT_CONFIG
    try:
        setup_logging("bot", log_level)
    except ValueError as exc:
        print(f"tradefleet bot: --log-level: {exc}", file=stderr)
        return EXIT_CONFIG
    return asyncio.run(_serve(bot, options, credentials, policy, risk_service))


async def _serve(bot, options, credentials, policy, risk_service: bool) -> int:
    from .worker import BotWorker

    risk = None
    if risk_service:
        risk = await _service_client(options)
    worker = BotWorker(bot, options, credentials=credentials, policy=policy, risk=risk)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.request_stop, sig.name)
    try:
        return await worker.run()
    finally:
        if risk is not None:
            await risk.nc.close()


async def _service_client(options: BotOptions):
    """The shared risk service's client on its own NATS connection."""
    from tradefleet.workers.risk.client import RiskServiceClient

    from tradefleet.bus import connect

    nc = await connect(options.nats_url, name="bot:risk-client")
    return RiskServiceClient(nc, timeout_ms=options.risk_timeout_ms)


__all__ = ["EXIT_CONFIG", "EXIT_FAILED", "EXIT_OK", "main"]
