"""Binance-shaped error responses: ``{"code": <negative int>, "msg": <text>}`` + HTTP status.

Source: Binance USDⓈ-M "General Info" (HTTP return codes) and "Error Codes" pages
(https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info,
https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code).
HTTP 4XX is a malformed request (400 for most codes, 401 for API-key rejections), 429 a
rate limit, 5XX a server-side failure. The engine raises ``ExchangeError(code, msg)``;
:func:`http_status` picks the status a real client expects for that code.
"""

from __future__ import annotations

from fastapi.responses import Response

from .jsonresp import json_response

__all__ = ["ApiError", "http_status", "error_response", "MESSAGES"]

#: Codes raised by the server layer itself (auth, parameters, rate limits); the matching
#: engine owns the order/position codes. Messages are Binance's exact text.
MESSAGES: dict[int, str] = {
    -1001: "Internal error; unable to process your request. Please try again.",
    -1003: "Too many requests; current limit is 2400 requests per minute. Please use the "
           "websocket for live updates to avoid polling the API.",
    -1021: "Timestamp for this request is outside of the recvWindow.",
    -1022: "Signature for this request is not valid.",
    -1100: "Illegal characters found in parameter '{}'; legal range is '{}'.",
    -1102: "Mandatory parameter '{}' was not sent, was empty/null, or malformed.",
    -1116: "Invalid orderType.",
    -1120: "Invalid interval.",
    -1121: "Invalid symbol.",
    -1125: "This listenKey does not exist.",
    -1130: "Data sent for parameter '{}' is not valid.",
    -2010: "NEW_ORDER_REJECTED",
    -2014: "API-key format invalid.",
    -2015: "Invalid API-key, IP, or permissions for action.",
    -4120: "Order type not supported for this endpoint. Please use the Algo Order API "
           "endpoints instead.",
}

_STATUS = {-2014: 401, -2015: 401, -1003: 429, -1001: 503}


def http_status(code: int) -> int:
    """HTTP status Binance sends with error ``code``: 401, 429, 503 or (most codes) 400."""
    return _STATUS.get(code, 400)


class ApiError(Exception):
    """An error the server returns as Binance does; ``status`` defaults from the code."""

    def __init__(self, code: int, *args: object, msg: str | None = None,
                 status: int | None = None, headers: dict[str, str] | None = None) -> None:
        if msg is None:
            template = MESSAGES[code]
            msg = template.format(*args) if args else template
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status if status is not None else http_status(code)
        self.headers = headers or {}


def error_response(code: int, msg: str, status: int | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    """The HTTP response for an error: Binance's JSON body and status."""
    return json_response({"code": code, "msg": msg},
                         status if status is not None else http_status(code), headers)
