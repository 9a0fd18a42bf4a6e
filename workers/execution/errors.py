"""Errors of the execution layer and how ccxt exceptions are classified.

Transient (retried with backoff, see :mod:`.retry`): ccxt ``OperationFailed`` and its
subclasses — ``NetworkError``, ``RequestTimeout``, ``DDoSProtection`` (HTTP 429/418),
``ExchangeNotAvailable`` (5xx), ``InvalidNonce`` (-1021 timestamp outside recvWindow),
and Binance -1001 "Internal error" / -1007 "Timeout waiting for response from backend
server" (execution status unknown). Everything else ccxt raises is an ``ExchangeError``
(``InvalidOrder``, ``InsufficientFunds``, ``BadRequest``, ``AuthenticationError``...): final,
never retried, returned as a rejection with Binance's code and message.
"""

from __future__ import annotations

import json
import re

import ccxt.async_support as ccxt

__all__ = ["ExecutionError", "ExecutionInputError", "AccountSetupError", "ExchangeRequestError",
           "binance_error", "error_info",
           "is_transient", "is_rate_limited", "DUPLICATE_CLIENT_ID", "UNKNOWN_ORDER_CODES",
           "NO_NEED_TO_CHANGE"]

DUPLICATE_CLIENT_ID = -4116
"""Binance "ClientOrderId is duplicated": an open order already has this id."""
UNKNOWN_ORDER_CODES = frozenset({-2011, -2013})
"""-2011 "Unknown order sent." (cancel), -2013 "Order does not exist." (query)."""
NO_NEED_TO_CHANGE = frozenset({-4059, -4046})
"""Answers that mean the account already has the setting: -4059 "No need to change
position side.", -4046 "No need to change margin type."."""

_JSON = re.compile(r"\{.*\}", re.S)


class ExecutionError(Exception):
    """Base of the executor's own errors."""


class ExecutionInputError(ValueError, ExecutionError):
    """A call got a bad argument; the message names the field and the reason. Nothing was
    sent and no state changed."""


class ExchangeRequestError(ExecutionError):
    """A read or cancel the executor needed was refused for good (not a transient error),
    e.g. -2015 invalid API key or -1022 bad signature. ``code``/``message`` are Binance's;
    ``__cause__`` is the ccxt exception."""

    def __init__(self, operation: str, code: int | None, message: str) -> None:
        super().__init__(f"{operation} refused by the exchange: {code} {message}")
        self.operation = operation
        self.code = code
        self.message = message


class AccountSetupError(ExecutionError):
    """The account could not be configured (leverage, position mode) or the markets not
    loaded; ``code``/``message`` are the exchange's when it answered."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


def binance_error(exc: BaseException) -> tuple[int | None, str]:
    """Binance ``(code, msg)`` of a ccxt exception.

    The client built by :func:`~.client.build_exchange` attaches the response body to the
    exception (``binance_body``); otherwise the JSON in the exception text is used (ccxt
    puts the body there when it matched on the code). Falls back to ``(None, str(exc))``.
    """
    body = getattr(exc, "binance_body", None)
    for text in (body, str(exc)):
        if not text:
            continue
        m = _JSON.search(text)
        if not m:
            continue
        try:
            doc = json.loads(m.group(0))
        except ValueError:
            continue
        if isinstance(doc, dict) and "code" in doc:
            try:
                code = int(doc["code"])
            except (TypeError, ValueError):
                code = None
            return code, str(doc.get("msg", ""))
    return None, str(exc)


def error_info(exc: BaseException) -> tuple[int | None, str]:
    """``(code, message)`` of any error the execution layer handles: an
    :class:`ExchangeRequestError`, a retries-exhausted error (its last ccxt error), or a
    ccxt exception."""
    if isinstance(exc, ExchangeRequestError):
        return exc.code, exc.message
    last = getattr(exc, "last", None)
    if isinstance(last, BaseException):
        return binance_error(last)
    return binance_error(exc)


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying (the request may not have reached the matching
    engine, or its outcome is unknown); False for final refusals."""
    if isinstance(exc, ccxt.OperationFailed):
        return True
    if isinstance(exc, ccxt.ExchangeError):
        code, _ = binance_error(exc)
        return code in (-1001, -1007)
    return False


def is_rate_limited(exc: BaseException) -> bool:
    """HTTP 429 / 418 or -1003: the request was refused before execution."""
    return isinstance(exc, ccxt.DDoSProtection)
