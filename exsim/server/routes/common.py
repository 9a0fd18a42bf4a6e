"""Request handling shared by all Binance REST endpoints: faults, auth, params, errors.

Each endpoint is a plain function ``fn(exsim, params[, key]) -> JSON-able | Response``,
wrapped by :func:`endpoint` with its Binance security type:

* ``NONE`` — public market data;
* ``USER_STREAM`` — ``X-MBX-APIKEY`` only (listenKey endpoints);
* ``SIGNED`` — API key, ``timestamp``/``recvWindow`` and HMAC ``signature`` (TRADE,
  USER_DATA).

Errors leave the handler as Binance bodies with Binance's HTTP status; any unexpected
exception becomes ``-1000`` with HTTP 500 and is logged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Callable

from starlette.requests import Request
from starlette.responses import Response

from ...engine import ExchangeError
from ..auth import check_timestamp, split_signature
from ..errors import MESSAGES, ApiError, error_response
from ..jsonresp import json_response
from ..params import Params, parse_params

if TYPE_CHECKING:
    from ..app import Exsim

__all__ = ["endpoint", "NONE", "USER_STREAM", "SIGNED"]

log = logging.getLogger("tradefleet.exsim.http")

NONE, USER_STREAM, SIGNED = "NONE", "USER_STREAM", "SIGNED"


async def _faults(ex: "Exsim") -> Response | None:
    f = ex.faults
    if f.latency_ms:
        await asyncio.sleep(f.latency_ms / 1000)
    if f.hit(f.http_429_rate):
        return error_response(-1003, MESSAGES[-1003], 429,
                              {"Retry-After": str(f.retry_after_s)})
    if f.hit(f.http_5xx_rate):
        return error_response(-1001, MESSAGES[-1001], 503)
    return None


def endpoint(security: str, fn: Callable[..., Any]) -> Callable[[Request], Any]:
    """Wrap ``fn`` as a Starlette endpoint with Binance ``security`` handling."""

    async def handler(request: Request) -> Response:
        ex: Exsim = request.app.state.exsim
        try:
            if ex.faults.active:
                injected = await _faults(ex)
                if injected is not None:
                    return injected
            query = request.url.query
            body = (await request.body()).decode("latin-1") if request.method != "GET" else ""
            if security == NONE:
                result = fn(ex, parse_params(query, body))
            else:
                key = ex.keys.lookup(request.headers.get("x-mbx-apikey"))
                if security == SIGNED:
                    payload, signature = split_signature(query, body)
                    params = parse_params(query, body)
                    if params.get("timestamp") in (None, ""):
                        raise ApiError(-1102, "timestamp")
                    ex.keys.verify(key, payload, signature)
                    check_timestamp(params)
                else:
                    params = parse_params(query, body)
                result = fn(ex, params, key)
            if isinstance(result, Response):
                return result
            return json_response(result)
        except ApiError as e:
            return error_response(e.code, e.msg, e.status, e.headers)
        except ExchangeError as e:
            return error_response(e.code, e.msg)
        except Exception:
            log.exception("unhandled error", extra={"path": request.url.path})
            return error_response(-1000, "An unknown error occured while processing the "
                                  "request.", 500)

    handler.__name__ = fn.__name__
    handler.__doc__ = fn.__doc__
    return handler


def require_symbol(ex: "Exsim", params: Params, required: bool = True) -> str | None:
    """The ``symbol`` parameter, upper-case and replayed; -1102 if missing, -1121 if unknown."""
    raw = params.required("symbol") if required else params.optional("symbol")
    if raw is None:
        return None
    symbol = raw.upper()
    if symbol not in ex.specs:
        raise ApiError(-1121)
    return symbol
