"""exsim server: Binance USDⓈ-M futures REST + WebSocket API over the matching engine.

Start it with ``tradefleet exsim --data DIR`` or in-process::

    from tradefleet.exsim.server import ServerConfig, ServerThread
    srv = ServerThread(ServerConfig("data/binance-um", port=0, paused=True))
    base_url = srv.start()          # http://127.0.0.1:<port>
    ...
    srv.stop()

``create_app(config)`` returns the ASGI app, ``serve(config)`` runs it with uvicorn. See
README-exsim.md for the endpoints, the admin API, fault injection and the replay clock.
"""

from .app import Exsim, ServerThread, create_app, serve
from .config import DEFAULT_API_KEY, DEFAULT_API_SECRET, DEFAULT_PORT, ServerConfig
from .data import DataError, MarketData, load_market_data

__all__ = ["Exsim", "ServerThread", "create_app", "serve", "ServerConfig", "DEFAULT_API_KEY",
           "DEFAULT_API_SECRET", "DEFAULT_PORT", "DataError", "MarketData", "load_market_data",
           "ccxt_urls", "ccxt_linear_errors"]


def ccxt_urls(base_url: str) -> dict:
    """The ``urls`` override that points ``ccxt.binanceusdm`` at exsim at ``base_url``::

        ccxt.binanceusdm({"apiKey": ..., "secret": ..., "urls": ccxt_urls(base),
                          "options": {"fetchCurrencies": False}})
    """
    base = base_url.rstrip("/")
    return {"api": {
        "fapiPublic": f"{base}/fapi/v1", "fapiPublicV2": f"{base}/fapi/v2",
        "fapiPublicV3": f"{base}/fapi/v3", "fapiPrivate": f"{base}/fapi/v1",
        "fapiPrivateV2": f"{base}/fapi/v2", "fapiPrivateV3": f"{base}/fapi/v3",
    }}


def ccxt_linear_errors(exchange) -> None:
    """Give a ccxt ``binanceusdm`` pointed at exsim the exception classes it uses on
    ``fapi.binance.com``.

    ccxt picks its USDⓈ-M-only error table (``exceptions['linear']``: -2019
    InsufficientFunds, -2021 OrderImmediatelyFillable, -2022/-4164 InvalidOrder, -5022
    OrderNotFillable, ...) by the request URL's host, which an override changes; without
    this those codes raise the base ``ExchangeError`` (the code is in the message either
    way). Mutates only this client instance's table.
    """
    exact = exchange.exceptions["exact"]
    exchange.exceptions["exact"] = {**exact, **exchange.exceptions["linear"]["exact"]}
