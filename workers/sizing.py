"""Position sizing: risk per trade as a share of equity over the stop distance.

Formula (Momentum seed ``RISK_PCT_PER_TRADE``; Van Tharp's fixed-fractional sizing)::

    qty = equity × risk_pct / 100 / |entry − stop|
    qty = min(qty, max_position_notional / entry)
    qty = floor(qty / step) × step

and the order is refused when ``qty × entry`` is below the market's min notional or ``qty``
below its min quantity: a smaller order would be rejected by the exchange (-4164 / -1013),
and rounding it up would risk more than the user allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal


class SizingRefused(ValueError):
    """No order: the sized quantity is unusable; ``reason`` says why, with the values."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class MarketFilters:
    """The exchangeInfo filters sizing needs (Binance LOT_SIZE / MIN_NOTIONAL).

    step_size and min_qty are in base units, min_notional in USDT.
    """

    step_size: Decimal
    min_qty: Decimal
    min_notional: Decimal


def round_step(qty: Decimal, step: Decimal) -> Decimal:
    """Round ``qty`` down to a multiple of ``step`` (never up: rounding up adds risk)."""
    return (qty / step).to_integral_value(rounding=ROUND_DOWN) * step


def size_position(
    *,
    equity_usdt: Decimal,
    risk_pct: Decimal,
    entry_price: Decimal,
    stop_price: Decimal,
    max_notional_usdt: Decimal,
    filters: MarketFilters,
) -> Decimal:
    """Quantity in base units for a new position.

    Raises SizingRefused when the stop is on the wrong side or at the entry, when equity
    is not positive, or when the rounded quantity is under min quantity or min notional.
    """
    distance = abs(entry_price - stop_price)
    if equity_usdt <= 0:
        raise SizingRefused(f"equity {equity_usdt} USDT is not positive")
    if distance == 0:
        raise SizingRefused(f"stop {stop_price} equals entry {entry_price}: no stop distance")
    qty = equity_usdt * risk_pct / Decimal(100) / distance
    qty = min(qty, max_notional_usdt / entry_price)
    qty = round_step(qty, filters.step_size)
    if qty < filters.min_qty:
        raise SizingRefused(
            f"quantity {qty} is below the minimum {filters.min_qty} (risk {risk_pct}% of "
            f"{equity_usdt} USDT over a stop distance of {distance})"
        )
    if qty * entry_price < filters.min_notional:
        raise SizingRefused(
            f"notional {qty * entry_price:.2f} USDT is below the minimum {filters.min_notional} "
            f"(quantity {qty} at {entry_price}); raise riskPctPerTrade or widen the cap"
        )
    return qty
