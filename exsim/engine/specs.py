"""Symbol specifications: Binance exchangeInfo filters plus fee, leverage and margin data.

A :class:`SymbolSpec` holds the Decimal values exactly as ``GET /fapi/v1/exchangeInfo``
publishes them and derives the integer units the engine computes in:

* price in **ticks** (``price = ticks × tickSize``),
* quantity in **lots** (``qty = lots × stepSize``),
* money in **units of 1e-8 USDT** (:data:`MONEY_SCALE`); one tick × one lot is
  ``tick_lot_units`` money units, so notional, PnL and fees stay exact integers.

Default specs (:func:`default_specs`) are Binance's published values for BTCUSDT, ETHUSDT
and SOLUSDT perpetuals: the filters and precisions of ``GET /fapi/v1/exchangeInfo``
(BTCUSDT and ETHUSDT as in recorded 2024-2025 responses; SOLUSDT's tick is 0.0100 since
Binance widened it from 0.0010, which the 2025 klines' two-decimal prices confirm) and the
first bracket of ``GET /fapi/v1/leverageBracket`` (max leverage, maintenance margin rate).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

__all__ = ["MONEY_SCALE", "SymbolSpec", "default_specs", "BTCUSDT", "ETHUSDT", "SOLUSDT"]

#: Money is an integer count of 1e-8 USDT (Binance reports balances to 8 decimals).
MONEY_SCALE = 10**8
_MONEY_QUANTUM = Decimal(1) / MONEY_SCALE


def _places(value: Decimal) -> int:
    """Number of decimals of a step such as ``0.010`` -> 2 (trailing zeros ignored)."""
    exp = value.normalize().as_tuple().exponent
    return max(0, -int(exp))


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """One USDⓈ-M perpetual contract as exchangeInfo describes it.

    Prices and sizes are Decimals in USDT and base units (BTC, ETH, SOL).

    Attributes:
        symbol: exchange id, e.g. ``"BTCUSDT"``.
        base_asset, quote_asset, margin_asset: ``"BTC"``, ``"USDT"``, ``"USDT"``.
        tick_size, min_price, max_price: PRICE_FILTER (USDT).
        step_size, min_qty, max_qty: LOT_SIZE (base units), for LIMIT/conditional orders.
        market_step_size, market_min_qty, market_max_qty: MARKET_LOT_SIZE, for MARKET orders.
        min_notional: MIN_NOTIONAL ``notional`` (USDT); reduce-only orders are exempt.
        price_precision, quantity_precision: exchangeInfo ``pricePrecision`` /
            ``quantityPrecision`` (max decimals accepted before -1111).
        multiplier_up, multiplier_down, multiplier_decimal: PERCENT_PRICE filter (limit
            prices are bounded by mark × multiplier; -4016 / -4024).
        max_leverage: highest leverage of the first notional bracket (-4028 above it).
        maint_margin_rate: maintenance margin rate of the first bracket (fraction).
        trigger_protect: ``triggerProtect`` used when ``priceProtect`` is true.
        liquidation_fee, underlying_sub_type: exchangeInfo informational fields.
        max_num_orders, max_num_algo_orders: MAX_NUM_ORDERS / MAX_NUM_ALGO_ORDERS limits.
        maint_margin_percent, required_margin_percent: exchangeInfo informational fields.
    """

    symbol: str
    base_asset: str
    tick_size: Decimal
    min_price: Decimal
    max_price: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_step_size: Decimal
    market_min_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    price_precision: int
    quantity_precision: int
    max_leverage: int
    maint_margin_rate: Decimal
    multiplier_up: Decimal = Decimal("1.0500")
    multiplier_down: Decimal = Decimal("0.9500")
    multiplier_decimal: int = 4
    trigger_protect: Decimal = Decimal("0.0500")
    max_num_orders: int = 200
    max_num_algo_orders: int = 10
    maint_margin_percent: Decimal = Decimal("2.5000")
    required_margin_percent: Decimal = Decimal("5.0000")
    liquidation_fee: Decimal = Decimal("0.012500")
    underlying_sub_type: tuple[str, ...] = ("Layer-1",)
    quote_asset: str = "USDT"
    margin_asset: str = "USDT"
    onboard_date: int = 1569398400000
    # Derived integer units, filled in __post_init__.
    tick_lot_units: int = field(init=False, default=0)
    price_places: int = field(init=False, default=0)
    qty_places: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        for name in ("tick_size", "step_size", "market_step_size", "min_notional"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or value <= 0:
                raise ValueError(f"SymbolSpec {self.symbol}: {name} must be a positive Decimal, "
                                 f"got {value!r}")
        units = self.tick_size * self.step_size * MONEY_SCALE
        if units != units.to_integral_value():
            raise ValueError(f"SymbolSpec {self.symbol}: tick_size×step_size must be a "
                             f"multiple of 1e-8 USDT")
        if (self.market_step_size / self.step_size) % 1 != 0:
            raise ValueError(f"SymbolSpec {self.symbol}: market_step_size must be a "
                             f"multiple of step_size")
        if not 1 <= self.max_leverage <= 125:
            raise ValueError(f"SymbolSpec {self.symbol}: max_leverage must be in 1..125")
        if (_places(self.tick_size) > self.price_precision
                or _places(self.step_size) > self.quantity_precision):
            raise ValueError(f"SymbolSpec {self.symbol}: tick/step finer than "
                             f"pricePrecision/quantityPrecision")
        object.__setattr__(self, "tick_lot_units", int(units))
        object.__setattr__(self, "price_places", self.price_precision)
        object.__setattr__(self, "qty_places", self.quantity_precision)

    # -- conversions (boundary only; the hot path works in ints) ---------------------------
    def price_to_ticks(self, price: Decimal) -> int:
        """Exact ticks of a tick-aligned price; raises ValueError when not aligned."""
        ticks = price / self.tick_size
        if ticks != ticks.to_integral_value():
            raise ValueError(f"{self.symbol}: price {price} is not a multiple of "
                             f"tickSize {self.tick_size}")
        return int(ticks)

    def ticks_to_price(self, ticks: int) -> Decimal:
        """Price in USDT of ``ticks``."""
        return self.tick_size * ticks

    def qty_to_lots(self, qty: Decimal) -> int:
        """Exact lots of a step-aligned quantity; raises ValueError when not aligned."""
        lots = qty / self.step_size
        if lots != lots.to_integral_value():
            raise ValueError(f"{self.symbol}: quantity {qty} is not a multiple of "
                             f"stepSize {self.step_size}")
        return int(lots)

    def lots_to_qty(self, lots: int) -> Decimal:
        """Quantity in base units of ``lots``."""
        return self.step_size * lots

    def format_price(self, price: Decimal) -> str:
        """Price string with ``pricePrecision`` decimals, as Binance prints order prices."""
        return f"{price:.{self.price_precision}f}"

    def format_qty(self, qty: Decimal) -> str:
        """Quantity string with ``quantityPrecision`` decimals."""
        return f"{qty:.{self.quantity_precision}f}"

    def exchange_info(self) -> dict:
        """This symbol's ``GET /fapi/v1/exchangeInfo`` ``symbols[]`` entry (Binance strings)."""
        return {
            "symbol": self.symbol,
            "pair": self.symbol,
            "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000,
            "onboardDate": self.onboard_date,
            "status": "TRADING",
            "maintMarginPercent": str(self.maint_margin_percent),
            "requiredMarginPercent": str(self.required_margin_percent),
            "baseAsset": self.base_asset,
            "quoteAsset": self.quote_asset,
            "marginAsset": self.margin_asset,
            "pricePrecision": self.price_precision,
            "quantityPrecision": self.quantity_precision,
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "underlyingType": "COIN",
            "underlyingSubType": list(self.underlying_sub_type),
            "triggerProtect": str(self.trigger_protect),
            "liquidationFee": str(self.liquidation_fee),
            "marketTakeBound": "0.05",
            "maxMoveOrderLimit": 10000,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": str(self.min_price),
                 "maxPrice": str(self.max_price), "tickSize": str(self.tick_size)},
                {"filterType": "LOT_SIZE", "minQty": str(self.min_qty),
                 "maxQty": str(self.max_qty), "stepSize": str(self.step_size)},
                {"filterType": "MARKET_LOT_SIZE", "minQty": str(self.market_min_qty),
                 "maxQty": str(self.market_max_qty), "stepSize": str(self.market_step_size)},
                {"filterType": "MAX_NUM_ORDERS", "limit": self.max_num_orders},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": self.max_num_algo_orders},
                {"filterType": "MIN_NOTIONAL", "notional": str(self.min_notional)},
                {"filterType": "PERCENT_PRICE", "multiplierUp": str(self.multiplier_up),
                 "multiplierDown": str(self.multiplier_down),
                 "multiplierDecimal": str(self.multiplier_decimal)},
            ],
            "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                           "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
        }


