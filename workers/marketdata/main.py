"""Process entrypoint of a feed (``tradefleet marketdata``): logs, traces, signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from tradefleet.telemetry.logging import setup_logging
from tradefleet.telemetry.tracing import setup_tracing

from .config import FeedConfig
from .feed import Feed

log = logging.getLogger(__name__)


async def serve(config: FeedConfig) -> None:
    """Run a :class:`Feed` until SIGTERM/SIGINT, then stop it cleanly."""
    feed = Feed(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(feed.stop()))
    await feed.run()


def run(config: FeedConfig, log_level: str | None = None) -> None:
    """Set up JSON logs and tracing for component ``marketdata`` and serve ``config``."""
    setup_logging("marketdata", log_level)
    provider = setup_tracing("tradefleet-marketdata")
    try:
        asyncio.run(serve(config))
    finally:
        provider.shutdown()
