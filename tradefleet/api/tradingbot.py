"""``TradingBot``: one bot, its strategy, sizing and execution rules (group tradefleet.io).

The spec is what a user writes in ``bot.yaml`` and ``kubectl apply``-s; the bot worker
(``tradefleet bot --config bot.yaml``) validates the same file with these models and refuses
to start on the first bad field. Parameter names follow the seed documents
(``../shared/seeds``): ``RISK_PCT_PER_TRADE`` → ``sizing.riskPctPerTrade``,
``SLIPPAGE_CAP`` (a fraction, 0.002) → ``execution.slippageCapBps`` (20 bps),
``LOSS_STREAK_LIMIT`` → ``risk.lossStreakLimit``.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

API_GROUP = "tradefleet.io"
API_VERSION = "v1alpha1"

# Binance kline intervals (GET /fapi/v1/klines `interval`).
KlineInterval = Literal[
    "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d"
]
Symbol = Annotated[
    str,
    Field(pattern=r"^[A-Z0-9][A-Z0-9_]{1,31}$",
          description="Exchange symbol id, upper-case (BTCUSDT); same rule as bus subjects."),
]
DnsLabel = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        max_length=63,
        description="A Kubernetes DNS label: lower-case letters, digits and '-'.",
    ),
]


class WireModel(BaseModel):
    """Base for spec models: camelCase on the wire, snake_case in Python, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class Mode(str, enum.Enum):
    """Where orders go: ``paper`` (exsim), ``testnet`` or ``live`` (needs RiskPolicy allowLive)."""

    PAPER = "paper"
    TESTNET = "testnet"
    LIVE = "live"


class OnDelete(str, enum.Enum):
    """What the operator's finalizer does with open positions when the bot is deleted."""

    FLATTEN = "flatten"
    LEAVE = "leave"


class PositionMode(str, enum.Enum):
    """Binance position mode: one-way (``BOTH``) or hedge (``LONG``/``SHORT`` sides)."""

    ONE_WAY = "one-way"
    HEDGE = "hedge"


class WorkingType(str, enum.Enum):
    """Price a protective stop triggers on (Binance ``workingType``)."""

    MARK_PRICE = "MARK_PRICE"
    CONTRACT_PRICE = "CONTRACT_PRICE"


def _strategy_names() -> list[str]:
    from tradefleet.workers.strategies import STRATEGIES

    return sorted(STRATEGIES)


