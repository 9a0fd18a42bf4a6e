"""Binance USDⓈ-M string enums (as sent and returned by the REST API) and their fast ints.

The public API takes and returns Binance's strings (``"BUY"``, ``"STOP_MARKET"``); the
internal fast path uses the small ints below so the hot loop compares ints, not strings.
"""

from __future__ import annotations

# Sides: +1 buys, -1 sells (the sign a fill adds to a signed position).
BUY, SELL = 1, -1
SIDE_CODE = {"BUY": BUY, "SELL": SELL}
SIDE_NAME = {BUY: "BUY", SELL: "SELL"}

# Order types.
MARKET, LIMIT, STOP_MARKET, TAKE_PROFIT_MARKET, STOP, TAKE_PROFIT = 0, 1, 2, 3, 4, 5
ORDER_TYPE_CODE = {"MARKET": MARKET, "LIMIT": LIMIT, "STOP_MARKET": STOP_MARKET,
                   "TAKE_PROFIT_MARKET": TAKE_PROFIT_MARKET, "STOP": STOP,
                   "TAKE_PROFIT": TAKE_PROFIT}
ORDER_TYPE_NAME = {v: k for k, v in ORDER_TYPE_CODE.items()}
CONDITIONAL_TYPES = frozenset((STOP_MARKET, TAKE_PROFIT_MARKET, STOP, TAKE_PROFIT))

# Time in force.
GTC, IOC, FOK, GTX = 0, 1, 2, 3
TIF_CODE = {"GTC": GTC, "IOC": IOC, "FOK": FOK, "GTX": GTX}
TIF_NAME = {v: k for k, v in TIF_CODE.items()}

# Order status.
NEW, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED = 0, 1, 2, 3, 4
STATUS_NAME = {NEW: "NEW", PARTIALLY_FILLED: "PARTIALLY_FILLED", FILLED: "FILLED",
               CANCELED: "CANCELED", EXPIRED: "EXPIRED"}

# Position sides: BOTH in one-way mode, LONG/SHORT in hedge mode.
BOTH, LONG, SHORT = 0, 1, 2
POSITION_SIDE_CODE = {"BOTH": BOTH, "LONG": LONG, "SHORT": SHORT}
POSITION_SIDE_NAME = {v: k for k, v in POSITION_SIDE_CODE.items()}

# Trigger price source for conditional orders.
CONTRACT_PRICE, MARK_PRICE = 0, 1
WORKING_TYPE_CODE = {"CONTRACT_PRICE": CONTRACT_PRICE, "MARK_PRICE": MARK_PRICE}
WORKING_TYPE_NAME = {v: k for k, v in WORKING_TYPE_CODE.items()}

MARGIN_TYPES = ("CROSSED", "ISOLATED")

# Income types of /fapi/v1/income.
TRANSFER = "TRANSFER"
REALIZED_PNL = "REALIZED_PNL"
COMMISSION = "COMMISSION"
FUNDING_FEE = "FUNDING_FEE"
INCOME_TYPES = (TRANSFER, REALIZED_PNL, COMMISSION, FUNDING_FEE)
