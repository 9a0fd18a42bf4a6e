"""Pure builders of every child manifest the operator creates: dicts in, dicts out.

No I/O and no API server: handlers call these and apply the result, tests call them
directly (dask-kubernetes' ``build_*_spec`` functions are the model). This module is also
the one place that says what a bot pod and a market-data pod look like, so the Helm chart
can mirror the same image, args, env and ports:

bot (one per TradingBot, Deployment ``{bot}`` in the bot's namespace)
    args ``bot --config /etc/tradefleet/bot.yaml --metrics-port 9001 [--risk-service]``
    (the image's entrypoint is the ``tradefleet`` console script); env ``NATS_URL``,
    ``TRADEFLEET_API_KEY``/``TRADEFLEET_API_SECRET`` from the Secret in
    ``spec.credentialsSecretRef`` (keys ``apiKeyKey``/``apiSecretKey``),
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` and ``LOG_LEVEL`` when set; port ``metrics`` 9001
    (``/metrics``, ``/healthz`` liveness, ``/readyz`` readiness); ConfigMap ``{bot}``
    mounted at ``/etc/tradefleet``; Service ``{bot}`` (ClusterIP, port ``metrics``).
market data (one per venue, Deployment ``marketdata-{venue}`` in the operator's namespace)
    args ``marketdata --venue V --rest-url R --ws-url W --symbols A,B --interval 1m,5m
    --metrics-port 9002``; env ``NATS_URL``; port ``metrics`` 9002.

Both: one replica, ``strategy: Recreate`` (never two processes trading one bot or holding
two WebSockets for one venue), non-root UID 10001, read-only root filesystem with an
emptyDir on ``/tmp``, all capabilities dropped, no service-account token.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import yaml
from pydantic import ValidationError

from tradefleet.api import API_GROUP, API_VERSION, TradingBot
from tradefleet.api.errors import describe_validation_error
from tradefleet.bus import subjects
from tradefleet.workers.bot.config import API_KEY_ENV, API_SECRET_ENV

from .config import (
    BOT_METRICS_PORT,
    CONFIG_MOUNT,
    MARKETDATA_METRICS_PORT,
    RUN_AS_USER,
    OperatorConfig,
)

CONFIG_HASH_ANNOTATION = f"{API_GROUP}/config-hash"
"""Pod-template annotation: hash of the bot's configuration; a change rolls the pod."""
MANIFEST_HASH_ANNOTATION = f"{API_GROUP}/manifest-hash"
"""Annotation on every child: hash of the manifest the operator last wrote (unchanged ->
no write)."""
BOT_LABEL = f"{API_GROUP}/bot"
VENUE_LABEL = f"{API_GROUP}/venue"
CONFIG_FILE = "bot.yaml"
OPERATOR_ONLY_FIELDS = ("paused", "onDelete")
"""Spec fields that never restart the worker: ``paused`` travels as a command over NATS and
``onDelete`` is read by the finalizer only."""


class InvalidBot(ValueError):
    """A TradingBot the operator refuses; ``problems`` has one ``field: reason`` per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


def _hash(data: Any) -> str:
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def validate_bot(body: Mapping[str, Any]) -> TradingBot:
    """The TradingBot model of a custom object; InvalidBot naming each bad field.

    Checks what the CRD schema cannot: the pydantic validators (strategy params, venue and
    credentials) and names usable in NATS subjects (namespace ``cmd`` is reserved).
    """
    meta = body.get("metadata") or {}
    doc = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "TradingBot",
           "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")},
           "spec": body.get("spec") or {}}
    try:
        bot = TradingBot.model_validate(doc)
    except ValidationError as exc:
        raise InvalidBot(describe_validation_error(exc, "")) from None
    try:
        subjects.check_namespace(bot.metadata.namespace)
        subjects.check_bot(bot.metadata.name)
    except ValueError as exc:
        raise InvalidBot([f"metadata: {exc}"]) from None
    if not bot.metadata.name[0].isalpha():
        raise InvalidBot(["metadata.name: must start with a letter (the bot's Service takes "
                          "its name)"])
    return bot


def render_bot(bot: TradingBot, config: OperatorConfig) -> dict[str, Any]:
    """The manifest the worker runs (``tradefleet bot --config``): the spec with every
    default filled in, and exsim's in-cluster URLs when the spec names none."""
    spec = bot.spec.model_dump(mode="json", by_alias=True)
    if bot.spec.venue == "exsim" and not bot.spec.endpoints.rest_url:
        rest, ws = config.urls("exsim")
        spec["endpoints"] = {"restUrl": rest, "wsUrl": ws}
    return {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "TradingBot",
            "metadata": {"name": bot.metadata.name, "namespace": bot.metadata.namespace},
            "spec": spec}


def rollout_hash(manifest: Mapping[str, Any]) -> str:
    """Hash of what the worker process depends on (spec minus :data:`OPERATOR_ONLY_FIELDS`).

    It is the pod template's ``tradefleet.io/config-hash``: it changes -> a new pod."""
    spec = {k: v for k, v in manifest["spec"].items() if k not in OPERATOR_ONLY_FIELDS}
    return _hash(spec)


