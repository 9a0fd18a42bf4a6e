"""Prometheus ``/metrics`` plus ``/healthz`` and ``/readyz`` for one component, in-process.

Each component owns a :class:`prometheus_client.CollectorRegistry` (never the global
default), so several components, or several tests, run in one process without "Duplicated
timeseries" errors. The HTTP server is uvicorn serving a tiny Starlette app on the running
asyncio loop; it never installs signal handlers, so the component keeps its own shutdown.

Probes (Kubernetes semantics): ``/healthz`` is liveness (503 makes the kubelet restart the
pod), ``/readyz`` readiness (503 takes it out of Service endpoints). Both answer JSON
``{"status": "ok" | "fail", "reason": "...", "checks": {name: reason}}``.

Metric names come from the seeds where they exist: ``bot_up``, ``order_latency_ms``,
``pnl_day_usdt``, ``ws_uptime``, ``ingest_rate``, ``order_reject_rate``, ``pnl_realized``,
``pnl_unrealized``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterator

import uvicorn
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger(__name__)

Check = Callable[[], "str | None"]
"""A health check: returns ``None`` when fine, or a reason string when failing."""


def new_registry(*, process: bool = True) -> CollectorRegistry:
    """A fresh registry for one component, with process/platform/GC collectors when
    ``process`` (``process_resident_memory_bytes``, ``python_info``...)."""
    registry = CollectorRegistry(auto_describe=True)
    if process:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    return registry


class Probe:
    """One probe's state: a flag set by the component plus named checks run per request."""

    def __init__(self, ok: bool, reason: str) -> None:
        self._ok = ok
        self._reason = reason
        self._checks: dict[str, Check] = {}

    def ok(self, reason: str = "ok") -> None:
        """Mark the probe passing."""
        self._ok, self._reason = True, reason

    def fail(self, reason: str) -> None:
        """Mark the probe failing with a reason shown in the 503 body (say what to do)."""
        if not reason:
            raise ValueError("a failing probe needs a reason")
        self._ok, self._reason = False, reason

    def add_check(self, name: str, check: Check) -> None:
        """Add a check evaluated on every request; an exception counts as failing."""
        self._checks[name] = check

    def evaluate(self) -> tuple[bool, dict[str, object]]:
        """``(passing, body)`` for the HTTP response."""
        failures: dict[str, str] = {}
        for name, check in self._checks.items():
            try:
                reason = check()
            except Exception as exc:  # a broken check must fail the probe, not the server
                reason = f"check raised {type(exc).__name__}: {exc}"
            if reason:
                failures[name] = reason
        passing = self._ok and not failures
        reason = (
            self._reason
            if not self._ok or not failures
            else "; ".join(f"{k}: {v}" for k, v in failures.items())
        )
        return passing, {
            "status": "ok" if passing else "fail",
            "reason": reason,
            "checks": failures,
        }


class Health:
    """Liveness (``live``, starts passing) and readiness (``ready``, starts failing with
    "starting" until the component calls ``health.ready.ok()``)."""

    def __init__(self) -> None:
        self.live = Probe(True, "ok")
        self.ready = Probe(False, "starting")


def build_app(registry: CollectorRegistry, health: Health) -> Starlette:
    """The Starlette app serving ``/metrics``, ``/healthz`` and ``/readyz``."""

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    def probe_endpoint(probe: Probe) -> Callable[[Request], object]:
        async def endpoint(_: Request) -> JSONResponse:
            passing, body = probe.evaluate()
            return JSONResponse(body, status_code=200 if passing else 503)

        return endpoint

    return Starlette(
        routes=[
            Route("/metrics", metrics),
            Route("/healthz", probe_endpoint(health.live)),
            Route("/readyz", probe_endpoint(health.ready)),
        ]
    )


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The component owns SIGTERM/SIGINT; uvicorn must not take them over.
        yield


class MetricsServer:
    """A running metrics/health server. ``port`` is the bound port; ``url`` its base URL."""

    def __init__(self, server: _Server, task: asyncio.Task[None], host: str, port: int) -> None:
        self._server = server
        self._task = task
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        """Stop serving and wait for the server task to finish."""
        self._server.should_exit = True
        await self._task


async def serve_metrics(
    registry: CollectorRegistry,
    health: Health | None = None,
    *,
    port: int = 0,
    host: str = "0.0.0.0",
) -> MetricsServer:
    """Start serving on the running loop; return once the port is listening.

    ``port=0`` picks a free port (read it from ``MetricsServer.port``). Raises ``OSError``
    when the port is taken. Stop with ``await server.stop()``.
    """
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be 0..65535, got {port}")
    health = health or Health()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(
            exc.errno,
            f"cannot serve metrics on {host}:{port}: {exc.strerror}; "
            "choose another port or 0 for a free one",
        ) from exc
    bound = sock.getsockname()[1]
    config = uvicorn.Config(
        build_app(registry, health),
        log_config=None,
        access_log=False,
        lifespan="off",
        log_level="warning",
    )
    server = _Server(config)
    task = asyncio.get_running_loop().create_task(
        server.serve(sockets=[sock]), name=f"metrics:{bound}"
    )
    while not server.started:
        if task.done():
            sock.close()
            task.result()  # re-raise the start-up error
            raise RuntimeError(f"metrics server on {host}:{bound} exited during start-up")
        await asyncio.sleep(0.01)
    log.info("metrics listening", extra={"host": host, "port": bound})
    return MetricsServer(server, task, host, bound)
