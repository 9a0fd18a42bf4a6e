"""Command-line entry of exsim (``tradefleet exsim`` calls :func:`run`).

Logs are JSON lines on stderr. At start exsim logs where to point a client: the REST base
URL, the WebSocket URLs, the API key (never the secret) and the ccxt snippet.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time

from .app import serve
from .config import DEFAULT_API_KEY, DEFAULT_API_SECRET, ServerConfig
from .data import DataError

__all__ = ["run", "JsonFormatter", "client_hints"]

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts (ISO UTC), level, logger, msg and the ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
               + f".{int(record.msecs):03d}Z",
               "level": record.levelname.lower(), "logger": record.name,
               "msg": record.getMessage()}
        for k, v in record.__dict__.items():
            if k not in _RESERVED and not k.startswith("_"):
                out[k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True


def client_hints(base_url: str, api_key: str) -> dict:
    """Where to point a client at exsim on ``base_url`` (logged at start)."""
    ws = base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    snippet = (
        "import ccxt.async_support as ccxt\n"
        "from tradefleet.exsim.server import ccxt_urls\n"
        f"ex = ccxt.binanceusdm({{'apiKey': '{api_key}', 'secret': <secret>,\n"
        f"    'urls': ccxt_urls('{base_url}'), 'options': {{'fetchCurrencies': False}}}})"
    )
    return {"rest_base_url": f"{base_url}/fapi", "ws_raw_url": f"{ws}/ws",
            "ws_combined_url": f"{ws}/stream?streams=btcusdt@kline_1m",
            "admin_url": f"{base_url}/admin/status", "api_key": api_key, "ccxt": snippet}


def run(config: ServerConfig, log_level: str = "info") -> None:
    """Serve exsim until interrupted (Ctrl-C), logging JSON lines."""
    _configure_logging(log_level)
    log = logging.getLogger("tradefleet.exsim")
    keys = config.resolved_keys()
    default_key = keys[0].key == DEFAULT_API_KEY and keys[0].secret == DEFAULT_API_SECRET

    def announce(base_url: str) -> None:
        hints = client_hints(base_url, keys[0].key)
        hints["secret_source"] = ("default pair exsim-key/exsim-secret (README-exsim.md)"
                                  if default_key else "--api-secret / EXSIM_API_SECRET")
        hints["accounts"] = [k.account_id for k in keys]
        log.info("exsim listening", extra=hints)
        log.info("replay", extra={"data_dir": str(config.data_dir), "speed_bars_per_sec":
                                  config.speed, "paused": config.paused})

    try:
        asyncio.run(serve(config, log_level=log_level, on_started=announce))
    except KeyboardInterrupt:
        pass
    except (DataError, ValueError) as e:  # bad --data / --symbols: say what and exit 2
        log.error("exsim cannot start", extra={"reason": str(e)})
        raise SystemExit(2) from None
