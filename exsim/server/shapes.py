"""Binance JSON shapes the engine does not render itself.

* Conditional (algo) orders: since the 2025 Algo Service migration Binance keeps
  STOP_MARKET / TAKE_PROFIT_MARKET / STOP / TAKE_PROFIT orders out of the matching engine
  until they trigger (``/fapi/v1/algoOrder``, ``/fapi/v1/openAlgoOrders``; "New Algo
  Order", "Query Algo Order" and the ``ALGO_UPDATE`` user-data event). exsim's engine keeps
  them as ordinary orders; :func:`algo_order` renders one in the algo shape, with
  ``algoId`` = the engine's order id and, once triggered, ``actualOrderId`` the same id.
* ``GET /fapi/v3/account`` and ``/fapi/v3/positionRisk`` ("Account Information V3",
  "Position Information V3"), derived from the engine's v2 views.
* ``GET /fapi/v1/leverageBracket`` from the symbol specs (one bracket per symbol).
"""

from __future__ import annotations

from decimal import Decimal

from ..engine import Order, SymbolSpec
from ..engine.enums import CONDITIONAL_TYPES

__all__ = ["is_algo", "algo_status", "algo_order", "algo_update_event", "account_v3",
           "positions_v3", "leverage_brackets", "notional_cap"]


def is_algo(order: Order) -> bool:
    """True while a conditional order lives in the algo service (not yet triggered)."""
    return order.type in CONDITIONAL_TYPES and not order.triggered


def algo_status(order: Order) -> str:
    """Algo status: NEW / CANCELED / EXPIRED before triggering; TRIGGERED while the triggered
    order is open in the matching engine, FINISHED once it is filled or canceled there."""
    if not order.triggered:
        return {"NEW": "NEW", "PARTIALLY_FILLED": "NEW"}.get(order.status_name, order.status_name)
    return "TRIGGERED" if order.is_open else "FINISHED"


def algo_order(order: Order) -> dict:
    """The order as ``GET /fapi/v1/algoOrder`` returns it (strings for numbers)."""
    spec = order.spec
    pf, qf = spec.price_precision, spec.quantity_precision
    triggered = order.triggered
    return {
        "algoId": order.order_id,
        "clientAlgoId": order.client_order_id,
        "algoType": "CONDITIONAL",
        "orderType": order.type_name,
        "symbol": spec.symbol,
        "side": order.side_name,
        "positionSide": order.position_side_name,
        "timeInForce": order.to_binance()["timeInForce"],
        "quantity": f"{order.orig_qty:.{qf}f}",
        "algoStatus": algo_status(order),
        "actualOrderId": str(order.order_id) if triggered else "",
        "actualPrice": order.to_binance()["avgPrice"] if triggered else "0",
        "triggerPrice": f"{order.stop_price:.{pf}f}",
        "price": f"{order.price:.{pf}f}",
        "icebergQuantity": None,
        "tpTriggerPrice": "0", "tpPrice": "0", "slTriggerPrice": "0", "slPrice": "0",
        "tpOrderType": "",
        "selfTradePreventionMode": "NONE",
        "workingType": order.to_binance()["workingType"],
        "priceMatch": "NONE",
        "closePosition": order.close_position,
        "priceProtect": order.price_protect,
        "reduceOnly": order.reduce_only,
        "createTime": order.time,
        "updateTime": order.update_time,
        "triggerTime": order.update_time if triggered else 0,
        "goodTillDate": 0,
    }


def algo_update_event(order: Order, event_time: int) -> dict:
    """``ALGO_UPDATE`` user-data payload for a conditional order ("Event: Algo Order Update")."""
    a = algo_order(order)
    return {
        "e": "ALGO_UPDATE", "T": event_time, "E": event_time,
        "o": {"caid": a["clientAlgoId"], "aid": a["algoId"], "at": "CONDITIONAL",
              "o": a["orderType"], "s": a["symbol"], "S": a["side"], "ps": a["positionSide"],
              "f": a["timeInForce"], "q": a["quantity"], "X": a["algoStatus"],
              "ai": a["actualOrderId"], "ap": a["actualPrice"],
              "aq": f"{order.executed_qty:.{order.spec.quantity_precision}f}",
              "act": "MARKET" if order.triggered and order.type_name.endswith("_MARKET")
              else ("LIMIT" if order.triggered else "0"),
              "tp": a["triggerPrice"], "p": a["price"], "V": "NONE", "wt": a["workingType"],
              "pm": "NONE", "cp": a["closePosition"], "pP": a["priceProtect"],
              "R": a["reduceOnly"], "tt": a["triggerTime"], "gtd": 0},
    }


