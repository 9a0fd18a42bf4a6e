"""The operator's settings: images, URLs, ports and timings it builds children with.

Everything the operator puts into a pod (image, NATS URL, exchange URLs, ports) comes from
here, so the Helm chart sets these through the operator's environment (``from_env``) and
never has to know how a bot pod is built. Environment variables:

==================================  ===========================================  =============
variable                            meaning                                      default
==================================  ===========================================  =============
``TRADEFLEET_IMAGE``                image of bots and market-data feeds          ``tradefleet:latest``
``TRADEFLEET_IMAGE_PULL_POLICY``    imagePullPolicy of those pods                ``IfNotPresent``
``NATS_URL``                        NATS the operator and every pod use          ``nats://nats:4222``
``POD_NAMESPACE``                   operator's namespace: market-data feeds      ``tradefleet``
                                    and the active RiskPolicy live there
``TRADEFLEET_RISK_POLICY``          name of the active RiskPolicy                ``default``
``TRADEFLEET_EXSIM_URL``            exsim REST base (ws = same host, ws://)      ``http://exsim:9010``
``TRADEFLEET_BOT_RISK_SERVICE``     bots ask the shared risk service (1/0)       ``1``
``OTEL_EXPORTER_OTLP_ENDPOINT``     passed to bots and feeds when set            unset
``TRADEFLEET_STATUS_INTERVAL_S``    at most one status write per bot per this    ``5``
``TRADEFLEET_HEARTBEAT_TIMEOUTS``   silent for this many heartbeat intervals     ``3``
                                    → Degraded
``TRADEFLEET_DRAIN_TIMEOUT_S``      finalizer gives up waiting for flat after    ``300``
==================================  ===========================================  =============
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

BOT_METRICS_PORT = 9001
"""Port of a bot's ``/metrics``, ``/healthz``, ``/readyz`` (``tradefleet bot --metrics-port``)."""
MARKETDATA_METRICS_PORT = 9002
"""Port of a feed's ``/metrics``, ``/healthz``, ``/readyz`` (``tradefleet marketdata``)."""
CONFIG_MOUNT = "/etc/tradefleet"
"""Where the bot's ConfigMap is mounted; the manifest is ``{CONFIG_MOUNT}/bot.yaml``."""
RUN_AS_USER = 10001
"""Non-root UID (and GID) the pods run as; the image must not need another."""

BINANCE_URLS = ("https://fapi.binance.com", "wss://fstream.binance.com")


def _ws_of(rest_url: str) -> str:
    return "ws" + rest_url[len("http"):] if rest_url.startswith("http") else rest_url


@dataclass(frozen=True)
class OperatorConfig:
    """How the operator builds and watches the fleet (see the module table for env names).

    Times are seconds. ``venue_urls`` maps a venue to its (REST, WebSocket) base URLs, used
    for market-data feeds and as the default ``spec.endpoints`` of exsim bots.
    """

    image: str = "tradefleet:latest"
    image_pull_policy: str = "IfNotPresent"
    nats_url: str = "nats://nats:4222"
    namespace: str = "tradefleet"
    risk_policy_name: str = "default"
    venue_urls: Mapping[str, tuple[str, str]] = field(default_factory=lambda: {
        "exsim": ("http://exsim:9010", "ws://exsim:9010"),
        "binanceusdm": BINANCE_URLS,
    })
    bot_risk_service: bool = True
    otlp_endpoint: str | None = None
    log_level: str | None = None
    bot_resources: Mapping[str, Any] = field(default_factory=lambda: {
        "requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}})
    marketdata_resources: Mapping[str, Any] = field(default_factory=lambda: {
        "requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}})
    # -- timings -------------------------------------------------------------------------
    status_interval_s: float = 5.0
    heartbeat_timeouts: float = 3.0
    drain_timeout_s: float = 300.0
    drain_poll_s: float = 2.0
    marketdata_debounce_s: float = 1.0
    watch_server_timeout_s: int = 300
    watch_client_timeout_s: float = 330.0
    request_timeout_s: float = 30.0
    connect_timeout_s: float = 10.0
    nats_connect_deadline_s: float = 60.0

    def __post_init__(self) -> None:
        for name in ("status_interval_s", "heartbeat_timeouts", "drain_timeout_s",
                     "drain_poll_s", "request_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")

    def urls(self, venue: str) -> tuple[str, str]:
        """(REST, WebSocket) base URLs of ``venue``; ValueError if none is configured."""
        try:
            return self.venue_urls[venue]
        except KeyError:
            raise ValueError(f"no URLs configured for venue {venue!r}; known: "
                             f"{', '.join(sorted(self.venue_urls))}") from None

    def with_(self, **changes: Any) -> "OperatorConfig":
        """A copy with ``changes`` (tests, CLI flags)."""
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "OperatorConfig":
        """Settings from the environment (module table); ValueError naming a bad variable."""
        env = os.environ if env is None else env
        base = cls()
        exsim = env.get("TRADEFLEET_EXSIM_URL")
        urls = dict(base.venue_urls)
        if exsim:
            urls["exsim"] = (exsim.rstrip("/"), _ws_of(exsim.rstrip("/")))

        def number(name: str, default: float) -> float:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                return float(raw)
            except ValueError:
                raise ValueError(f"{name} must be a number, got {raw!r}") from None

        return cls(
            image=env.get("TRADEFLEET_IMAGE", base.image),
            image_pull_policy=env.get("TRADEFLEET_IMAGE_PULL_POLICY", base.image_pull_policy),
            nats_url=env.get("NATS_URL", base.nats_url),
            namespace=env.get("POD_NAMESPACE", base.namespace),
            risk_policy_name=env.get("TRADEFLEET_RISK_POLICY", base.risk_policy_name),
            venue_urls=urls,
            bot_risk_service=env.get("TRADEFLEET_BOT_RISK_SERVICE", "1") not in ("0", "false"),
            otlp_endpoint=env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None,
            log_level=env.get("LOG_LEVEL") or None,
            status_interval_s=number("TRADEFLEET_STATUS_INTERVAL_S", base.status_interval_s),
            heartbeat_timeouts=number("TRADEFLEET_HEARTBEAT_TIMEOUTS", base.heartbeat_timeouts),
            drain_timeout_s=number("TRADEFLEET_DRAIN_TIMEOUT_S", base.drain_timeout_s),
        )


__all__ = ["BOT_METRICS_PORT", "CONFIG_MOUNT", "MARKETDATA_METRICS_PORT", "OperatorConfig",
           "RUN_AS_USER"]
