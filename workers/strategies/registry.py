"""Strategy registry: the names a TradingBot's ``spec.strategy.name`` may use."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Strategy, StrategyParams
from .donchian_breakout import DonchianBreakout
from .ema_cross import EmaCross
from .keltner_breakout import KeltnerBreakout
from .mean_reversion import MeanReversion
from .momentum import Momentum

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (EmaCross, Momentum, KeltnerBreakout, DonchianBreakout, MeanReversion)
}
"""Strategy name → class; each class's ``Params`` is its frozen pydantic params model."""


class UnknownStrategyError(KeyError):
    """The name is not in :data:`STRATEGIES`; the message lists the known names."""

    def __str__(self) -> str:
        return str(self.args[0])


def _lookup(name: str) -> type[Strategy]:
    try:
        return STRATEGIES[name]
    except (KeyError, TypeError):
        raise UnknownStrategyError(
            f"unknown strategy {name!r}; choose one of {', '.join(sorted(STRATEGIES))}"
        ) from None


def params_model(name: str) -> type[StrategyParams]:
    """The params model of strategy ``name``; UnknownStrategyError for an unknown name."""
    return _lookup(name).Params


def build_strategy(name: str, symbol: str,
                   params: StrategyParams | Mapping[str, Any] | None = None) -> Strategy:
    """A new strategy ``name`` for ``symbol`` with ``params`` (validated; defaults filled in).

    Raises UnknownStrategyError, ValueError (bad symbol) or pydantic.ValidationError
    (a bad or unknown parameter, named in the error).
    """
    return _lookup(name)(symbol, params)
