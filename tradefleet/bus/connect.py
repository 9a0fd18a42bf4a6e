"""Connect to NATS with the settings every tradefleet component uses.

- Initial connect retries with backoff until ``connect_deadline_s`` (pods start before the
  NATS pod is ready; nats-py alone gives up after one round of servers).
- Once connected the client reconnects forever (``max_reconnect_attempts=-1``) every
  ``reconnect_time_wait`` seconds, buffering up to 8 MiB of publishes meanwhile.
- Pings every 20 s, 3 missed pongs = dead connection (detects half-open TCP in ~1 min).
- Callbacks log structured lines saying what happened and what to check. URLs are logged
  without credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any
from urllib.parse import urlsplit

from nats.aio.client import Client

log = logging.getLogger(__name__)


class TradefleetClient(Client):
    """nats-py ``Client`` that remembers a deliberate ``close()``/``drain()``, so the
    callbacks can tell a shutdown from a lost connection."""

    closing = False

    async def close(self) -> None:
        self.closing = True
        await super().close()

    async def drain(self) -> None:
        self.closing = True
        await super().drain()


def _safe(url: str) -> str:
    """``nats://user:pass@host:4222`` -> ``nats://host:4222`` for logs."""
    out = []
    for one in url.split(","):
        parts = urlsplit(one.strip())
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        out.append(f"{parts.scheme or 'nats'}://{host}{port}")
    return ",".join(out)


async def connect(
    url: str | None = None,
    name: str = "tradefleet",
    *,
    connect_deadline_s: float = 60.0,
    **options: Any,
) -> TradefleetClient:
    """Connect to NATS; return the connected client (a nats-py ``Client``).

    Parameters
    ----------
    url : str, optional
        ``nats://host:port`` (comma-separated for a cluster); defaults to ``NATS_URL``.
    name : str
        Connection name shown by ``nats-server`` monitoring (``/connz``): use the
        component and bot, e.g. ``"bot:prod/btc-momentum"``.
    connect_deadline_s : float
        Keep retrying the first connection for this long (seconds) before raising.
    **options
        Override any ``nats.connect`` keyword (``reconnect_time_wait``, ``user_credentials``...).

    Raises
    ------
    ValueError
        No URL given and ``NATS_URL`` unset.
    nats.errors.NoServersError, TimeoutError
        Still unreachable after ``connect_deadline_s``.
    """
    url = url or os.environ.get("NATS_URL")
    if not url:
        raise ValueError("no NATS URL: pass url= or set NATS_URL (e.g. nats://127.0.0.1:4222)")
    safe = _safe(url)

    async def disconnected() -> None:
        if nc.closing or not connected:
            return
        log.warning(
            "disconnected from NATS; publishes are buffered while reconnecting "
            "(check the nats-server pod and NATS_URL if this lasts)",
            extra={"nats_url": safe, "connection": name},
        )

    async def reconnected() -> None:
        log.info(
            "reconnected to NATS; buffered publishes flushed, subscriptions restored",
            extra={
                "nats_url": _safe(str(nc.connected_url.geturl()) if nc.connected_url else url),
                "connection": name,
            },
        )

    connected = False

    async def error(exc: Exception) -> None:
        if not connected:
            return  # initial attempts are logged by the retry loop below
        log.error(
            "NATS error: %s (permissions, slow consumer or protocol; see nats-server log)",
            exc,
            extra={"nats_url": safe, "connection": name, "error_type": type(exc).__name__},
        )

    async def closed() -> None:
        if not connected:
            return
        if nc.closing:
            log.info("NATS connection closed", extra={"nats_url": safe, "connection": name})
            return
        log.error(
            "NATS connection closed; this component can no longer publish or consume "
            "and must be restarted",
            extra={"nats_url": safe, "connection": name},
        )

    settings: dict[str, Any] = dict(
        servers=[u.strip() for u in url.split(",")],
        name=name,
        connect_timeout=5,
        allow_reconnect=True,
        reconnect_time_wait=2,
        max_reconnect_attempts=-1,
        ping_interval=20,
        max_outstanding_pings=3,
        pending_size=8 * 1024 * 1024,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
        error_cb=error,
        closed_cb=closed,
    )
    settings.update(options)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + connect_deadline_s
    delay = 0.25
    attempt = 0
    while True:
        attempt += 1
        nc = TradefleetClient()
        try:
            # One short round: each server at most twice, `delay` apart. nats-py's own
            # loop would retry forever (or not at all), so the deadline is ours.
            first = {**settings, "max_reconnect_attempts": 1, "reconnect_time_wait": delay}
            await asyncio.wait_for(
                nc.connect(**first),
                timeout=max(deadline - loop.time(), 0) + settings["connect_timeout"],
            )
            connected = True
            break
        except Exception as exc:
            with contextlib.suppress(Exception):
                await nc.close()
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.error(
                    "cannot connect to NATS after %d attempts: %r; check NATS_URL and that "
                    "nats-server is running with JetStream (-js)",
                    attempt,
                    exc,
                    extra={"nats_url": safe, "connection": name},
                )
                raise
            log.warning(
                "NATS not reachable yet (%r); retrying in %.1fs",
                exc,
                delay,
                extra={"nats_url": safe, "connection": name, "attempt": attempt},
            )
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 5.0)
    # Re-enable reconnection on the live connection with the real settings.
    nc.options["allow_reconnect"] = settings["allow_reconnect"]
    nc.options["max_reconnect_attempts"] = settings["max_reconnect_attempts"]
    nc.options["reconnect_time_wait"] = settings["reconnect_time_wait"]
    log.info("connected to NATS", extra={"nats_url": safe, "connection": name})
    return nc
