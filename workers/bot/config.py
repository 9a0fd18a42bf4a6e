"""What a bot worker runs with: its TradingBot manifest, process options and credentials.

``tradefleet bot --config bot.yaml`` reads one TradingBot (the same file ``kubectl apply``
takes; the operator mounts it from a ConfigMap) and validates it with the API models;
a bad field stops the worker before it connects anywhere (exit code 2).

Credentials never come from the manifest (DESIGN.md, Secrets): they are read from the
environment, which the operator fills from the Secret named in ``credentialsSecretRef``:

=========================  ================================================================
variable                   used for
=========================  ================================================================
``TRADEFLEET_API_KEY``     exchange API key (any venue); the operator maps the Secret's
``TRADEFLEET_API_SECRET``  ``apiKeyKey``/``apiSecretKey`` entries onto these two
``EXSIM_API_KEY``          exsim only, when ``TRADEFLEET_API_KEY`` is unset; the first key
``EXSIM_API_SECRET``       of a comma-separated list (exsim's own variables)
(none)                     exsim only: exsim's default paper account ``exsim-key``
=========================  ================================================================
"""

from __future__ import annotations

import hashlib
import os
import pathlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

from tradefleet.api import ManifestError, RiskPolicySpec, TradingBot, load_manifests
from tradefleet.bus import subjects

API_KEY_ENV = "TRADEFLEET_API_KEY"
API_SECRET_ENV = "TRADEFLEET_API_SECRET"
EXSIM_KEY_ENV = "EXSIM_API_KEY"
EXSIM_SECRET_ENV = "EXSIM_API_SECRET"
# exsim's default paper account (tradefleet.exsim.server.DEFAULT_API_KEY); spelled here
# because the bot must not import the simulator.
EXSIM_DEFAULT_KEY = "exsim-key"
EXSIM_DEFAULT_SECRET = "exsim-secret"

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
DEFAULT_METRICS_PORT = 9001  # seed 001: the ema runner's HTTP_PORT


class ConfigError(ValueError):
    """The worker cannot start with this configuration; the message names what to fix."""


@dataclass(frozen=True)
class Credentials:
    """An exchange API key pair. ``repr`` never shows the secret."""

    api_key: str
    api_secret: str = field(repr=False)
    source: str = ""

    def __repr__(self) -> str:  # never the key either: logs mask 64-char keys, not short ones
        return f"Credentials(source={self.source!r})"


def credentials_from_env(bot: TradingBot, env: Mapping[str, str] | None = None) -> Credentials:
    """The bot's exchange keys from ``env`` (default ``os.environ``), see the module table.

    Raises ConfigError naming the variables when a non-exsim venue has none, or when only
    one of a key/secret pair is set.
    """
    env = os.environ if env is None else env
    key, secret = env.get(API_KEY_ENV, ""), env.get(API_SECRET_ENV, "")
    if key or secret:
        if not (key and secret):
            raise ConfigError(f"{API_KEY_ENV} and {API_SECRET_ENV} must both be set (only "
                              f"{API_KEY_ENV if key else API_SECRET_ENV} is)")
        return Credentials(key, secret, "env:" + API_KEY_ENV)
    if bot.spec.venue != "exsim":
        ref = bot.spec.credentials_secret_ref
        where = f" (from Secret {ref.name!r})" if ref else ""
        raise ConfigError(f"venue {bot.spec.venue!r} needs exchange keys: set {API_KEY_ENV} "
                          f"and {API_SECRET_ENV}{where}")
    ekey, esecret = env.get(EXSIM_KEY_ENV, ""), env.get(EXSIM_SECRET_ENV, "")
    if ekey or esecret:
        keys = [k.strip() for k in ekey.split(",") if k.strip()]
        secrets = [s.strip() for s in esecret.split(",") if s.strip()]
        if not keys or not secrets:
            raise ConfigError(f"{EXSIM_KEY_ENV} and {EXSIM_SECRET_ENV} must both be set")
        return Credentials(keys[0], secrets[0], "env:" + EXSIM_KEY_ENV)
    return Credentials(EXSIM_DEFAULT_KEY, EXSIM_DEFAULT_SECRET, "exsim-default")


