"""Process entrypoint of ``tradefleet recorder``: logs, metrics server, signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from tradefleet.telemetry.logging import setup_logging
from tradefleet.telemetry.metrics import Health, new_registry, serve_metrics
from tradefleet.workers.recorder.config import RecorderConfig
from tradefleet.workers.recorder.service import Recorder
from tradefleet.workers.recorder.writer import safe_dsn

log = logging.getLogger(__name__)


async def serve(config: RecorderConfig) -> None:
    """Serve ``/metrics``, ``/healthz``, ``/readyz`` and record until SIGTERM/SIGINT."""
    registry, health = new_registry(), Health()
    recorder = Recorder(config, registry=registry, health=health)
    metrics = await serve_metrics(registry, health, port=config.metrics_port,
                                  host=config.metrics_host)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(recorder.stop()))
    log.info("recorder starting", extra={
        "database": safe_dsn(config.resolved_database_url()), "metrics_port": metrics.port,
        "batch_size": config.batch_size, "flush_ms": config.flush_ms,
        "queue_capacity": config.capacity})
    try:
        await recorder.run()
    finally:
        await metrics.stop()


def run(config: RecorderConfig, log_level: str | None = None) -> None:
    """``tradefleet recorder``: JSON logs on stderr; runs on uvloop when installed."""
    setup_logging("recorder", log_level)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - plain asyncio works too
        asyncio.run(serve(config))
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(config))