def accepted_worker_hashes(manifest: Mapping[str, Any]) -> set[str]:
    """The ``config_hash`` values a worker running this manifest may report.

    The worker hashes the whole spec it loaded (tradefleet.workers.bot.config.config_hash);
    ``paused``/``onDelete`` may have changed since without a restart, so every combination
    of them is accepted.
    """
    from tradefleet.workers.bot.config import config_hash

    out = set()
    for paused in (False, True):
        for on_delete in ("flatten", "leave"):
            spec = {**manifest["spec"], "paused": paused, "onDelete": on_delete}
            out.add(config_hash(TradingBot.model_validate({**manifest, "spec": spec})))
    return out


def owner_reference(owner: Mapping[str, Any]) -> dict[str, Any]:
    """A controller ownerReference to ``owner`` (a custom object body): the child goes when
    the owner goes (Kubernetes garbage collection)."""
    meta = owner["metadata"]
    return {"apiVersion": owner.get("apiVersion", f"{API_GROUP}/{API_VERSION}"),
            "kind": owner.get("kind", "TradingBot"), "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def bot_labels(name: str) -> dict[str, str]:
    """Labels of every child of bot ``name`` (and the pod selector)."""
    return {"app.kubernetes.io/name": "tradefleet-bot", "app.kubernetes.io/instance": name,
            "app.kubernetes.io/part-of": "tradefleet",
            "app.kubernetes.io/managed-by": "tradefleet-operator", BOT_LABEL: name}


def _selector(labels: Mapping[str, str]) -> dict[str, str]:
    return {k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}


def _stamp(manifest: dict[str, Any]) -> dict[str, Any]:
    """Add the manifest-hash annotation (computed over the manifest without it)."""
    manifest["metadata"].setdefault("annotations", {})[MANIFEST_HASH_ANNOTATION] = _hash(manifest)
    return manifest


def build_configmap(manifest: Mapping[str, Any], owner: Mapping[str, Any]) -> dict[str, Any]:
    """ConfigMap ``{bot}`` holding ``bot.yaml``: the manifest the worker loads."""
    name, ns = manifest["metadata"]["name"], manifest["metadata"]["namespace"]
    text = ("# Written by tradefleet-operator from TradingBot "
            f"{ns}/{name}; edit the TradingBot, not this.\n"
            + yaml.safe_dump(dict(manifest), sort_keys=False))
    return _stamp({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": bot_labels(name),
                     "ownerReferences": [owner_reference(owner)]},
        "data": {CONFIG_FILE: text},
    })


def _security_context() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}


def _pod_security_context() -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": RUN_AS_USER, "runAsGroup": RUN_AS_USER,
            "fsGroup": RUN_AS_USER, "seccompProfile": {"type": "RuntimeDefault"}}


def _common_env(config: OperatorConfig) -> list[dict[str, Any]]:
    env = [{"name": "NATS_URL", "value": config.nats_url}]
    if config.otlp_endpoint:
        env.append({"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": config.otlp_endpoint})
    if config.log_level:
        env.append({"name": "LOG_LEVEL", "value": config.log_level})
    return env


def _probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": "metrics"}, "periodSeconds": period,
            "timeoutSeconds": 2, "failureThreshold": failures}


def bot_args(config: OperatorConfig) -> list[str]:
    """The bot container's args (after the ``tradefleet`` entrypoint)."""
    args = ["bot", "--config", f"{CONFIG_MOUNT}/{CONFIG_FILE}",
            "--metrics-port", str(BOT_METRICS_PORT)]
    if config.bot_risk_service:
        args.append("--risk-service")
    return args