_V3_ASSET_KEYS = ("asset", "walletBalance", "unrealizedProfit", "marginBalance", "maintMargin",
                  "initialMargin", "positionInitialMargin", "openOrderInitialMargin",
                  "crossWalletBalance", "crossUnPnl", "availableBalance", "maxWithdrawAmount",
                  "updateTime")
_V3_TOTAL_KEYS = ("totalInitialMargin", "totalMaintMargin", "totalWalletBalance",
                  "totalUnrealizedProfit", "totalMarginBalance", "totalPositionInitialMargin",
                  "totalOpenOrderInitialMargin", "totalCrossWalletBalance", "totalCrossUnPnl",
                  "availableBalance", "maxWithdrawAmount")
_V3_POSITION_KEYS = ("symbol", "positionSide", "positionAmt", "unrealizedProfit",
                     "isolatedMargin", "notional", "isolatedWallet", "initialMargin",
                     "maintMargin", "updateTime")


def account_v3(v2: dict) -> dict:
    """``GET /fapi/v3/account`` from the v2 view: totals, assets, and only open positions."""
    out = {k: v2.get(k, "0") for k in _V3_TOTAL_KEYS}
    out["assets"] = [{k: a.get(k, "0") for k in _V3_ASSET_KEYS} for a in v2.get("assets", [])]
    out["positions"] = [{k: p.get(k, "0") for k in _V3_POSITION_KEYS}
                        for p in v2.get("positions", []) if Decimal(p.get("positionAmt", "0"))]
    return out


def positions_v3(v2_rows: list[dict], open_order_symbols: set[str]) -> list[dict]:
    """``GET /fapi/v3/positionRisk``: only symbols with a position or open orders, v3 fields."""
    out = []
    for p in v2_rows:
        amt = Decimal(p.get("positionAmt", "0"))
        if not amt and p.get("symbol") not in open_order_symbols:
            continue
        notional = p.get("notional", "0")
        out.append({
            "symbol": p["symbol"], "positionSide": p.get("positionSide", "BOTH"),
            "positionAmt": p.get("positionAmt", "0"), "entryPrice": p.get("entryPrice", "0"),
            "breakEvenPrice": p.get("breakEvenPrice", "0"), "markPrice": p.get("markPrice", "0"),
            "unRealizedProfit": p.get("unRealizedProfit", "0"),
            "liquidationPrice": p.get("liquidationPrice", "0"),
            "isolatedMargin": p.get("isolatedMargin", "0"), "notional": notional,
            "marginAsset": "USDT", "isolatedWallet": p.get("isolatedWallet", "0"),
            "initialMargin": p.get("initialMargin", _initial_margin(p)),
            "maintMargin": p.get("maintMargin", "0"),
            "positionInitialMargin": p.get("positionInitialMargin", _initial_margin(p)),
            "openOrderInitialMargin": p.get("openOrderInitialMargin", "0"),
            "adl": p.get("adl", 0), "bidNotional": p.get("bidNotional", "0"),
            "askNotional": p.get("askNotional", "0"), "updateTime": p.get("updateTime", 0),
        })
    return out


def _initial_margin(p: dict) -> str:
    try:
        lev = Decimal(p.get("leverage", "0"))
        return f"{abs(Decimal(p.get('notional', '0'))) / lev:.8f}" if lev else "0"
    except ArithmeticError:  # pragma: no cover - malformed engine row
        return "0"


def notional_cap(spec: SymbolSpec) -> int:
    """The engine enforces no notional cap (one bracket): report maxQty × maxPrice (USDT),
    the same ``maxNotionalValue`` ``POST /fapi/v1/leverage`` returns."""
    return int(spec.max_qty * spec.max_price)


def leverage_brackets(specs: list[SymbolSpec]) -> list[dict]:
    """``GET /fapi/v1/leverageBracket``: one bracket per symbol (the engine models only the
    first notional bracket: max leverage and maintenance margin rate of ``SymbolSpec``)."""
    return [{"symbol": s.symbol, "brackets": [{
        "bracket": 1, "initialLeverage": s.max_leverage, "notionalCap": notional_cap(s),
        "notionalFloor": 0, "maintMarginRatio": float(s.maint_margin_rate), "cum": 0.0}]}
        for s in specs]
