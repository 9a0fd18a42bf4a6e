"""Binance USDⓈ-M futures error codes and messages, in one table.

Source: Binance "Error Codes" page of the USDⓈ-M futures API
(https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code).
The engine raises :class:`ExchangeError`; the HTTP server returns it unchanged as
``HTTP 400 {"code": code, "msg": msg}``. A raised error never leaves state changed: every
check runs before the first mutation.
"""

from __future__ import annotations

__all__ = ["ExchangeError", "ERRORS", "error"]

#: code -> (Binance name, message template). ``{}`` placeholders are filled by :func:`error`.
ERRORS: dict[int, tuple[str, str]] = {
    -1000: ("UNKNOWN", "An unknown error occured while processing the request."),
    -1100: ("ILLEGAL_CHARS", "Illegal characters found in parameter '{}'; legal range is '{}'."),
    -1102: ("MANDATORY_PARAM_EMPTY_OR_MALFORMED",
            "Mandatory parameter '{}' was not sent, was empty/null, or malformed."),
    -1106: ("PARAM_NOT_REQUIRED", "Parameter '{}' sent when not required."),
    -1111: ("BAD_PRECISION", "Precision is over the maximum defined for this asset."),
    -1115: ("INVALID_TIF", "Invalid timeInForce."),
    -1116: ("INVALID_ORDER_TYPE", "Invalid orderType."),
    -1117: ("INVALID_SIDE", "Invalid side."),
    -1121: ("BAD_SYMBOL", "Invalid symbol."),
    -1130: ("INVALID_PARAMETER", "Data sent for parameter '{}' is not valid."),
    -2010: ("NEW_ORDER_REJECTED", "NEW_ORDER_REJECTED"),
    -2011: ("CANCEL_REJECTED", "Unknown order sent."),
    -2013: ("NO_SUCH_ORDER", "Order does not exist."),
    -2019: ("MARGIN_NOT_SUFFICIEN", "Margin is insufficient."),
    -2021: ("ORDER_WOULD_IMMEDIATELY_TRIGGER", "Order would immediately trigger."),
    -2022: ("REDUCE_ONLY_REJECT", "ReduceOnly Order is rejected."),
    -2027: ("MAX_LEVERAGE_RATIO", "Exceeded the maximum allowable position at current leverage."),
    -2015: ("REJECTED_MBX_KEY", "Invalid API-key, IP, or permissions for action."),
    -2025: ("MAX_OPEN_ORDER_EXCEEDED", "Reach max open order limit."),
    -4001: ("PRICE_LESS_THAN_ZERO", "Price less than 0."),
    -4002: ("PRICE_GREATER_THAN_MAX_PRICE", "Price greater than max price."),
    -4003: ("QTY_LESS_THAN_ZERO", "Quantity less than or equal to zero."),
    -4004: ("QTY_LESS_THAN_MIN_QTY", "Quantity less than min quantity."),
    -4005: ("QTY_GREATER_THAN_MAX_QTY", "Quantity greater than max quantity."),
    -4006: ("STOP_PRICE_LESS_THAN_ZERO", "Stop price less than zero."),
    -4007: ("STOP_PRICE_GREATER_THAN_MAX_PRICE", "Stop price greater than max price."),
    -4013: ("PRICE_LESS_THAN_MIN_PRICE", "Price less than min price."),
    -4014: ("PRICE_NOT_INCREASED_BY_TICK_SIZE", "Price not increased by tick size."),
    -4015: ("INVALID_CL_ORD_ID_LEN", "Client order id is not valid."),
    -4016: ("PRICE_HIGHTER_THAN_MULTIPLIER_UP", "Price is higher than mark price multiplier cap."),
    -4023: ("QTY_NOT_INCREASED_BY_STEP_SIZE", "Qty not increased by step size."),
    -4024: ("PRICE_LOWER_THAN_MULTIPLIER_DOWN", "Price is lower than mark price multiplier floor."),
    -4028: ("INVALID_LEVERAGE", "Leverage {} is not valid"),
    -4031: ("INVALID_WORKING_TYPE", "Invalid parameter working type: {}"),
    -4045: ("MAX_STOP_ORDER_EXCEEDED", "Reach max stop order limit."),
    -4046: ("NO_NEED_TO_CHANGE_MARGIN_TYPE", "No need to change margin type."),
    -4047: ("THERE_EXISTS_OPEN_ORDERS",
            "Margin type cannot be changed if there exists open orders."),
    -4048: ("THERE_EXISTS_QUANTITY", "Margin type cannot be changed if there exists position."),
    -4059: ("NO_NEED_TO_CHANGE_POSITION_SIDE", "No need to change position side."),
    -4060: ("INVALID_POSITION_SIDE", "Invalid position side."),
    -4061: ("POSITION_SIDE_NOT_MATCH", "Order's position side does not match user's setting."),
    -4067: ("POSITION_SIDE_CHANGE_EXISTS_OPEN_ORDERS",
            "Position side cannot be changed if there exists open orders."),
    -4068: ("POSITION_SIDE_CHANGE_EXISTS_QUANTITY",
            "Position side cannot be changed if there exists position."),
    -4116: ("DUPLICATED_CLIENT_ORDER_ID", "ClientOrderId is duplicated."),
    -4130: ("EXISTING_CLOSE_POSITION_ORDER",
            "An open stop or take profit order with GTE and closePosition in the direction "
            "is existing."),
    -4136: ("INVALID_CLOSE_POSITION", "Target strategy invalid for orderType {},closePosition {}"),
    -4137: ("QUANTITY_EXISTS_WITH_CLOSE_POSITION",
            "Quantity must be zero with closePosition equals true"),
    -4164: ("MIN_NOTIONAL",
            "Order's notional must be no smaller than {} (unless you choose reduce only)."),
    -5021: ("FOK_ORDER_REJECT",
            "Due to the order could not be filled immediately, the FOK order has been rejected. "
            "The order will not be recorded in the order history"),
    -5022: ("GTX_ORDER_REJECT",
            "Due to the order could not be executed as maker, the Post Only order will be "
            "rejected. The order will not be recorded in the order history"),
}


class ExchangeError(Exception):
    """A Binance-style rejection: ``code`` (negative int) and ``msg`` (Binance's text).

    ``to_binance()`` gives the JSON body Binance returns with HTTP 400.
    """

    __slots__ = ("code", "msg")

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg

    def to_binance(self) -> dict:
        """``{"code": -2019, "msg": "Margin is insufficient."}``."""
        return {"code": self.code, "msg": self.msg}

    @property
    def name(self) -> str:
        """Binance's symbolic name of the code (``MARGIN_NOT_SUFFICIEN``), or ``UNKNOWN``."""
        return ERRORS.get(self.code, ("UNKNOWN", ""))[0]


def error(code: int, *args: object) -> ExchangeError:
    """Build the :class:`ExchangeError` for ``code`` with its template filled by ``args``."""
    template = ERRORS[code][1]
    return ExchangeError(code, template.format(*args) if args else template)
