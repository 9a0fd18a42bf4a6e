"""The fleet's API models: the specs users write as Kubernetes custom resources.

These pydantic models are the single source of truth: the bot worker validates its config
with them, ``tradefleet run`` loads ``examples/*.yaml`` with them, and the operator's CRD
schemas are generated from them (``make crds``). Field names are camelCase on the wire
(Kubernetes convention) and snake_case in Python; strategy parameters keep the seed
documents' names (``atr_stop_mult``, ``ema_fast``...).
"""

from tradefleet.api.errors import ManifestError
from tradefleet.api.riskpolicy import CapitalPool, CorrelationCluster, HaltAction, RiskPolicy, RiskPolicySpec
from tradefleet.api.manifest import load_manifest_file, load_manifests
from tradefleet.api.tradingbot import (
    API_GROUP,
    API_VERSION,
    CredentialsSecretRef,
    ExchangeEndpoints,
    ExecutionSpec,
    Mode,
    OnDelete,
    SizingSpec,
    StrategySpec,
    TradingBot,
    TradingBotSpec,
)

__all__ = [
    "API_GROUP",
    "API_VERSION",
    "CapitalPool",
    "CorrelationCluster",
    "CredentialsSecretRef",
    "HaltAction",
    "RiskPolicy",
    "RiskPolicySpec",
    "ExchangeEndpoints",
    "ExecutionSpec",
    "ManifestError",
    "Mode",
    "OnDelete",
    "SizingSpec",
    "StrategySpec",
    "TradingBot",
    "TradingBotSpec",
    "load_manifest_file",
    "load_manifests",
]
