"""Structured JSON logs for every component, with secrets masked.

One JSON object per line on stderr::

    {"ts": "2026-01-05T08:00:00.123Z", "level": "INFO", "logger": "tradefleet.workers.bot",
     "msg": "order placed", "component": "bot", "trace_id": "4bf9...", "span_id": "00f0...",
     "symbol": "BTCUSDT", "client_order_id": "tf-..."}

``trace_id``/``span_id`` come from the OpenTelemetry span current when the record was
emitted, so a log line can be found from a trace and back. Fields passed with
``extra={...}`` are added as they are (Decimals and other objects via ``str``).

Secrets never reach the output (DESIGN.md, Cross-cutting: "never in a log"): the
:class:`RedactingFilter` masks values of secret-named fields (``api_key``, ``secret``,
``signature``, ``password``, ``token``, ``passphrase``, ``authorization``, ``listenKey``...)
anywhere in ``extra`` (nested too), ``key=value`` / ``key: value`` pairs and URL passwords
in messages and tracebacks (ccxt errors quote full signed URLs), ``Bearer`` tokens, and
any run of 64+ letters/digits, the shape of Binance API keys, secrets and HMAC-SHA256
signatures (a sha256 hex digest is masked too: log a shorter prefix of hashes).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

import orjson

from tradefleet.telemetry.tracing import current_ids

MASK = "***"

_SECRET_KEY = re.compile(
    r"(api[_-]?key|apikey|secret|signature|passw(or)?d|passwd|pwd|passphrase|token|"
    r"authorization|credential|private[_-]?key|listen[_-]?key|cookie|dsn)",
    re.IGNORECASE,
)
_TEXT_RULES: list[tuple[re.Pattern[str], str]] = [
    # scheme://user:password@host -> scheme://user:***@host
    (re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s:@]*:)([^@\s/]+)(@)"), r"\1" + MASK + r"\3"),
    # key=value, key: value, "key": "value" (query strings, logfmt, JSON, headers)
    (
        re.compile(
            r"""((?:api[_-]?key|apikey|secret|signature|passw(?:or)?d|passwd|pwd|passphrase|"""
            r"""token|listen[_-]?key|authorization|private[_-]?key)["']?\s*[=:]\s*["']?)"""
            r"""(?!\*\*\*)([^"'&\s,;}\]]+)""",
            re.IGNORECASE,
        ),
        r"\1" + MASK,
    ),
    (re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/\-]+=*", re.IGNORECASE), r"\1" + MASK),
    # Binance API keys / secrets / HMAC-SHA256 hex signatures are 64 characters.
    (re.compile(r"\b[A-Za-z0-9]{64,}\b"), MASK),
]

_RESERVED = set(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "component",
    "trace_id",
    "span_id",
}


def redact_text(text: str) -> str:
    """Mask secret-looking substrings of ``text`` (see module docstring for the rules)."""
    for pattern, repl in _TEXT_RULES:
        text = pattern.sub(repl, text)
    return text


def redact(value: Any, key: str | None = None) -> Any:
    """Return ``value`` with secrets masked: the whole value when ``key`` names a secret,
    secret-looking substrings of strings, recursively through mappings and sequences."""
    if key is not None and _SECRET_KEY.search(key) and value not in (None, "", MASK):
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact(v) for v in value]
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return redact_text(str(value))


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message, arguments, extras and traceback, in place.

    Attach to handlers (``setup_logging`` does) so records from every library are covered.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_text(record.getMessage())
        record.args = None
        for k, v in list(vars(record).items()):
            if k not in _RESERVED:
                setattr(record, k, redact(v, k))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


class TraceContextFilter(logging.Filter):
    """Stamps ``trace_id``/``span_id`` of the current OpenTelemetry span on the record at
    emit time (before any queue or thread hop)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "trace_id"):
            ids = current_ids()
            record.trace_id, record.span_id = ids if ids else (None, None)
        return True


def _ts(created: float) -> str:
    ms = int(created * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{ms:03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts (UTC, RFC 3339, ms), level, logger, msg, component,
    trace_id/span_id when in a span, extras, and ``exc`` with the traceback."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _ts(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "component": self.component,
        }
        trace_id = getattr(record, "trace_id", None)
        if trace_id is None and not hasattr(record, "trace_id"):
            ids = current_ids()
            trace_id, span_id = ids if ids else (None, None)
        else:
            span_id = getattr(record, "span_id", None)
        if trace_id:
            out["trace_id"], out["span_id"] = trace_id, span_id
        for k, v in vars(record).items():
            if k not in _RESERVED and k not in out:
                out[k] = v
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return orjson.dumps(out, default=str).decode()


def setup_logging(
    component: str, level: str | int | None = None, *, stream: TextIO | None = None
) -> logging.Handler:
    """Route all logging to one JSON handler on the root logger; return the handler.

    Parameters
    ----------
    component : str
        Written as ``component`` on every line (``bot``, ``risk``, ``marketdata`` ...).
    level : str | int, optional
        ``DEBUG``/``INFO``/``WARNING``/``ERROR`` or a number; defaults to ``LOG_LEVEL`` (the
        seeds' variable) or ``INFO``. Raises ``ValueError`` naming an unknown level.
    stream : TextIO, optional
        Where lines go (default ``sys.stderr``).

    Calling it again replaces the handler it installed before (idempotent); handlers
    added by others are left alone.
    """
    raw = level if level is not None else os.environ.get("LOG_LEVEL", "INFO")
    if isinstance(raw, str):
        resolved = logging.getLevelName(raw.strip().upper())
        if not isinstance(resolved, int):
            raise ValueError(
                f"log level {raw!r} is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL"
            )
    else:
        resolved = int(raw)
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_tradefleet", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._tradefleet = True  # type: ignore[attr-defined]
    handler.addFilter(TraceContextFilter())
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter(component))
    root.addHandler(handler)
    root.setLevel(resolved)
    logging.captureWarnings(True)
    return handler