def build_deployment(manifest: Mapping[str, Any], owner: Mapping[str, Any],
                     config: OperatorConfig) -> dict[str, Any]:
    """Deployment ``{bot}``: one worker pod (``Recreate``), config hash on the template."""
    bot = TradingBot.model_validate(manifest)
    name, ns = bot.metadata.name, bot.metadata.namespace
    labels = bot_labels(name)
    env = _common_env(config)
    ref = bot.spec.credentials_secret_ref
    if ref is not None:
        env += [{"name": API_KEY_ENV, "valueFrom": {"secretKeyRef": {
                    "name": ref.name, "key": ref.api_key_key}}},
                {"name": API_SECRET_ENV, "valueFrom": {"secretKeyRef": {
                    "name": ref.name, "key": ref.api_secret_key}}}]
    container = {
        "name": "bot",
        "image": config.image,
        "imagePullPolicy": config.image_pull_policy,
        "args": bot_args(config),
        "env": env,
        "ports": [{"name": "metrics", "containerPort": BOT_METRICS_PORT, "protocol": "TCP"}],
        # Warm-up replays history before /readyz passes; the startup probe covers it.
        "startupProbe": _probe("/healthz", period=5, failures=60),
        "livenessProbe": _probe("/healthz", period=10, failures=3),
        "readinessProbe": _probe("/readyz", period=5, failures=3),
        "resources": dict(config.bot_resources),
        "securityContext": _security_context(),
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True},
                         {"name": "tmp", "mountPath": "/tmp"}],
    }
    return _stamp({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": labels,
                     "ownerReferences": [owner_reference(owner)]},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": _selector(labels)},
            "template": {
                "metadata": {"labels": labels, "annotations": {
                    CONFIG_HASH_ANNOTATION: rollout_hash(manifest),
                    "prometheus.io/scrape": "true",
                    "prometheus.io/port": str(BOT_METRICS_PORT)}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    # SIGTERM: the worker finishes the bar in hand (20 s) and reports stopped.
                    "terminationGracePeriodSeconds": 45,
                    "securityContext": _pod_security_context(),
                    "containers": [container],
                    "volumes": [{"name": "config", "configMap": {"name": name}},
                                {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            },
        },
    })


def build_service(manifest: Mapping[str, Any], owner: Mapping[str, Any]) -> dict[str, Any]:
    """Service ``{bot}``: the worker's metrics port for Prometheus."""
    name, ns = manifest["metadata"]["name"], manifest["metadata"]["namespace"]
    labels = bot_labels(name)
    return _stamp({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": labels,
                     "ownerReferences": [owner_reference(owner)]},
        "spec": {"type": "ClusterIP", "selector": _selector(labels),
                 "ports": [{"name": "metrics", "port": BOT_METRICS_PORT,
                            "targetPort": "metrics", "protocol": "TCP"}]},
    })


def build_bot_children(body: Mapping[str, Any], config: OperatorConfig) -> list[dict[str, Any]]:
    """ConfigMap, Deployment and Service of the TradingBot ``body``; InvalidBot if bad."""
    manifest = render_bot(validate_bot(body), config)
    return [build_configmap(manifest, body), build_deployment(manifest, body, config),
            build_service(manifest, body)]


# ---------------------------------------------------------------------------- market data
def marketdata_name(venue: str) -> str:
    """``marketdata-{venue}`` with ``_`` made DNS-safe."""
    return f"marketdata-{venue.replace('_', '-')}"


def marketdata_labels(venue: str) -> dict[str, str]:
    """Labels of a venue's feed Deployment and pods."""
    return {"app.kubernetes.io/name": "tradefleet-marketdata",
            "app.kubernetes.io/instance": marketdata_name(venue),
            "app.kubernetes.io/part-of": "tradefleet",
            "app.kubernetes.io/managed-by": "tradefleet-operator", VENUE_LABEL: venue}


def marketdata_args(venue: str, symbols: Iterable[str], intervals: Iterable[str],
                    config: OperatorConfig) -> list[str]:
    """The feed container's args (after the ``tradefleet`` entrypoint)."""
    rest, ws = config.urls(venue)
    return ["marketdata", "--venue", venue, "--rest-url", rest, "--ws-url", ws,
            "--symbols", ",".join(sorted(set(symbols))),
            "--interval", ",".join(sorted(set(intervals), key=_interval_ms)),
            "--metrics-port", str(MARKETDATA_METRICS_PORT)]


_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000, "M": 2_592_000_000}


def _interval_ms(interval: str) -> int:
    return int(interval[:-1]) * _UNIT_MS[interval[-1]]


def build_marketdata_deployment(venue: str, symbols: Iterable[str], intervals: Iterable[str],
                                config: OperatorConfig) -> dict[str, Any]:
    """Deployment ``marketdata-{venue}`` feeding ``symbols`` x ``intervals`` (the union of
    the venue's bots) into JetStream; one WebSocket per venue, so ``Recreate``."""
    labels = marketdata_labels(venue)
    container = {
        "name": "marketdata",
        "image": config.image,
        "imagePullPolicy": config.image_pull_policy,
        "args": marketdata_args(venue, symbols, intervals, config),
        "env": _common_env(config),
        "ports": [{"name": "metrics", "containerPort": MARKETDATA_METRICS_PORT,
                   "protocol": "TCP"}],
        "livenessProbe": _probe("/healthz", period=10, failures=3),
        "readinessProbe": _probe("/readyz", period=5, failures=3),
        "resources": dict(config.marketdata_resources),
        "securityContext": _security_context(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    return _stamp({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": marketdata_name(venue), "namespace": config.namespace,
                     "labels": labels},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": _selector(labels)},
            "template": {
                "metadata": {"labels": labels, "annotations": {
                    "prometheus.io/scrape": "true",
                    "prometheus.io/port": str(MARKETDATA_METRICS_PORT)}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": _pod_security_context(),
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            },
        },
    })


__all__ = [
    "BOT_LABEL", "CONFIG_HASH_ANNOTATION", "InvalidBot", "MANIFEST_HASH_ANNOTATION",
    "OPERATOR_ONLY_FIELDS", "accepted_worker_hashes", "bot_args", "bot_labels",
    "build_bot_children", "build_configmap", "build_deployment", "build_marketdata_deployment",
    "build_service", "marketdata_args", "marketdata_name", "owner_reference", "render_bot",
    "rollout_hash", "validate_bot",
]
