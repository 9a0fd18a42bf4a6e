"""``tradefleet operator``: run the kopf operator until SIGTERM."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import kopf

from tradefleet.telemetry import setup_logging

from .config import OperatorConfig
from .handlers import build_registry


async def serve(config: OperatorConfig, *, namespaces: Sequence[str] = (),
                liveness_port: int | None = 8080) -> None:
    """Run the operator on the running loop: cluster-wide unless ``namespaces`` are given,
    standalone (one replica, no peering), kopf's liveness probe on ``/healthz``."""
    await kopf.operator(
        registry=build_registry(config), memo=kopf.Memo(), standalone=True,
        clusterwide=not namespaces, namespaces=list(namespaces),
        liveness_endpoint=(f"http://0.0.0.0:{liveness_port}/healthz"
                           if liveness_port else None))


def run(config: OperatorConfig, *, namespaces: Sequence[str] = (),
        liveness_port: int | None = 8080, log_level: str | None = None) -> None:
    """Configure logging and run :func:`serve` until stopped (SIGTERM/SIGINT)."""
    setup_logging("operator", log_level)
    asyncio.run(serve(config, namespaces=namespaces, liveness_port=liveness_port))


__all__ = ["run", "serve"]
