"""Orders (security SIGNED): Binance USDⓈ-M "Trade" endpoints, plain and algo (conditional).

Plain orders (MARKET, LIMIT GTC/IOC/FOK/GTX) use ``/fapi/v1/order``; conditional orders
(STOP_MARKET, TAKE_PROFIT_MARKET, STOP, TAKE_PROFIT) use ``/fapi/v1/algoOrder`` as on
Binance since its Algo Service migration: sending them to ``/fapi/v1/order`` gets -4120,
and an untriggered conditional order is invisible to the plain order endpoints (-2013 /
-2011), as it is on Binance. Order ``time``/``updateTime`` are the replay clock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...engine import ExchangeError
from ...engine.enums import CONDITIONAL_TYPES, ORDER_TYPE_CODE
from ..auth import ApiKey
from ..errors import ApiError
from ..params import Params
from ..shapes import algo_order, is_algo
from .common import SIGNED, endpoint, require_symbol

if TYPE_CHECKING:
    from ...engine import Order
    from ..app import Exsim

__all__ = ["ROUTES"]

_CONDITIONAL_NAMES = {n for n, c in ORDER_TYPE_CODE.items() if c in CONDITIONAL_TYPES}
_CANCEL_ALL_MSG = "The operation of cancel all open order is done."
_ID_OR_CLIENT = "Param '{}' or '{}' must be sent, but both were empty/null!"


def _order_type(params: Params, conditional: bool) -> str:
    order_type = params.required("type").upper()
    if order_type not in ORDER_TYPE_CODE:
        raise ApiError(-1116)
    if conditional and order_type not in _CONDITIONAL_NAMES:
        raise ApiError(-1116)
    if not conditional and order_type in _CONDITIONAL_NAMES:
        raise ApiError(-4120)
    return order_type


def _side(params: Params) -> str:
    side = params.required("side").upper()
    if side not in ("BUY", "SELL"):
        raise ApiError(-1117, msg="Invalid side.")
    return side


def _maybe_reject(ex: "Exsim") -> None:
    if ex.faults.hit(ex.faults.order_reject_rate):
        raise ApiError(-2010)


def _place(ex: "Exsim", params: Params, key: ApiKey, conditional: bool) -> "Order":
    symbol = require_symbol(ex, params)
    side = _side(params)
    order_type = _order_type(params, conditional)
    stop_name = "triggerPrice" if conditional else "stopPrice"
    client_id_name = "clientAlgoId" if conditional else "newClientOrderId"
    if conditional:
        algo_type = params.required("algoType")
        if algo_type != "CONDITIONAL":
            raise ApiError(-1130, "algoType")
    kwargs = dict(
        quantity=params.decimal("quantity"),
        price=params.decimal("price"),
        time_in_force=params.optional("timeInForce"),
        stop_price=params.decimal(stop_name),
        position_side=params.optional("positionSide"),
        reduce_only=params.boolean("reduceOnly"),
        close_position=params.boolean("closePosition"),
        working_type=params.optional("workingType") or "CONTRACT_PRICE",
        price_protect=params.boolean("priceProtect"),
        new_client_order_id=params.optional(client_id_name),
    )
    resp_type = params.optional("newOrderRespType")
    if resp_type is not None and resp_type not in ("ACK", "RESULT"):
        raise ApiError(-1130, "newOrderRespType")
    _maybe_reject(ex)
    return ex.engine.place_order(key.account_id, symbol, side, order_type,
                                 time_ms=ex.replay.clock_ms, **kwargs)


def new_order(ex: "Exsim", params: Params, key: ApiKey) -> dict:
    """``POST /fapi/v1/order``: MARKET or LIMIT (GTC/IOC/FOK/GTX), reduceOnly; returns the
    order after matching (``newOrderRespType`` RESULT; ACK gets the same body)."""
    return _place(ex, params, key, conditional=False).to_binance()


def new_algo_order(ex: "Exsim", params: Params, key: ApiKey) -> dict:
    """``POST /fapi/v1/algoOrder`` (``algoType=CONDITIONAL``): STOP_MARKET,
    TAKE_PROFIT_MARKET, STOP, TAKE_PROFIT with ``triggerPrice``, ``workingType``,
    ``closePosition``, ``reduceOnly``, ``clientAlgoId``; returns the algo order."""
    return algo_order(_place(ex, params, key, conditional=True))


def _find(ex: "Exsim", params: Params, key: ApiKey, id_name: str, client_name: str) -> "Order":
    symbol = require_symbol(ex, params)
    order_id = params.integer(id_name)
    client_id = params.optional(client_name)
    if order_id is None and client_id is None:
        raise ApiError(-1102, msg=_ID_OR_CLIENT.format(id_name, client_name))
    return ex.engine.get_order(key.account_id, symbol, order_id=order_id,
                               orig_client_order_id=client_id)


def query_order(ex: "Exsim", params: Params, key: ApiKey) -> dict:
    """``GET /fapi/v1/order?symbol&(orderId|origClientOrderId)``; -2013 when unknown."""
    order = _find(ex, params, key, "orderId", "origClientOrderId")
    if is_algo(order):
        raise ApiError(-2013, msg="Order does not exist.")
    return order.to_binance()


def query_open_order(ex: "Exsim", params: Params, key: ApiKey) -> dict:
    """``GET /fapi/v1/openOrder``: like query order, but -2013 when no longer open."""
    order = _find(ex, params, key, "orderId", "origClientOrderId")
    if is_algo(order) or not order.is_open:
        raise ApiError(-2013, msg="Order does not exist.")
    return order.to_binance()


def cancel_order(ex: "Exsim", params: Params, key: ApiKey) -> dict:
    """``DELETE /fapi/v1/order?symbol&(orderId|origClientOrderId)``; -2011 when unknown."""
    try:
        order = _find(ex, params, key, "orderId", "origClientOrderId")
    except ExchangeError as e:
        if e.code == -2013:
            raise ApiError(-2011, msg="Unknown order sent.") from None
        raise
    if is_algo(order):
        raise ApiError(-2011, msg="Unknown order sent.")
    return ex.engine.cancel_order(key.account_id, order.symbol, order_id=order.order_id,
                                  time_ms=ex.replay.clock_ms).to_binance()


def open_orders(ex: "Exsim", params: Params, key: ApiKey) -> list:
    """``GET /fapi/v1/openOrders[?symbol]``: open plain (and triggered) orders."""
    symbol = require_symbol(ex, params, required=False)
    return [o.to_binance() for o in ex.engine.open_orders(key.account_id, symbol)
            if not is_algo(o)]


def all_orders(ex: "Exsim", params: Params, key: ApiKey) -> list:
    """``GET /fapi/v1/allOrders?symbol[&orderId&startTime&endTime&limit]``."""
    symbol = require_symbol(ex, params)
    orders = ex.engine.all_orders(key.account_id, symbol, order_id=params.integer("orderId"),
                                  start_time=params.integer("startTime"),
                                  end_time=params.integer("endTime"),
                                  limit=params.limit(default=500, maximum=1000))
    return [o.to_binance() for o in orders if not is_algo(o)]


def cancel_all(ex: "Exsim", params: Params, key: ApiKey) -> dict:
    """``DELETE /fapi/v1/allOpenOrders?symbol``: cancels the open plain orders."""
    symbol = require_symbol(ex, params)
    for o in ex.engine.open_orders(key.account_id, symbol):
        if not is_algo(o):
            ex.engine.cancel_order(key.account_id, symbol, order_id=o.order_id,
                                   time_ms=ex.replay.clock_ms)
    return {"code": 200, "msg": _CANCEL_ALL_MSG}


def query_algo_order(ex: "Exsim", params: Params, key: ApiKey) -> dict:
    """``GET /fapi/v1/algoOrder?(algoId|clientAlgoId)``; -2013 when unknown."""
    order = _find_algo(ex, params, key)
    return algo_order(order)


def _find_algo(ex: "Exsim", params: Params, key: ApiKey) -> "Order":
    algo_id = params.integer("algoId")
    client_id = params.optional("clientAlgoId")
    if algo_id is None and client_id is None:
        raise ApiError(-1102, msg=_ID_OR_CLIENT.format("algoId", "clientAlgoId"))
    symbol = require_symbol(ex, params, required=False)
    for sym in ([symbol] if symbol else list(ex.specs)):
        try:
            order = ex.engine.get_order(key.account_id, sym, order_id=algo_id,
                                        orig_client_order_id=client_id)
        except ExchangeError:
            continue
        if order.is_conditional:
            return order
    raise ApiError(-2013, msg="Order does not exist.")


def cancel_algo_order(ex: "Exsim", params: Params, key: ApiKey) -> dict:
    """``DELETE /fapi/v1/algoOrder?(algoId|clientAlgoId)``; -2011 unless it is untriggered."""
    try:
        order = _find_algo(ex, params, key)
    except ApiError:
        raise ApiError(-2011, msg="Unknown order sent.") from None
    if not is_algo(order) or not order.is_open:
        raise ApiError(-2011, msg="Unknown order sent.")
    ex.engine.cancel_order(key.account_id, order.symbol, order_id=order.order_id,
                           time_ms=ex.replay.clock_ms)
    return {"algoId": order.order_id, "clientAlgoId": order.client_order_id,
            "code": "200", "msg": "success"}


def open_algo_orders(ex: "Exsim", params: Params, key: ApiKey) -> list:
    """``GET /fapi/v1/openAlgoOrders[?symbol]``: untriggered conditional orders."""
    symbol = require_symbol(ex, params, required=False)
    return [algo_order(o) for o in ex.engine.open_orders(key.account_id, symbol)
            if is_algo(o)]


def all_algo_orders(ex: "Exsim", params: Params, key: ApiKey) -> list:
    """``GET /fapi/v1/allAlgoOrders?symbol[&startTime&endTime&limit]``."""
    symbol = require_symbol(ex, params)
    orders = ex.engine.all_orders(key.account_id, symbol, start_time=params.integer("startTime"),
                                  end_time=params.integer("endTime"),
                                  limit=params.limit(default=500, maximum=1000))
    return [algo_order(o) for o in orders if o.is_conditional]


def cancel_all_algo(ex: "Exsim", params: Params, key: ApiKey) -> dict:
    """``DELETE /fapi/v1/algoOpenOrders?symbol``: cancels the untriggered conditional orders."""
    symbol = require_symbol(ex, params)
    for o in ex.engine.open_orders(key.account_id, symbol):
        if is_algo(o):
            ex.engine.cancel_order(key.account_id, symbol, order_id=o.order_id,
                                   time_ms=ex.replay.clock_ms)
    return {"code": 200, "msg": _CANCEL_ALL_MSG}


ROUTES = [
    ("/fapi/v1/order", ["POST"], endpoint(SIGNED, new_order)),
    ("/fapi/v1/order", ["GET"], endpoint(SIGNED, query_order)),
    ("/fapi/v1/order", ["DELETE"], endpoint(SIGNED, cancel_order)),
    ("/fapi/v1/openOrder", ["GET"], endpoint(SIGNED, query_open_order)),
    ("/fapi/v1/openOrders", ["GET"], endpoint(SIGNED, open_orders)),
    ("/fapi/v1/allOrders", ["GET"], endpoint(SIGNED, all_orders)),
    ("/fapi/v1/allOpenOrders", ["DELETE"], endpoint(SIGNED, cancel_all)),
    ("/fapi/v1/algoOrder", ["POST"], endpoint(SIGNED, new_algo_order)),
    ("/fapi/v1/algoOrder", ["GET"], endpoint(SIGNED, query_algo_order)),
    ("/fapi/v1/algoOrder", ["DELETE"], endpoint(SIGNED, cancel_algo_order)),
    ("/fapi/v1/openAlgoOrders", ["GET"], endpoint(SIGNED, open_algo_orders)),
    ("/fapi/v1/allAlgoOrders", ["GET"], endpoint(SIGNED, all_algo_orders)),
    ("/fapi/v1/algoOpenOrders", ["DELETE"], endpoint(SIGNED, cancel_all_algo)),
]