D = Decimal

BTCUSDT = SymbolSpec(
    symbol="BTCUSDT", base_asset="BTC",
    tick_size=D("0.10"), min_price=D("556.80"), max_price=D("4529764"),
    step_size=D("0.001"), min_qty=D("0.001"), max_qty=D("1000"),
    market_step_size=D("0.001"), market_min_qty=D("0.001"), market_max_qty=D("120"),
    min_notional=D("100"), price_precision=2, quantity_precision=3,
    max_leverage=125, maint_margin_rate=D("0.004"), underlying_sub_type=("PoW",),
)

ETHUSDT = SymbolSpec(
    symbol="ETHUSDT", base_asset="ETH",
    tick_size=D("0.01"), min_price=D("39.86"), max_price=D("306177"),
    step_size=D("0.001"), min_qty=D("0.001"), max_qty=D("10000"),
    market_step_size=D("0.001"), market_min_qty=D("0.001"), market_max_qty=D("2000"),
    min_notional=D("20"), price_precision=2, quantity_precision=3,
    max_leverage=125, maint_margin_rate=D("0.004"),
)

SOLUSDT = SymbolSpec(
    symbol="SOLUSDT", base_asset="SOL",
    tick_size=D("0.0100"), min_price=D("0.4200"), max_price=D("6857"),
    step_size=D("1"), min_qty=D("1"), max_qty=D("1000000"),
    market_step_size=D("1"), market_min_qty=D("1"), market_max_qty=D("5000"),
    min_notional=D("5"), price_precision=4, quantity_precision=0,
    max_leverage=100, maint_margin_rate=D("0.005"), liquidation_fee=D("0.015000"),
)


def default_specs() -> dict[str, SymbolSpec]:
    """``{"BTCUSDT": ..., "ETHUSDT": ..., "SOLUSDT": ...}`` with Binance's published filters."""
    return {s.symbol: s for s in (BTCUSDT, ETHUSDT, SOLUSDT)}
