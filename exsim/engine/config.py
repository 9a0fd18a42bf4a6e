"""Engine configuration: fees, slippage, fill model and the synthetic top of book.

All knobs that change fill prices live here so that exsim and the backtester can be run
with the *same* :class:`EngineConfig` (the backtester's parity test depends on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = ["EngineConfig", "FILL_IMMEDIATE", "FILL_NEXT_OPEN", "FILL_MODELS"]

#: MARKET orders fill at once at the last trade price ± ``market_slippage_bps``.
FILL_IMMEDIATE = "immediate"
#: MARKET orders submitted between bars rest (status NEW) and fill at the next bar's open
#: ± ``market_slippage_bps`` (the usual "signal on close, trade on next open" backtest rule).
FILL_NEXT_OPEN = "next_open"
FILL_MODELS = (FILL_IMMEDIATE, FILL_NEXT_OPEN)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Matching and fee settings.

    Attributes:
        maker_fee_bps: commission of a fill that rested in the book, in basis points of
            the fill notional (Binance VIP0 USDⓈ-M: 2 bps = 0.02 %).
        taker_fee_bps: commission of a fill that took liquidity (VIP0: 5 bps = 0.05 %).
        market_slippage_bps: MARKET (and marketable LIMIT) fills are this many bps worse
            than the reference price (last trade price, or next open), rounded to the tick
            in the trader's disfavour; 0 means fill exactly at the reference.
        stop_slippage_bps: triggered STOP_MARKET / TAKE_PROFIT_MARKET fills are this many bps
            worse than the trigger (or gap) price.
        fill_model: :data:`FILL_IMMEDIATE` (default) or :data:`FILL_NEXT_OPEN`.
        spread_ticks: width of the synthetic top of book in ticks (>= 1). ``bid = last −
            spread_ticks // 2`` ticks and ``ask = bid + spread_ticks`` ticks, so with the
            default 1 the last price is the bid and the ask one tick above.
        book_qty: quantity (base units, as Decimal) shown at each synthetic level by
            ``book_ticker`` / ``depth`` (informational; fills are never limited by it).
        check_percent_price: enforce the PERCENT_PRICE filter on LIMIT prices (-4016/-4024).
    """

    maker_fee_bps: Decimal = Decimal("2")
    taker_fee_bps: Decimal = Decimal("5")
    market_slippage_bps: Decimal = Decimal("0")
    stop_slippage_bps: Decimal = Decimal("0")
    fill_model: str = FILL_IMMEDIATE
    spread_ticks: int = 1
    book_qty: Decimal = Decimal("1000")
    check_percent_price: bool = True

    def __post_init__(self) -> None:
        for name in ("maker_fee_bps", "taker_fee_bps", "market_slippage_bps", "stop_slippage_bps"):
            value = Decimal(str(getattr(self, name)))
            if value < 0 and name != "maker_fee_bps":
                raise ValueError(f"EngineConfig.{name} must be >= 0 bps, got {value}")
            if not -100 < value < 10000:
                raise ValueError(f"EngineConfig.{name} out of range: {value} bps")
            object.__setattr__(self, name, value)
        if self.fill_model not in FILL_MODELS:
            raise ValueError(f"EngineConfig.fill_model must be one of {FILL_MODELS}, "
                             f"got {self.fill_model!r}")
        if not isinstance(self.spread_ticks, int) or self.spread_ticks < 1:
            raise ValueError(f"EngineConfig.spread_ticks must be an int >= 1, "
                             f"got {self.spread_ticks!r}")
