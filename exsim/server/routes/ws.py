"""WebSocket endpoints: market streams and user-data streams (Binance USDⓈ-M).

Paths (each also under ``/public``, ``/market`` and ``/private``, the split base URLs
current clients such as ccxt use):

* ``/ws`` and ``/ws/<stream>[/<stream>...]`` — raw payloads;
* ``/stream?streams=<stream>/<stream>...`` — combined ``{"stream", "data"}`` envelopes;
* a ``<listenKey>`` in place of a stream name, or ``?listenKey=<key>``, subscribes the
  account's user-data events (ORDER_TRADE_UPDATE, ACCOUNT_UPDATE, ALGO_UPDATE).

On an open socket, ``{"method": "SUBSCRIBE" | "UNSUBSCRIBE" | "LIST_SUBSCRIPTIONS" |
"SET_PROPERTY" | "GET_PROPERTY", "params": [...], "id": n}`` works as on Binance
("Live Subscribing/Unsubscribing to streams"). Protocol pings are answered by the server.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import orjson
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..hub import StreamClient
from ..streams import parse_stream

if TYPE_CHECKING:
    from ..app import Exsim

__all__ = ["ROUTES"]

log = logging.getLogger("tradefleet.exsim.ws")

MAX_STREAMS = 1024
_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")


class _StreamError(ValueError):
    pass


def _is_stream_name(token: str) -> bool:
    return "@" in token or token.startswith("!")


def _add(ex: "Exsim", client: StreamClient, token: str) -> None:
    """Subscribe ``client`` to a stream name or listenKey; raise _StreamError if invalid."""
    if _is_stream_name(token):
        try:
            stream = parse_stream(token, set(ex.specs))
        except ValueError as e:
            raise _StreamError(str(e)) from None
        if len(client.streams) >= MAX_STREAMS:
            raise _StreamError(f"too many streams: at most {MAX_STREAMS} per connection")
        ex.hub.subscribe(client, stream.name)
        return
    if token.isdigit():
        # ccxt.pro appends its connection number (…/ws/0); Binance ignores such a path.
        return
    account_id = ex.listen_keys.account(token)
    if account_id is None:
        raise _StreamError(f"listenKey {token[:8]}... does not exist or has expired")
    ex.hub.subscribe_user(client, token, account_id)


def _remove(ex: "Exsim", client: StreamClient, token: str) -> None:
    if _is_stream_name(token):
        try:
            token = parse_stream(token, set(ex.specs)).name
        except ValueError:
            return
    ex.hub.unsubscribe(client, token)


def _reply_error(client: StreamClient, code: int, msg: str, req_id: object) -> None:
    client.send_json({"error": {"code": code, "msg": msg}, "id": req_id})


def _handle_message(ex: "Exsim", client: StreamClient, text: str) -> None:
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        _reply_error(client, 3, f"Invalid JSON: {e}", None)
        return
    if not isinstance(msg, dict):
        _reply_error(client, 2, "Invalid request: expected a JSON object", None)
        return
    req_id = msg.get("id")
    if req_id is not None and (isinstance(req_id, bool) or not isinstance(req_id, (int, str))):
        _reply_error(client, 2, "Invalid request: request ID must be an unsigned integer "
                     "or a string", None)
        return
    method = msg.get("method")
    params = msg.get("params", [])
    if method not in _METHODS:
        _reply_error(client, 2, f"Invalid request: unknown variant {method!r}, expected one "
                     f"of {', '.join(_METHODS)}", req_id)
        return
    if not isinstance(params, list):
        _reply_error(client, 2, "Invalid request: params must be an array", req_id)
        return
    if method == "LIST_SUBSCRIPTIONS":
        client.send_json({"result": ex.hub.subscriptions(client), "id": req_id})
        return
    if method in ("SET_PROPERTY", "GET_PROPERTY"):
        if not params or params[0] != "combined":
            _reply_error(client, 0, "Unknown property", req_id)
        elif method == "GET_PROPERTY":
            client.send_json({"result": client.combined, "id": req_id})
        elif len(params) < 2 or not isinstance(params[1], bool):
            _reply_error(client, 1, "Invalid value type: expected Boolean", req_id)
        else:
            client.combined = params[1]
            client.send_json({"result": None, "id": req_id})
        return
    if not all(isinstance(p, str) for p in params):
        _reply_error(client, 2, "Invalid request: stream names must be strings", req_id)
        return
    if method == "SUBSCRIBE":
        try:
            for token in params:  # validate all first: a bad name subscribes nothing
                if _is_stream_name(token):
                    parse_stream(token, set(ex.specs))
                elif ex.listen_keys.account(token) is None:
                    raise ValueError(f"listenKey {token[:8]}... does not exist or has expired")
            for token in params:
                _add(ex, client, token)
        except (ValueError, _StreamError) as e:
            _reply_error(client, 2, f"Invalid request: {e}", req_id)
            return
    else:
        for token in params:
            _remove(ex, client, token)
    client.send_json({"result": None, "id": req_id})


async def _serve(ws: WebSocket, combined: bool, tokens: list[str]) -> None:
    ex: Exsim = ws.app.state.exsim
    listen_key = ws.query_params.get("listenKey")
    if listen_key:
        tokens = tokens + [listen_key]
    await ws.accept()
    client = StreamClient(ws, combined)
    try:
        for token in tokens:
            _add(ex, client, token)
    except _StreamError as e:
        ex.hub.remove(client)
        await ws.send_text(orjson.dumps({"error": {"code": 2, "msg": f"Invalid request: {e}"},
                                         "id": None}).decode())
        await ws.close(code=1008, reason=str(e)[:120])
        return
    ex.hub.add(client)
    sender = asyncio.get_running_loop().create_task(client.run_sender())
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None and message.get("bytes") is not None:
                text = message["bytes"].decode("utf-8", "replace")
            if text is not None:
                _handle_message(ex, client, text)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        ex.hub.remove(client)
        await client.close()
        sender.cancel()


async def ws_raw(ws: WebSocket) -> None:
    """``/ws[/<streams>]``: raw payloads."""
    path = ws.path_params.get("streams", "")
    await _serve(ws, False, [t for t in path.split("/") if t])


async def ws_combined(ws: WebSocket) -> None:
    """``/stream?streams=a/b``: combined envelopes."""
    streams = ws.query_params.get("streams", "")
    await _serve(ws, True, [t for t in streams.split("/") if t])


ROUTES = []
for _prefix in ("", "/public", "/market", "/private"):
    ROUTES += [
        WebSocketRoute(f"{_prefix}/ws", ws_raw),
        WebSocketRoute(f"{_prefix}/ws/{{streams:path}}", ws_raw),
        WebSocketRoute(f"{_prefix}/stream", ws_combined),
    ]