def config_hash(bot: TradingBot) -> str:
    """Hash of the bot's spec as it runs: sha256 of its canonical JSON (camelCase wire names,
    defaults filled in, keys sorted), first 16 hex characters.

    The operator computes the same over the spec it rolled out and compares it with the
    ``config_hash`` in the bot's heartbeats to tell a finished rollout from drift.
    """
    wire = bot.spec.model_dump(mode="json", by_alias=True)
    digest = hashlib.sha256(orjson.dumps(wire, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return digest[:16]


def load_bot(path: str | pathlib.Path) -> TradingBot:
    """The one TradingBot in ``path``.

    Raises ManifestError (file, field, reason; from :func:`tradefleet.api.load_manifests`)
    for bad YAML or fields, and ConfigError when the file holds no TradingBot or several,
    or names that cannot form NATS subjects.
    """
    bots = load_manifests([path], kind="TradingBot")
    if len(bots) != 1:
        raise ConfigError(f"{path}: expected exactly one TradingBot, found {len(bots)}")
    bot = bots[0]
    try:
        subjects.check_namespace(bot.metadata.namespace)
        subjects.check_bot(bot.metadata.name)
    except ValueError as exc:
        raise ConfigError(f"{path}: metadata: {exc}") from None
    return bot


def load_risk_policy(path: str | pathlib.Path | None) -> RiskPolicySpec:
    """The RiskPolicy spec in ``path`` for the bot's local risk checker; the defaults of
    :class:`RiskPolicySpec` when ``path`` is None. Raises ManifestError / ConfigError."""
    if path is None:
        return RiskPolicySpec()
    policies = load_manifests([path], kind="RiskPolicy")
    if len(policies) != 1:
        raise ConfigError(f"{path}: expected exactly one RiskPolicy, found {len(policies)}")
    return policies[0].spec


@dataclass(frozen=True)
class BotOptions:
    """Process options of ``tradefleet bot`` (flags; not part of the TradingBot spec).

    nats_url: NATS server (default ``NATS_URL`` or nats://127.0.0.1:4222).
    metrics_port: port of ``/metrics`` and ``/healthz`` (0 = any free port).
    metrics_host: bind address of the metrics server.
    risk_policy: RiskPolicy file for the local risk checker (None = RiskPolicySpec defaults).
    otlp_endpoint: OTLP/HTTP collector for traces (None = ``OTEL_EXPORTER_OTLP_*`` or off).
    ack_wait_s: JetStream ack wait of the bot's consumer: after a crash, the bar that was
        being processed is redelivered to the next instance after this long.
    risk_timeout_ms: a risk check with no answer in this time blocks the entry.
    drain_timeout_s: how long SIGTERM waits for the bar in progress to finish.
    exchange_options: extra ccxt options merged into the exchange client config
        (tests: ``{"enableRateLimit": False}``).
    """

    nats_url: str = field(default_factory=lambda: os.environ.get("NATS_URL", DEFAULT_NATS_URL))
    metrics_port: int = DEFAULT_METRICS_PORT
    metrics_host: str = "0.0.0.0"
    risk_policy: pathlib.Path | None = None
    otlp_endpoint: str | None = None
    ack_wait_s: float = 30.0
    risk_timeout_ms: int = 500
    drain_timeout_s: float = 20.0
    exchange_options: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"--metrics-port must be 0..65535, got {self.metrics_port}")
        if not self.ack_wait_s > 0:
            raise ConfigError(f"ack_wait_s must be > 0 seconds, got {self.ack_wait_s}")
        if not self.risk_timeout_ms > 0:
            raise ConfigError(f"risk_timeout_ms must be > 0, got {self.risk_timeout_ms}")


__all__ = [
    "API_KEY_ENV",
    "API_SECRET_ENV",
    "EXSIM_KEY_ENV",
    "EXSIM_SECRET_ENV",
    "BotOptions",
    "ConfigError",
    "Credentials",
    "ManifestError",
    "config_hash",
    "credentials_from_env",
    "load_bot",
    "load_risk_policy",
]
