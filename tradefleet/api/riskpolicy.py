"""``RiskPolicy``: the fleet-wide risk brain's rules (group tradefleet.io).

Parameter names are the TradeBot design seed's (``../shared/seeds``, §6 PortfolioGuard and
DailyGuard): ``per_symbol_cap_usdt``, ``total_cap_usdt``, ``soft_cap_pct``,
``soft_cap_grace_sec``, ``correlation_clusters``, ``daily_max_loss_usdt``,
``daily_max_drawdown_pct``, ``max_consecutive_losses``; camelCase on the wire.

Cap semantics (PortfolioGuard): exposure up to a cap is ``allow``; above the cap and up to
cap × (1 + softCapPct) is ``soft_allow`` while the excess is younger than softCapGraceSec,
``block`` after that; beyond cap × (1 + softCapPct) is always ``block``.
"""

from __future__ import annotations

import enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tradefleet.api.tradingbot import DnsLabel, ObjectMeta, Symbol, WireModel


class HaltAction(str, enum.Enum):
    """What a tripped daily guard does (seed DailyGuard ``halt``/``close_all``)."""

    HALT = "halt"
    CLOSE_ALL = "close_all"


class CorrelationCluster(WireModel):
    """Symbols that move together and share one cap (seed ``correlation_clusters``)."""

    name: DnsLabel
    symbols: list[Symbol] = Field(min_length=2)
    cap_usdt: float | None = Field(default=None, gt=0,
                                   description="Cap on the cluster's summed notional, USDT.")
    max_correlated_positions: int | None = Field(
        default=None, ge=1, description="At most this many open positions across the cluster."
    )


class CapitalPool(WireModel):
    """A slice of capital; a bot trades a pool only while it holds the pool's lock."""

    name: DnsLabel
    cap_usdt: float = Field(gt=0, description="Cap on the pool's summed notional, USDT.")


class RiskPolicySpec(WireModel):
    """The RiskPolicy custom resource's ``spec``."""

    per_symbol_cap_usdt: float = Field(default=5_000, gt=0,
                                       description="Hard cap per symbol, summed over bots, USDT.")
    total_cap_usdt: float = Field(default=15_000, gt=0,
                                  description="Hard cap on the fleet's gross notional, USDT.")
    soft_cap_pct: float = Field(default=0.0, ge=0, le=1,
                                description="Tolerated excess over a cap, fraction (0.15 = 15%).")
    soft_cap_grace_sec: int = Field(default=300, ge=0, le=86_400,
                                    description="How long the soft excess may last, seconds.")
    auto_close: bool = Field(default=True, description="Reduce back under the caps after grace.")
    correlation_clusters: list[CorrelationCluster] = Field(default_factory=list)
    daily_max_loss_usdt: float | None = Field(default=None, gt=0,
                                              description="Halt after this daily loss, USDT.")
    daily_max_drawdown_pct: float | None = Field(
        default=None, gt=0, le=100, description="Halt after this intraday drawdown from the "
        "day's equity peak, percent.")
    max_consecutive_losses: int | None = Field(default=None, ge=1, le=100,
                                               description="Halt a bot after this losing streak.")
    on_halt: HaltAction = Field(default=HaltAction.HALT)
    kill_switch: bool = Field(default=False, description="True: every bot cancels entries and "
                              "flattens; nothing new opens.")
    capital_pools: list[CapitalPool] = Field(default_factory=list)
    allow_live: bool = Field(default=False, description="Bots in mode live trade only if true.")
    reservation_ttl_ms: int = Field(default=15_000, ge=100, le=600_000,
                                    description="An approved check holds its notional this long "
                                    "unless the bot confirms or releases it.")
    check_timeout_ms: int = Field(default=500, ge=10, le=10_000,
                                  description="A bot with no answer in this time opens nothing.")

    @model_validator(mode="after")
    def _consistent(self) -> "RiskPolicySpec":
        if self.per_symbol_cap_usdt > self.total_cap_usdt:
            raise ValueError("perSymbolCapUsdt must not exceed totalCapUsdt")
        names = [c.name for c in self.correlation_clusters]
        if len(set(names)) != len(names):
            raise ValueError("correlationClusters names must be unique")
        pools = [p.name for p in self.capital_pools]
        if len(set(pools)) != len(pools):
            raise ValueError("capitalPools names must be unique")
        return self


class RiskPolicy(BaseModel):
    """A whole RiskPolicy manifest."""

    model_config = ConfigDict(extra="allow")

    api_version: Literal["tradefleet.io/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["RiskPolicy"]
    metadata: ObjectMeta
    spec: RiskPolicySpec
