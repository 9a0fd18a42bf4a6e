"""Exchange filters of one symbol and the rounding rules the executor applies.

Read from the ``filters`` of ccxt's market ``info`` (Binance ``GET /fapi/v1/exchangeInfo``:
``PRICE_FILTER.tickSize``, ``LOT_SIZE`` / ``MARKET_LOT_SIZE`` ``stepSize``/``minQty``/
``maxQty``, ``MIN_NOTIONAL.notional``) as exact ``Decimal`` strings, not ccxt's floats.

Rounding (Decimal equivalents of ccxt ``amount_to_precision`` / ``price_to_precision``,
but with the direction chosen on purpose):

* quantities round **down** to the step: rounding up would risk more than the sizing
  allowed, and a reduce-only order larger than the position is pointless;
* stop prices round **toward the position** (a long's stop up, a short's stop down), i.e.
  the protective direction: the loss at the stop never exceeds the one the quantity was
  sized for;
* take-profit prices also round toward the entry (a long's down, a short's up), so a tier
  triggers no later than its R multiple.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, Literal

from tradefleet.workers.sizing import MarketFilters, round_step

__all__ = ["SymbolRules", "rules_from_market"]

Held = Literal["long", "short"]


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """Filters of one USDⓈ-M perpetual.

    Attributes:
        symbol: exchange id (``BTCUSDT``); ``market``: ccxt unified symbol
            (``BTC/USDT:USDT``).
        tick_size: price increment, USDT.
        step_size, min_qty, max_qty: LOT_SIZE (limit and conditional orders), base units.
        market_step_size, market_min_qty, market_max_qty: MARKET_LOT_SIZE (market orders).
        min_notional: smallest qty × price of an order that is not reduce-only, USDT.
    """

    symbol: str
    market: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_step_size: Decimal
    market_min_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal

    def sizing_filters(self) -> MarketFilters:
        """The filters :func:`tradefleet.workers.sizing.size_position` needs for a MARKET
        entry (the coarser of the two steps, the larger minimum)."""
        return MarketFilters(step_size=max(self.step_size, self.market_step_size),
                             min_qty=max(self.min_qty, self.market_min_qty),
                             min_notional=self.min_notional)

    def floor_qty(self, qty: Decimal) -> Decimal:
        """``qty`` rounded down to a multiple of both steps (base units)."""
        return round_step(Decimal(qty), max(self.step_size, self.market_step_size))

    def round_stop(self, price: Decimal, held: Held) -> Decimal:
        """A protective stop's trigger rounded to the tick toward the position: a long's
        stop (below the market) up, a short's stop (above) down."""
        return self._to_tick(price, ROUND_CEILING if held == "long" else ROUND_FLOOR)

    def round_take_profit(self, price: Decimal, held: Held) -> Decimal:
        """A take-profit trigger rounded to the tick toward the entry: a long's (above the
        market) down, a short's (below) up."""
        return self._to_tick(price, ROUND_FLOOR if held == "long" else ROUND_CEILING)

    def _to_tick(self, price: Decimal, rounding: str) -> Decimal:
        price = Decimal(price)
        if not price > 0:
            raise ValueError(f"{self.symbol}: price must be > 0 USDT, got {price}")
        ticks = (price / self.tick_size).to_integral_value(rounding=rounding)
        return max(ticks, 1) * self.tick_size

    def qty_str(self, qty: Decimal) -> str:
        """``qty`` as the plain decimal string sent to the exchange (no exponent)."""
        return _plain(round_step(Decimal(qty), self.step_size))

    def price_str(self, price: Decimal) -> str:
        """``price`` as a plain decimal string (already tick-aligned by the caller)."""
        return _plain(Decimal(price))


def _plain(d: Decimal) -> str:
    s = format(d.normalize(), "f")
    return s if s != "-0" else "0"


def _filters(info: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f.get("filterType"): f for f in info.get("filters", []) if isinstance(f, dict)}


def rules_from_market(market: dict[str, Any]) -> SymbolRules:
    """:class:`SymbolRules` from one ccxt market (``exchange.markets[unified]``).

    Raises ValueError naming the symbol and the missing filter when exchangeInfo lacks
    PRICE_FILTER or LOT_SIZE (the executor cannot round without them).
    """
    info = market.get("info") or {}
    symbol = info.get("symbol") or market.get("id")
    f = _filters(info)
    try:
        tick = Decimal(f["PRICE_FILTER"]["tickSize"])
        lot = f["LOT_SIZE"]
    except KeyError as exc:
        raise ValueError(f"{symbol}: exchangeInfo has no {exc.args[0]} filter; cannot round "
                         f"orders") from None
    mlot = f.get("MARKET_LOT_SIZE", lot)
    notional = f.get("MIN_NOTIONAL", {})
    min_notional = Decimal(str(notional.get("notional", notional.get("minNotional", "0"))))
    step = Decimal(lot["stepSize"])
    mstep = Decimal(mlot.get("stepSize", lot["stepSize"]))
    return SymbolRules(
        symbol=symbol,
        market=market["symbol"],
        tick_size=tick,
        step_size=step,
        min_qty=Decimal(lot["minQty"]),
        max_qty=Decimal(lot["maxQty"]),
        market_step_size=mstep if mstep > 0 else step,
        market_min_qty=Decimal(mlot.get("minQty", lot["minQty"])),
        market_max_qty=Decimal(mlot.get("maxQty", lot["maxQty"])),
        min_notional=min_notional,
    )