class StrategySpec(WireModel):
    """Which strategy runs and its parameters (seed names, snake_case, e.g. ``atr_stop_mult``)."""

    name: str = Field(description="Strategy name: ema_cross, momentum, keltner_breakout, "
                      "donchian_breakout or mean_reversion.")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Strategy parameters; unknown names are refused. Defaults apply to omitted ones.",
    )

    @model_validator(mode="after")
    def _validate_params(self) -> "StrategySpec":
        from pydantic import ValidationError

        from tradefleet.workers.strategies import STRATEGIES, params_model

        if self.name not in STRATEGIES:
            raise ValueError(
                f"unknown strategy {self.name!r}; choose one of {', '.join(_strategy_names())}"
            )
        try:
            params_model(self.name).model_validate(self.params)
        except ValidationError as exc:
            bad = "; ".join(
                f"params.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise ValueError(bad) from None
        return self

    def build_params(self) -> BaseModel:
        """The strategy's frozen params model instance, defaults filled in."""
        from tradefleet.workers.strategies import params_model

        return params_model(self.name).model_validate(self.params)


class SizingSpec(WireModel):
    """Position sizing: risk per trade over stop distance, capped by notional.

    quantity = equity × riskPctPerTrade / 100 / |entry − stop|, capped at
    maxPositionNotionalUsdt / entry, rounded down to the market's step size and refused below
    its min notional (Momentum seed: ``EQUITY_USDT``, ``RISK_PCT_PER_TRADE``).
    """

    equity_usdt: float | None = Field(
        default=None, gt=0,
        description="Equity the bot sizes from, USDT. Default: the account's wallet balance.",
    )
    risk_pct_per_trade: float = Field(
        default=0.5, gt=0, le=5, description="Equity at risk per trade if the stop is hit, percent."
    )
    max_position_notional_usdt: float = Field(
        default=10_000, gt=0, description="Cap on one position's notional, USDT."
    )
    leverage: int = Field(default=3, ge=1, le=125, description="Leverage set on each symbol.")


class RiskLimitsSpec(WireModel):
    """Per-bot guards; portfolio-wide limits live in the RiskPolicy."""

    loss_streak_limit: int = Field(
        default=4, ge=1, le=100,
        description="Consecutive losing trades after which the bot pauses entries "
        "(seed LOSS_STREAK_LIMIT).",
    )
    loss_streak_cooldown_min: int = Field(
        default=240, ge=0, le=10_080,
        description="Minutes of market time (bar close times) a loss-streak halt lasts before "
        "entries resume by themselves, like freqtrade's StoplossGuard stop_duration; 0 keeps "
        "the bot halted until a resume command.",
    )
    max_open_orders: int = Field(default=10, ge=1, le=200, description="Seed MAX_OPEN_ORDERS.")


class TakeProfitTier(WireModel):
    """One take-profit tier: at ``r`` times the initial stop distance, close ``fraction``."""

    r: float = Field(gt=0, le=100, description="Target as a multiple of the stop distance (R).")
    fraction: float = Field(gt=0, le=1, description="Share of the initial quantity to close.")


class ExecutionSpec(WireModel):
    """How signals become orders (DESIGN.md, execution)."""

    slippage_cap_bps: float = Field(
        default=20, ge=0, le=1000,
        description="A market fill further than this from the reference price is rolled back "
        "(seed SLIPPAGE_CAP 0.002 = 20 bps).",
    )
    tp_tiers: list[TakeProfitTier] = Field(
        default_factory=list, max_length=5,
        description="Take-profit tiers (seed tp_tiers [[R, fraction]]): each closes its fraction "
        "of the initial quantity with a reduce-only order at entry ± R × stop distance.",
    )
    trailing: bool = Field(default=True, description="Trail the stop (only ever tightens).")
    working_type: WorkingType = Field(default=WorkingType.MARK_PRICE)
    position_mode: PositionMode = Field(default=PositionMode.ONE_WAY)
    order_timeout_ms: int = Field(default=5_000, ge=100, le=60_000,
                                  description="Seed ORDER_TIMEOUT_MS.")
    max_retries: int = Field(default=3, ge=0, le=10)

    @field_validator("tp_tiers")
    @classmethod
    def _tiers_ascending_and_within_position(cls, tiers: list[TakeProfitTier]) -> list[TakeProfitTier]:
        rs = [t.r for t in tiers]
        if rs != sorted(set(rs)):
            raise ValueError("tiers must have strictly ascending r, e.g. [{r: 1}, {r: 2}]")
        if sum(t.fraction for t in tiers) > 1 + 1e-9:
            raise ValueError("tier fractions add up to more than 1 (the whole position)")
        return tiers


class CredentialsSecretRef(WireModel):
    """Where the exchange keys are: a Kubernetes Secret, never the spec itself.

    Locally (``tradefleet run``/``bot``) the same keys come from the environment variables
    named by ``apiKeyEnv``/``apiSecretEnv``.
    """

    name: DnsLabel = Field(description="Secret name in the bot's namespace.")
    api_key_key: str = Field(default="apiKey", description="Key of the API key in the Secret.")
    api_secret_key: str = Field(default="apiSecret", description="Key of the API secret.")


class ExchangeEndpoints(WireModel):
    """Override the venue's URLs (exsim, testnet). Empty means the venue's defaults."""

    rest_url: str | None = Field(default=None, pattern=r"^https?://",
                                 description="REST base, e.g. http://exsim:8080")
    ws_url: str | None = Field(default=None, pattern=r"^wss?://",
                               description="WebSocket base, e.g. ws://exsim:8080")


def _unique(symbols: list[str]) -> list[str]:
    if len(set(symbols)) != len(symbols):
        raise ValueError("symbols must not repeat")
    return symbols


class TradingBotSpec(WireModel):
    """The TradingBot custom resource's ``spec``."""

    venue: Literal["exsim", "binanceusdm"] = Field(
        default="exsim", description="ccxt id of the venue; exsim is the bundled simulator."
    )
    symbols: Annotated[list[Symbol], AfterValidator(_unique)] = Field(
        min_length=1, max_length=20, description="Symbols traded, e.g. [BTCUSDT]."
    )
    interval: KlineInterval = Field(default="1m", description="Kline interval the strategy reads.")
    mode: Mode = Field(default=Mode.PAPER)
    strategy: StrategySpec
    sizing: SizingSpec = Field(default_factory=SizingSpec)
    risk: RiskLimitsSpec = Field(default_factory=RiskLimitsSpec)
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec)
    credentials_secret_ref: CredentialsSecretRef | None = Field(
        default=None, description="Secret with the exchange keys (required unless venue is exsim)."
    )
    endpoints: ExchangeEndpoints = Field(default_factory=ExchangeEndpoints)
    capital_pool: DnsLabel | None = Field(
        default=None,
        description="Capital pool the bot trades; it opens exposure only while holding the "
        "pool's lock (seed CAPITAL_LOCK_KEY).",
    )
    paused: bool = Field(default=False, description="Paused bots open nothing; exits still run.")
    on_delete: OnDelete = Field(default=OnDelete.FLATTEN)
    heartbeat_interval_s: int = Field(default=5, ge=1, le=300)

    @model_validator(mode="after")
    def _credentials_for_real_venues(self) -> "TradingBotSpec":
        if self.venue != "exsim" and self.credentials_secret_ref is None:
            raise ValueError(
                f"credentialsSecretRef is required for venue {self.venue!r} (mode {self.mode.value})"
            )
        if self.venue == "exsim" and self.mode is not Mode.PAPER:
            raise ValueError("venue exsim only supports mode 'paper'")
        return self


class ObjectMeta(BaseModel):
    """The part of Kubernetes ``metadata`` the fleet reads."""

    model_config = ConfigDict(extra="allow")

    name: DnsLabel
    namespace: DnsLabel = "default"
    labels: dict[str, str] = Field(default_factory=dict)


class TradingBot(BaseModel):
    """A whole TradingBot manifest: apiVersion, kind, metadata and spec."""

    model_config = ConfigDict(extra="allow")

    api_version: Literal["tradefleet.io/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["TradingBot"]
    metadata: ObjectMeta
    spec: TradingBotSpec

    @property
    def key(self) -> str:
        """``namespace/name``, the bot's identity across subjects, rows and metrics."""
        return f"{self.metadata.namespace}/{self.metadata.name}"
