"""Run the real operator (kopf) against kmock's Kubernetes emulator over HTTP, with real NATS.

kmock 0.8 sets no ``resourceVersion``, ``uid``, ``creationTimestamp`` or ``generation`` and
applies JSON patches without honouring a failed ``test`` op; :class:`Emulator` adds those,
so kopf's finalizer patches behave as against a real API server. It has no garbage
collection, selectors or schema validation (the CRD tests cover validation), and listing
namespaces is not served, so kopf runs cluster-wide. kopf is started with
``spawn_tasks``/``run_tasks`` (no 5 s teardown of ``kopf.operator()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import jsonpatch
import kmock
import kopf
import pytest
import yaml
from kmock._internal import enums
from kmock._internal.k8s import KubernetesError

from tradefleet.api import TradingBot
from tradefleet.bus import publish, subjects
from tradefleet.bus.fleet_messages import Phase, PositionMsg, StatusMsg
from tradefleet.operator.config import OperatorConfig
from tradefleet.operator.handlers import build_registry
from tradefleet.workers.bot.config import config_hash

TB = "tradefleet.io/v1alpha1/tradingbots"
RP = "tradefleet.io/v1alpha1/riskpolicies"
DEPLOYMENTS = "apps/v1/deployments"
CONFIGMAPS = "v1/configmaps"
SERVICES = "v1/services"
EVENTS = "v1/events"


class Emulator(kmock.KubernetesEmulator):
    """KubernetesEmulator with resourceVersion, uid, creationTimestamp and generation, and
    422 for a JSON patch whose ``test`` op fails (optimistic concurrency, as the API server)."""

    _rv = itertools.count(1)
    served = 0  # requests handled (the bench counts the operator's API calls with it)

    async def _handle(self, request: Any) -> Any:
        self.served += 1
        if request.resource is not None:
            if request.action == enums.action.CREATE and isinstance(request.data, dict):
                meta = request.data.setdefault("metadata", {})
                if not meta.get("name") and meta.get("generateName"):
                    meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault("creationTimestamp",
                                dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
                meta["resourceVersion"] = str(next(self._rv))
                meta.setdefault("generation", 1)
            elif request.action == enums.action.UPDATE:
                key = (request.resource, request.namespace, request.name)
                current = self.objects[key].raw if key in self.objects else None
                rv = str(next(self._rv))
                if isinstance(request.data, list):
                    if current is not None:
                        try:
                            jsonpatch.apply_patch(current, request.data)
                        except (jsonpatch.JsonPatchTestFailed, jsonpatch.JsonPatchConflict) as e:
                            # The client acted on a stale version: re-announce the current one
                            # (an API server's watch would deliver it), then refuse.
                            await self._buses[request.resource].put(
                                {"type": "MODIFIED", "object": current})
                            raise KubernetesError(status=422, reason="Invalid", message=str(e))
                    request.data.append({"op": "replace", "path": "/metadata/resourceVersion",
                                         "value": rv})
                elif isinstance(request.data, dict):
                    meta = request.data.setdefault("metadata", {})
                    meta["resourceVersion"] = rv
                    spec_changed = (request.subresource is None and "spec" in request.data
                                    and current is not None
                                    and jsonpatch.make_patch(current.get("spec") or {},
                                                             _merged(current.get("spec") or {},
                                                                     request.data["spec"])).patch)
                    if spec_changed:
                        meta["generation"] = int(current["metadata"].get("generation", 1)) + 1
        return await super()._handle(request)


def _merged(base: dict, patch: dict) -> dict:
    out = dict(base)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merged(out[k], v)
        else:
            out[k] = v
    return out


def declare(emu: Emulator) -> None:
    info = kmock.ResourceInfo
    verbs = {"get", "list", "watch", "create", "patch", "update", "delete"}
    emu.resources[TB] = info(kind="TradingBot", namespaced=True, verbs=verbs,
                             subresources={"status"}, shortnames={"tb"})
    emu.resources[RP] = info(kind="RiskPolicy", namespaced=True, verbs=verbs,
                             subresources={"status"})
    emu.resources[DEPLOYMENTS] = info(kind="Deployment", namespaced=True, verbs=verbs)
    emu.resources[CONFIGMAPS] = info(kind="ConfigMap", namespaced=True, verbs=verbs)
    emu.resources[SERVICES] = info(kind="Service", namespaced=True, verbs=verbs)
    emu.resources[EVENTS] = info(kind="Event", namespaced=True, verbs={"create", "list"})
    emu.resources["v1/namespaces"] = info(kind="Namespace", namespaced=False,
                                          verbs={"list", "watch"})
    emu.resources["apiextensions.k8s.io/v1/customresourcedefinitions"] = info(
        kind="CustomResourceDefinition", namespaced=False, verbs={"list", "watch"})


class Cluster:
    """What a user does with kubectl, over HTTP against the emulator, plus assertions."""

    def __init__(self, emu: Emulator, url: str, session: aiohttp.ClientSession,
                 memo: kopf.Memo, js: Any) -> None:
        self.emu, self.url, self.session, self.memo, self.js = emu, url, session, memo, js

    @staticmethod
    def _path(resource: str, namespace: str, name: str | None = None) -> str:
        group_version, plural = resource.rsplit("/", 1)
        base = f"/api/{group_version}" if group_version == "v1" else f"/apis/{group_version}"
        return f"{base}/namespaces/{namespace}/{plural}" + (f"/{name}" if name else "")

    async def _call(self, method: str, path: str, body: Any = None,
                    content_type: str = "application/json") -> dict:
        async with self.session.request(method, self.url + path, json=body,
                                        headers={"Content-Type": content_type}) as resp:
            data = await resp.json(content_type=None)
            assert resp.status < 400, f"{method} {path}: {resp.status} {data}"
            return data

    async def apply(self, obj: dict) -> dict:
        resource = TB if obj["kind"] == "TradingBot" else RP
        ns = obj["metadata"].get("namespace", "default")
        return await self._call("POST", self._path(resource, ns), obj)

    async def patch(self, resource: str, namespace: str, name: str, body: dict) -> dict:
        return await self._call("PATCH", self._path(resource, namespace, name), body,
                                "application/merge-patch+json")

    async def delete(self, resource: str, namespace: str, name: str) -> dict:
        return await self._call("DELETE", self._path(resource, namespace, name))

    @staticmethod
    def _res(resource: str) -> Any:
        group_version, plural = resource.rsplit("/", 1)
        group, _, version = group_version.rpartition("/")
        return kmock.resource(group, version, plural)

    def get(self, resource: str, namespace: str, name: str) -> dict | None:
        key = (self._res(resource), namespace, name)
        if key not in self.emu.objects or self.emu.objects[key].deleted:
            return None
        return self.emu.objects[key].raw

    def writes(self, resource: str, namespace: str, name: str) -> int:
        """How many versions the object went through (1 = created, never changed)."""
        key = (self._res(resource), namespace, name)
        return len([v for v in self.emu.objects[key].history if v is not None])

    def events(self, name: str | None = None) -> list[dict]:
        out = []
        for (resource, _, _), obj in self.emu.objects.items():
            if resource == self._res(EVENTS) and not obj.deleted:
                raw = obj.raw
                if name is None or raw.get("involvedObject", {}).get("name") == name:
                    out.append(raw)
        return out

    def event_reasons(self, name: str) -> list[str]:
        return [e.get("reason") for e in self.events(name)]

    async def wait(self, check: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what or check}")
            await asyncio.sleep(0.05)

    def status(self, namespace: str, name: str) -> dict:
        return (self.get(TB, namespace, name) or {}).get("status") or {}

    def worker_config_hash(self, namespace: str, name: str) -> str:
        """The config_hash a worker computes from the ConfigMap's bot.yaml."""
        cm = self.get(CONFIGMAPS, namespace, name)
        return config_hash(TradingBot.model_validate(yaml.safe_load(cm["data"]["bot.yaml"])))

    async def heartbeat(self, namespace: str, name: str, *, phase: Phase = Phase.RUNNING,
                        positions: list[PositionMsg] = (), config_hash: str | None = None,
                        last_command: str | None = None, kind: str = "heartbeat",
                        **fields: Any) -> StatusMsg:
        """Publish a real StatusMsg as the worker does (stream FLEET)."""
        msg = StatusMsg(namespace=namespace, bot=name, kind=kind, phase=phase,
                        positions=list(positions), last_command=last_command,
                        config_hash=(config_hash if config_hash is not None
                                     else self.worker_config_hash(namespace, name)),
                        ts_ms=time.time_ns() // 1_000_000, **fields)
        await publish(self.js, subjects.fleet(namespace, name, kind), msg.to_wire())
        return msg


def bot_manifest(name: str, *, symbols=("BTCUSDT",), namespace: str = "default",
                 **spec: Any) -> dict:
    body = {"symbols": list(symbols), "strategy": {"name": "ema_cross",
                                                   "params": {"ema_fast": 20, "ema_slow": 50}}}
    body.update(spec)
    return {"apiVersion": "tradefleet.io/v1alpha1", "kind": "TradingBot",
            "metadata": {"name": name, "namespace": namespace}, "spec": body}


@pytest.fixture
async def k8s() -> AsyncIterator[tuple[Emulator, str]]:
    async with Emulator() as emu, kmock.Server(emu) as server:
        declare(emu)
        yield emu, str(server.url).rstrip("/")


@pytest.fixture
def op_config(nats_url: str) -> OperatorConfig:
    return OperatorConfig(nats_url=nats_url, namespace="tradefleet", image="tradefleet:test",
                          status_interval_s=0.2, heartbeat_timeouts=2.0, drain_timeout_s=20,
                          drain_poll_s=0.2, marketdata_debounce_s=0.1, request_timeout_s=10,
                          nats_connect_deadline_s=10)


@contextlib.asynccontextmanager
async def running_operator(emu: Emulator, url: str, config: OperatorConfig,
                           js: Any, stop_timeout_s: float = 15) -> AsyncIterator[Cluster]:
    """kopf with the tradefleet registry against ``url`` until the block ends."""
    memo = kopf.Memo(fixed_connection=kopf.ConnectionInfo(server=url, insecure=True))
    settings = kopf.OperatorSettings()
    settings.scanning.disabled = True  # the emulator serves no CRD watch
    stop, ready = asyncio.Event(), asyncio.Event()
    existing = asyncio.all_tasks()
    tasks = await kopf.spawn_tasks(registry=build_registry(config), settings=settings,
                                   memo=memo, clusterwide=True, standalone=True,
                                   stop_flag=stop, ready_flag=ready)
    runner = asyncio.create_task(kopf.run_tasks(tasks, ignored=existing))
    try:
        await asyncio.wait_for(ready.wait(), 15)
        async with aiohttp.ClientSession() as session:
            cluster = Cluster(emu, url, session, memo, js)
            await cluster.wait(lambda: "feeds" in memo, 15, "operator startup")
            yield cluster
    finally:
        # kopf cancels every task born after it started, the teardown task included,
        # unless it is in the (lazily read) ignored set.
        existing.add(asyncio.current_task())
        stop.set()
        await asyncio.wait_for(runner, stop_timeout_s)


@pytest.fixture
async def cluster(k8s, op_config, js) -> AsyncIterator[Cluster]:
    emu, url = k8s
    async with running_operator(emu, url, op_config, js) as c:
        yield c
