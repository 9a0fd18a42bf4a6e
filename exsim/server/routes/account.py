"""Account and user-stream endpoints: Binance USDⓈ-M "Account" and "User Data Streams".

Balances, positions and PnL are computed by the engine at the last replayed mark price.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from ...engine.enums import MARGIN_TYPES
from ..auth import ApiKey
from ..errors import ApiError
from ..params import Params
from ..shapes import account_v3, leverage_brackets, notional_cap, positions_v3
from .common import SIGNED, USER_STREAM, endpoint, require_symbol

if TYPE_CHECKING:
    from ..app import Exsim

__all__ = ["ROUTES"]

_OK = {"code": 200, "msg": "success"}


def balance(ex: "Exsim", params: Params, key: ApiKey) -> list:
    """``GET /fapi/v2/balance`` and ``/fapi/v3/balance``: the USDT wallet."""
    return ex.engine.balance(key.account_id)


def account_v2(ex: "Exsim", params: Params, key: ApiKey) -> dict:
    """``GET /fapi/v2/account``: totals, assets and a row per symbol."""
    return ex.engine.account(key.account_id)


def account_v3_view(ex: "Exsim", params: Params, key: ApiKey) -> dict:
    """``GET /fapi/v3/account``: totals, assets and the open positions (v3 fields)."""
    return account_v3(ex.engine.account(key.account_id))


def position_risk_v2(ex: "Exsim", params: Params, key: ApiKey) -> list:
    """``GET /fapi/v2/positionRisk[?symbol]``: one row per symbol (and side in hedge mode)."""
    symbol = require_symbol(ex, params, required=False)
    return ex.engine.position_risk(key.account_id, symbol)


def position_risk_v3(ex: "Exsim", params: Params, key: ApiKey) -> list:
    """``GET /fapi/v3/positionRisk[?symbol]``: only symbols with a position or open orders."""
    symbol = require_symbol(ex, params, required=False)
    with_orders = {o.symbol for o in ex.engine.open_orders(key.account_id, symbol)}
    return positions_v3(ex.engine.position_risk(key.account_id, symbol), with_orders)


def leverage_bracket(ex: "Exsim", params: Params, key: ApiKey) -> list | dict:
    """``GET /fapi/v1/leverageBracket[?symbol]``: the notional bracket of each symbol."""
    symbol = require_symbol(ex, params, required=False)
    rows = leverage_brackets([ex.specs[symbol]] if symbol else list(ex.specs.values()))
    return rows[0] if symbol else rows


def change_leverage(ex: "Exsim", params: Params, key: ApiKey) -> dict:
    """``POST /fapi/v1/leverage?symbol&leverage`` (1..max); returns leverage and cap."""
    symbol = require_symbol(ex, params)
    leverage = params.integer("leverage", required=True)
    return ex.engine.change_leverage(key.account_id, symbol, leverage)


def change_margin_type(ex: "Exsim", params: Params, key: ApiKey) -> dict:
    """``POST /fapi/v1/marginType?symbol&marginType`` (ISOLATED | CROSSED)."""
    symbol = require_symbol(ex, params)
    margin_type = params.required("marginType").upper()
    if margin_type not in MARGIN_TYPES:
        raise ApiError(-1130, "marginType")
    ex.engine.change_margin_type(key.account_id, symbol, margin_type)
    return dict(_OK)


def symbol_config(ex: "Exsim", params: Params, key: ApiKey) -> list:
    """``GET /fapi/v1/symbolConfig[?symbol]``: margin type and leverage per symbol."""
    symbol = require_symbol(ex, params, required=False)
    rows = []
    for s in ([symbol] if symbol else ex.specs):
        lev = ex.engine.leverage(key.account_id, s)
        rows.append({"symbol": s, "marginType": ex.engine.margin_type(key.account_id, s),
                     "isAutoAddMargin": "false", "leverage": lev,
                     "maxNotionalValue": str(notional_cap(ex.specs[s]))})
    return rows


def get_position_mode(ex: "Exsim", params: Params, key: ApiKey) -> dict:
    """``GET /fapi/v1/positionSide/dual`` → ``{"dualSidePosition": bool}`` (True = hedge)."""
    return {"dualSidePosition": ex.engine.position_mode(key.account_id)}


def change_position_mode(ex: "Exsim", params: Params, key: ApiKey) -> dict:
    """``POST /fapi/v1/positionSide/dual?dualSidePosition=true|false``."""
    params.required("dualSidePosition")
    ex.engine.change_position_mode(key.account_id, params.boolean("dualSidePosition"))
    return dict(_OK)


def multi_assets_margin(ex: "Exsim", params: Params, key: ApiKey) -> dict:
    """``GET /fapi/v1/multiAssetsMargin``: exsim accounts are single-asset (USDT)."""
    return {"multiAssetsMargin": False}


def commission_rate(ex: "Exsim", params: Params, key: ApiKey) -> dict:
    """``GET /fapi/v1/commissionRate?symbol``: maker/taker rates (fractions) of the engine."""
    symbol = require_symbol(ex, params)
    cfg = ex.engine_config
    return {"symbol": symbol,
            "makerCommissionRate": f"{cfg.maker_fee_bps / Decimal(10000):f}",
            "takerCommissionRate": f"{cfg.taker_fee_bps / Decimal(10000):f}"}


def user_trades(ex: "Exsim", params: Params, key: ApiKey) -> list:
    """``GET /fapi/v1/userTrades?symbol[&startTime&endTime&fromId&limit]`` (limit ≤ 1000)."""
    symbol = require_symbol(ex, params)
    trades = ex.engine.user_trades(key.account_id, symbol, start_time=params.integer("startTime"),
                                   end_time=params.integer("endTime"),
                                   from_id=params.integer("fromId"),
                                   limit=params.limit(default=500, maximum=1000))
    return [t.to_binance() for t in trades]


def income(ex: "Exsim", params: Params, key: ApiKey) -> list:
    """``GET /fapi/v1/income[?symbol&incomeType&startTime&endTime&limit]`` (limit ≤ 1000,
    default 100): TRANSFER, REALIZED_PNL, COMMISSION and FUNDING_FEE rows."""
    symbol = require_symbol(ex, params, required=False)
    income_type = params.optional("incomeType")
    if income_type is not None and not income_type.replace("_", "").isalnum():
        raise ApiError(-1130, "incomeType")
    rows = ex.engine.income(key.account_id, symbol, income_type,
                            start_time=params.integer("startTime"),
                            end_time=params.integer("endTime"),
                            limit=params.limit(default=100, maximum=1000))
    return [r.to_binance() for r in rows]


def listen_key_start(ex: "Exsim", params: Params, key: ApiKey) -> dict:
    """``POST /fapi/v1/listenKey`` → ``{"listenKey": ...}`` (the active one, extended)."""
    return {"listenKey": ex.listen_keys.start(key.account_id)}


def listen_key_keepalive(ex: "Exsim", params: Params, key: ApiKey) -> dict:
    """``PUT /fapi/v1/listenKey``: extend by 60 min; -1125 when the account has none."""
    listen_key = ex.listen_keys.keepalive(key.account_id)
    if listen_key is None:
        raise ApiError(-1125)
    return {"listenKey": listen_key}


def listen_key_close(ex: "Exsim", params: Params, key: ApiKey) -> dict:
    """``DELETE /fapi/v1/listenKey``: close the account's stream key."""
    ex.listen_keys.close_account(key.account_id)
    return {}


