"""API keys and Binance request signing (HMAC-SHA256 over the total params).

Source: Binance USDⓈ-M "General Info" → "SIGNED (TRADE and USER_DATA) Endpoint security":
the ``X-MBX-APIKEY`` header names the key; ``signature`` is the hex HMAC-SHA256 of
*totalParams* (the query string concatenated with the form body, signature removed) keyed
with the secret; ``timestamp`` (ms) must satisfy
``serverTime - recvWindow <= timestamp < serverTime + 1000`` with ``recvWindow`` ≤ 60000
(default 5000). Failures: -2014 / -2015 (HTTP 401), -1102 missing parameter, -1022 bad
signature, -1021 timestamp outside the window.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass

from .errors import ApiError

__all__ = ["ApiKey", "KeyStore", "split_signature", "check_timestamp"]

_KEY_FORMAT = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")
MAX_RECV_WINDOW_MS = 60_000
DEFAULT_RECV_WINDOW_MS = 5_000
MAX_AHEAD_MS = 1_000


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One key/secret pair and the engine account it trades."""

    key: str
    secret: str
    account_id: str

    def __repr__(self) -> str:  # never print the secret
        return f"ApiKey(key={self.key!r}, account_id={self.account_id!r})"


class KeyStore:
    """The API keys exsim accepts; each maps to one engine account."""

    def __init__(self, keys: list[ApiKey]) -> None:
        if not keys:
            raise ValueError("at least one API key/secret pair is required")
        self._by_key = {k.key: k for k in keys}
        self._secrets = {k.key: k.secret.encode() for k in keys}

    @property
    def keys(self) -> list[ApiKey]:
        """All keys, in the order given."""
        return list(self._by_key.values())

    def lookup(self, header_value: str | None) -> ApiKey:
        """The :class:`ApiKey` named by an ``X-MBX-APIKEY`` header value.

        Raises ApiError -2014 when the header is missing or not a key's format, -2015 when
        the key is unknown.
        """
        if not header_value or not _KEY_FORMAT.match(header_value):
            raise ApiError(-2014)
        key = self._by_key.get(header_value)
        if key is None:
            raise ApiError(-2015)
        return key

    def verify(self, key: ApiKey, payload: str, signature: str) -> None:
        """Check ``signature`` (hex) is HMAC-SHA256(secret, payload); else ApiError -1022."""
        expected = hmac.new(self._secrets[key.key], payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise ApiError(-1022)


def _strip(part_string: str) -> tuple[str, str | None]:
    """Remove the ``signature=`` component from one URL-encoded string, keeping the rest."""
    if not part_string:
        return "", None
    kept, signature = [], None
    for comp in part_string.split("&"):
        if comp.startswith("signature="):
            signature = comp[len("signature="):]
        else:
            kept.append(comp)
    return "&".join(kept), signature


def split_signature(query: str, body: str) -> tuple[str, str]:
    """Split a request into (signed payload, signature).

    The payload is *totalParams* = query string + body (Binance concatenates them with no
    separator), each with its ``signature`` component removed, bytes as received.
    Raises ApiError -1102 when no signature was sent.
    """
    q, sig_q = _strip(query)
    b, sig_b = _strip(body)
    signature = sig_b if sig_b is not None else sig_q
    if not signature:
        raise ApiError(-1102, "signature")
    return q + b, signature


def check_timestamp(params: dict[str, str], now_ms: int | None = None) -> None:
    """Validate ``timestamp`` and ``recvWindow`` against the server's wall clock (ms).

    Raises ApiError -1102 (timestamp missing or not an integer), -1130 (recvWindow not an
    integer in 1..60000) or -1021 (outside the window / more than 1 s ahead).
    """
    raw_ts = params.get("timestamp")
    try:
        ts = int(raw_ts) if raw_ts is not None else None
    except ValueError:
        ts = None
    if ts is None:
        raise ApiError(-1102, "timestamp")
    raw_rw = params.get("recvWindow")
    recv_window = DEFAULT_RECV_WINDOW_MS
    if raw_rw is not None:
        try:
            recv_window = int(raw_rw)
        except ValueError:
            raise ApiError(-1130, "recvWindow") from None
        if not 0 < recv_window <= MAX_RECV_WINDOW_MS:
            raise ApiError(-1130, "recvWindow")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if ts >= now + MAX_AHEAD_MS:
        raise ApiError(-1021, msg="Timestamp for this request was 1000ms ahead of the "
                                  "server's time.")
    if now - ts > recv_window:
        raise ApiError(-1021)
