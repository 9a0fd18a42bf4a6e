"""Market-data feeds follow the fleet: one Deployment per venue, symbols = union of its bots'.

The bots' (venue, symbols, interval) come from a kopf index (``bot_markets`` in
tradefleet.operator.handlers), which kopf fills from the initial listing before any handler
runs, so the first reconcile after a restart already sees every bot and never shrinks a
feed by mistake. Handlers call :meth:`MarketDataReconciler.trigger` when a bot comes, changes
or goes; a background task waits ``debounce_s`` (coalescing a burst of bot changes into one
rollout of the feed), then applies the desired Deployment for each venue that has bots and
deletes the feed of a venue that has none left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from .builders import VENUE_LABEL, build_marketdata_deployment
from .config import OperatorConfig
from .kube import KubeClient

log = logging.getLogger("tradefleet.operator.marketdata")


def union_by_venue(entries: Mapping[str, Iterable[tuple[tuple[str, ...], str]]]
                   ) -> dict[str, tuple[list[str], list[str]]]:
    """``{venue: [(symbols, interval), ...]}`` -> ``{venue: (sorted symbols, intervals)}``."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    for venue, items in entries.items():
        symbols: set[str] = set()
        intervals: set[str] = set()
        for syms, interval in items:
            symbols.update(syms)
            intervals.add(interval)
        if symbols:
            out[venue] = (sorted(symbols), sorted(intervals))
    return out


class MarketDataReconciler:
    """Keeps ``marketdata-{venue}`` Deployments equal to the union of the bots' symbols."""

    def __init__(self, kube: KubeClient, config: OperatorConfig) -> None:
        self.kube, self.config = kube, config
        self.index: Mapping[str, Iterable[Any]] | None = None
        self.applied: dict[str, tuple[list[str], list[str]]] = {}
        self.reconciles = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def trigger(self, index: Mapping[str, Iterable[Any]]) -> None:
        """Ask for a reconcile with the current ``index`` (kopf passes it to handlers)."""
        self.index = index
        self._wake.set()

    def start(self) -> None:
        """Start the background loop on the running event loop."""
        self._task = asyncio.create_task(self._run(), name="tradefleet:marketdata")

    async def stop(self) -> None:
        """Stop the loop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self.config.marketdata_debounce_s)
            self._wake.clear()
            try:
                await self.reconcile()
            except Exception as exc:  # noqa: BLE001 - retried on the next trigger or timer
                log.error("market-data reconcile failed; retrying",
                          extra={"error": f"{type(exc).__name__}: {exc}"})
                await asyncio.sleep(self.config.drain_poll_s)
                self._wake.set()

    def desired(self) -> dict[str, tuple[list[str], list[str]]]:
        """``{venue: (symbols, intervals)}`` the fleet needs now."""
        if self.index is None:
            return {}
        return union_by_venue({venue: list(self.index[venue]) for venue in list(self.index)})

    async def reconcile(self) -> dict[str, str]:
        """Apply every venue's feed; delete feeds of venues without bots. ``{venue: outcome}``."""
        self.reconciles += 1
        desired = self.desired()
        outcomes: dict[str, str] = {}
        for venue, (symbols, intervals) in desired.items():
            manifest = build_marketdata_deployment(venue, symbols, intervals, self.config)
            outcome, _ = await self.kube.apply(manifest)
            outcomes[venue] = outcome
            if outcome != "unchanged":
                log.info("market-data feed %s %s", venue, outcome,
                         extra={"venue": venue, "symbols": symbols, "intervals": intervals})
        existing = await self.kube.list("apps/v1", "Deployment", self.config.namespace,
                                        "app.kubernetes.io/name=tradefleet-marketdata")
        for item in existing:
            meta = item["metadata"]
            venue = (meta.get("labels") or {}).get(VENUE_LABEL)
            if venue and venue not in desired:
                await self.kube.delete({"apiVersion": "apps/v1", "kind": "Deployment",
                                        "metadata": {"name": meta["name"],
                                                     "namespace": self.config.namespace}})
                outcomes[venue] = "deleted"
                log.info("market-data feed %s deleted: no bot trades it", venue)
        self.applied = desired
        return outcomes


__all__ = ["MarketDataReconciler", "union_by_venue"]
