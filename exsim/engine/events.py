"""Builders of Binance user-data stream payloads (``ORDER_TRADE_UPDATE``, ``ACCOUNT_UPDATE``).

Field names and meanings follow Binance "User Data Streams" for USDⓈ-M futures
(https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams).
Numbers are strings, as Binance sends them. The engine builds these only when a listener
is subscribed, so the backtester (no listener) pays nothing for them.
"""

from __future__ import annotations

from decimal import Decimal

from .enums import (STOP_MARKET, TAKE_PROFIT_MARKET, ORDER_TYPE_NAME, POSITION_SIDE_NAME,
                    SIDE_NAME, STATUS_NAME, TIF_NAME, WORKING_TYPE_NAME)
from .models import Order, Position, fmt_money

__all__ = ["order_trade_update", "account_update"]


def _dec_str(value: Decimal) -> str:
    if value == 0:
        return "0"
    return f"{value.normalize():f}"


def order_trade_update(o: Order, execution_type: str, time_ms: int, last_lots: int = 0,
                       last_price_ticks: int = 0, commission_units: int = 0, trade_id: int = 0,
                       maker: bool = False, realized_units: int = 0) -> dict:
    """``ORDER_TRADE_UPDATE`` for order ``o`` after an event of ``execution_type``
    (NEW, TRADE, CANCELED, EXPIRED). A triggered conditional order reports ``o`` as
    MARKET/LIMIT and its original type in ``ot``, as Binance does."""
    spec = o.spec
    tname = ORDER_TYPE_NAME[o.type]
    if o.triggered:
        cur_type = "MARKET" if o.type in (STOP_MARKET, TAKE_PROFIT_MARKET) else "LIMIT"
    else:
        cur_type = tname
    return {
        "e": "ORDER_TRADE_UPDATE",
        "E": time_ms,
        "T": time_ms,
        "o": {
            "s": spec.symbol,
            "c": o.client_order_id,
            "S": SIDE_NAME[o.side],
            "o": cur_type,
            "f": TIF_NAME[o.tif],
            "q": spec.format_qty(o.orig_qty),
            "p": spec.format_price(o.price),
            "ap": o._avg_str(),
            "sp": spec.format_price(o.stop_price),
            "x": execution_type,
            "X": STATUS_NAME[o.status],
            "i": o.order_id,
            "l": spec.format_qty(spec.step_size * last_lots),
            "z": spec.format_qty(o.executed_qty),
            "L": spec.format_price(spec.tick_size * last_price_ticks) if last_lots else "0",
            "N": spec.margin_asset,
            "n": fmt_money(commission_units),
            "T": time_ms,
            "t": trade_id,
            "b": "0",
            "a": "0",
            "m": maker,
            "R": o.reduce_only,
            "wt": WORKING_TYPE_NAME[o.working_type],
            "ot": tname,
            "ps": POSITION_SIDE_NAME[o.position_side],
            "cp": o.close_position,
            "rp": fmt_money(realized_units),
            "pP": o.price_protect,
            "si": 0,
            "ss": 0,
            "V": "NONE",
            "pm": "NONE",
            "gtd": 0,
        },
    }


def account_update(reason: str, time_ms: int, wallet_units: int, balance_change_units: int,
                   positions: list[tuple[Position, int, int, str]]) -> dict:
    """``ACCOUNT_UPDATE`` with reason ``m`` (ORDER, FUNDING_FEE, DEPOSIT ...).

    ``positions`` holds ``(position, unrealized_units, cum_realized_units, margin_type)``
    for the positions that changed.
    """
    return {
        "e": "ACCOUNT_UPDATE",
        "E": time_ms,
        "T": time_ms,
        "a": {
            "m": reason,
            "B": [{"a": "USDT", "wb": fmt_money(wallet_units), "cw": fmt_money(wallet_units),
                   "bc": fmt_money(balance_change_units)}],
            "P": [{
                "s": p.spec.symbol,
                "pa": p.spec.format_qty(p.position_amt),
                "ep": _dec_str(p.entry_price),
                "bep": _dec_str(p.break_even_price),
                "cr": fmt_money(cum),
                "up": fmt_money(up),
                "mt": "isolated" if mt == "ISOLATED" else "cross",
                "iw": "0",
                "ps": POSITION_SIDE_NAME[p.position_side],
            } for p, up, cum, mt in positions],
        },
    }
