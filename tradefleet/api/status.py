"""``status`` of the fleet's custom resources: what the operator writes, what users read.

The operator is the only writer (the ``status`` subresource); ``kubectl get tradingbots``
shows ``phase``, ``position`` and ``pnl``, ``kubectl describe`` the conditions, and
``kubectl wait --for=condition=Ready tradingbot/x`` works because conditions have the shape
of ``metav1.Condition`` (type, status, observedGeneration, lastTransitionTime, reason,
message). Condition types and reasons are named constants (CloudNativePG's
``cluster_conditions.go`` does the same) so dashboards and scripts can rely on them.

Money is a decimal string in USDT (``"12.5"``), as on the bus; times are RFC 3339 UTC.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

# -- condition types (TradingBot) -----------------------------------------------------------
READY = "Ready"
"""True while the worker heartbeats on time and its phase is not Failed."""
TRADING = "Trading"
"""True while the bot may open new positions (phase Running)."""
RISK_HALTED = "RiskHalted"
"""True while a guard or the kill switch halted the bot (phase Halted)."""
DEGRADED = "Degraded"
"""True while the worker is silent beyond its heartbeat timeout or its pod is unavailable."""
CONFIG_DRIFT = "ConfigDrift"
"""True while the worker runs another configuration than the spec (rollout in progress, or a
pod that cannot start with the new one)."""
TRADINGBOT_CONDITIONS = (READY, TRADING, RISK_HALTED, DEGRADED, CONFIG_DRIFT)

# -- condition types (RiskPolicy) ------------------------------------------------------------
APPLIED = "Applied"
"""True when the policy is the one in KV ``risk-policy/policy``."""

# -- reasons (CamelCase, as metav1.Condition requires) ---------------------------------------
REASON_HEARTBEAT = "Heartbeat"
REASON_NO_HEARTBEAT = "NoHeartbeat"
REASON_HEARTBEAT_TIMEOUT = "HeartbeatTimeout"
REASON_WORKER_FAILED = "WorkerFailed"
REASON_INVALID_SPEC = "InvalidSpec"
REASON_PAUSED = "Paused"
REASON_HALTED = "Halted"
REASON_DRAINING = "Draining"
REASON_STARTING = "Starting"
REASON_RUNNING = "Running"
REASON_NOT_HALTED = "NotHalted"
REASON_CONFIG_MATCHES = "ConfigMatches"
REASON_ROLLOUT_PENDING = "RolloutPending"
REASON_POLICY_WRITTEN = "PolicyWritten"
REASON_NOT_ACTIVE = "NotTheActivePolicy"
REASON_KV_UNAVAILABLE = "KVUnavailable"

PhaseName = Literal["Pending", "Starting", "Running", "Paused", "Halted", "Draining", "Failed"]
"""``status.phase`` of a TradingBot (tradefleet.bus.fleet_messages.Phase, plus the operator's
own ``Pending`` before the first heartbeat and ``Failed`` for a spec it refuses)."""

_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
_DECIMAL = r"^-?[0-9]+(\.[0-9]+)?$"


class _Status(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Condition(_Status):
    """One condition, shaped like Kubernetes ``metav1.Condition`` (same fields and limits)."""

    type: str = Field(max_length=316, pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]"
                      r"([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
                      description="Condition type, e.g. Ready.")
    status: Literal["True", "False", "Unknown"]
    observed_generation: int | None = Field(default=None, ge=0, description="metadata."
                                            "generation the condition was set for.")
    last_transition_time: str = Field(json_schema_extra={"format": "date-time"},
                                      description="When status last changed, RFC 3339 UTC.")
    reason: str = Field(min_length=1, max_length=1024, pattern=_REASON_PATTERN,
                        description="CamelCase reason, e.g. HeartbeatTimeout.")
    message: str = Field(max_length=32768, description="Human-readable details.")


class PositionStatus(_Status):
    """One open position as the bot last reported it (base units and USDT, decimal strings)."""

    symbol: str
    side: Literal["long", "short", "flat"]
    qty: str = Field(pattern=_DECIMAL, description="Quantity, base units.")
    entry_price: str | None = Field(default=None, description="Average entry, USDT.")
    mark_price: str | None = Field(default=None, description="Mark price, USDT.")
    unrealized_pnl: str = Field(default="0", description="At mark, USDT.")
    stop_price: str | None = Field(default=None, description="Protective stop trigger, USDT.")


class TradingBotStatus(_Status):
    """The TradingBot's ``status``."""

    phase: PhaseName = Field(default="Pending", description="Lifecycle phase.")
    reason: str = Field(default="", max_length=1024, description="Why the bot is in its phase.")
    observed_generation: int | None = Field(default=None, ge=0, description="metadata."
                                            "generation the operator last reconciled.")
    conditions: list[Condition] = Field(default_factory=list)
    position: str = Field(default="", max_length=256, description="Summary for kubectl get: "
                          "'flat', 'BTCUSDT long 0.01' or 'N positions'.")
    positions: list[PositionStatus] = Field(default_factory=list)
    open_orders: int = Field(default=0, ge=0, description="Open orders incl. protective stops.")
    realized_pnl: str = Field(default="0", pattern=_DECIMAL, description="Since the worker "
                              "started, net of fees, USDT.")
    unrealized_pnl: str = Field(default="0", pattern=_DECIMAL, description="At mark, USDT.")
    pnl: str = Field(default="0", pattern=_DECIMAL, description="realizedPnl + unrealizedPnl, "
                     "USDT (kubectl get's PnL column).")
    pnl_day: str = Field(default="0", pattern=_DECIMAL, description="Realized since 00:00 UTC, "
                         "net of fees, USDT (seed pnl_day_usdt).")
    loss_streak: int = Field(default=0, ge=0)
    last_heartbeat: str | None = Field(default=None, json_schema_extra={"format": "date-time"},
                                       description="Wall clock of the last status or "
                                       "heartbeat received, RFC 3339 UTC.")
    config_hash: str = Field(default="", description="Hash of the configuration rolled out "
                             "(the pod template's tradefleet.io/config-hash).")
    running_config_hash: str = Field(default="", description="Hash the worker reports running.")
    drain_command_id: str | None = Field(default=None, description="Command id of the drain "
                                         "the finalizer sent, while deleting.")


class RiskPolicyStatus(_Status):
    """The RiskPolicy's ``status``."""

    phase: Literal["Applied", "Inactive", "Failed"] | None = None
    observed_generation: int | None = Field(default=None, ge=0)
    conditions: list[Condition] = Field(default_factory=list)
    kv_revision: int | None = Field(default=None, ge=0, description="Revision of KV "
                                    "risk-policy/policy written from this spec.")
    applied_at: str | None = Field(default=None, json_schema_extra={"format": "date-time"})


__all__ = [
    "APPLIED", "CONFIG_DRIFT", "DEGRADED", "READY", "RISK_HALTED", "TRADING",
    "TRADINGBOT_CONDITIONS", "Condition", "PhaseName", "PositionStatus", "RiskPolicyStatus",
    "TradingBotStatus",
]