ROUTES = [
    ("/fapi/v2/balance", ["GET"], endpoint(SIGNED, balance)),
    ("/fapi/v3/balance", ["GET"], endpoint(SIGNED, balance)),
    ("/fapi/v2/account", ["GET"], endpoint(SIGNED, account_v2)),
    ("/fapi/v3/account", ["GET"], endpoint(SIGNED, account_v3_view)),
    ("/fapi/v2/positionRisk", ["GET"], endpoint(SIGNED, position_risk_v2)),
    ("/fapi/v3/positionRisk", ["GET"], endpoint(SIGNED, position_risk_v3)),
    ("/fapi/v1/leverageBracket", ["GET"], endpoint(SIGNED, leverage_bracket)),
    ("/fapi/v1/leverage", ["POST"], endpoint(SIGNED, change_leverage)),
    ("/fapi/v1/marginType", ["POST"], endpoint(SIGNED, change_margin_type)),
    ("/fapi/v1/symbolConfig", ["GET"], endpoint(SIGNED, symbol_config)),
    ("/fapi/v1/positionSide/dual", ["GET"], endpoint(SIGNED, get_position_mode)),
    ("/fapi/v1/positionSide/dual", ["POST"], endpoint(SIGNED, change_position_mode)),
    ("/fapi/v1/multiAssetsMargin", ["GET"], endpoint(SIGNED, multi_assets_margin)),
    ("/fapi/v1/commissionRate", ["GET"], endpoint(SIGNED, commission_rate)),
    ("/fapi/v1/userTrades", ["GET"], endpoint(SIGNED, user_trades)),
    ("/fapi/v1/income", ["GET"], endpoint(SIGNED, income)),
    ("/fapi/v1/listenKey", ["POST"], endpoint(USER_STREAM, listen_key_start)),
    ("/fapi/v1/listenKey", ["PUT"], endpoint(USER_STREAM, listen_key_keepalive)),
    ("/fapi/v1/listenKey", ["DELETE"], endpoint(USER_STREAM, listen_key_close)),
]
