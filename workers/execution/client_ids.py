"""Deterministic client order ids: the same intent always gets the same id.

Scheme (fits Binance's ``newClientOrderId`` / ``clientAlgoId`` pattern
``^[.A-Z:/a-z0-9_-]{1,36}$``, "New Order (TRADE)", USDⓈ-M futures API)::

    tf-{bot:8 hex}-{tag:12 hex}-{leg}          e.g. tf-3f9a1c02-8d41e07b5a2c-trail-3

* ``bot`` = first 8 hex of BLAKE2b(bot key ``namespace/name``): marks every order of this
  bot, so rehydration and ``close_position`` find the bot's orders on a shared account and
  leave others alone.
* ``tag`` = first 12 hex of BLAKE2b(bot key, symbol, signal id): one per position (the
  entry signal) or per close request (the exit signal); 48 bits, so two signals of one bot
  never share a tag in practice.
* ``leg`` = which order of that position: ``entry``, ``stop``, ``tp1``..``tp5``,
  ``trail-N`` / ``stop-N`` (the N-th stop of the position, trailed / resized or re-placed),
  ``exit``, ``rollback`` (slippage cap), ``stopfail`` (closed because no stop could be
  placed), ``drain``. At most 11 characters.

Because the id is a pure function of (bot, symbol, signal, leg), re-sending after a timeout
uses the same id, and a lookup by ``origClientOrderId`` / ``clientAlgoId`` tells whether the
first request already executed (see :mod:`.retry`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = ["CLIENT_ID_PATTERN", "ClientIds", "ParsedClientId", "client_order_id"]

CLIENT_ID_PATTERN = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
"""Binance's allowed client order id (USDⓈ-M "New Order": newClientOrderId)."""

_PREFIX = "tf"
_LEG = re.compile(r"^[a-z][a-z0-9]*(-[0-9]{1,5})?$")
_MAX_LEG = 11  # 36 - len("tf-xxxxxxxx-xxxxxxxxxxxx-")


def _hex(*parts: str, size: int) -> str:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\x1f")  # unit separator: ("ab","c") and ("a","bc") differ
    return h.hexdigest()[:size]


@dataclass(frozen=True, slots=True)
class ParsedClientId:
    """The parts of one of the bot's client order ids."""

    tag: str
    leg: str

    @property
    def stop_generation(self) -> int | None:
        """1 for ``stop``, N for ``trail-N`` / ``stop-N``; None for other legs."""
        if self.leg == "stop":
            return 1
        name, _, num = self.leg.partition("-")
        if name in ("trail", "stop") and num.isdigit():
            return int(num)
        return None


class ClientIds:
    """Client order ids of one bot (``bot_key`` = ``namespace/name``)."""

    def __init__(self, bot_key: str) -> None:
        if not bot_key or not isinstance(bot_key, str):
            raise ValueError(f"bot_key must be a non-empty 'namespace/name' string, got {bot_key!r}")
        self.bot_key = bot_key
        self.bot_hash = _hex(bot_key, size=8)
        self.prefix = f"{_PREFIX}-{self.bot_hash}-"

    def tag(self, symbol: str, signal_id: str) -> str:
        """12-hex tag of (bot, symbol, signal id). Raises ValueError on an empty signal id."""
        if not signal_id:
            raise ValueError("signal_id must be a non-empty string (it makes the client "
                             "order id deterministic)")
        return _hex(self.bot_key, symbol, signal_id, size=12)

    def make(self, tag: str, leg: str) -> str:
        """``tf-{bot}-{tag}-{leg}``. Raises ValueError on a malformed tag or leg."""
        if not re.fullmatch(r"[0-9a-f]{12}", tag):
            raise ValueError(f"tag must be 12 lower-case hex characters, got {tag!r}")
        if len(leg) > _MAX_LEG or not _LEG.match(leg):
            raise ValueError(f"leg must look like 'stop', 'tp1' or 'trail-12' (at most "
                             f"{_MAX_LEG} characters), got {leg!r}")
        cid = f"{self.prefix}{tag}-{leg}"
        assert CLIENT_ID_PATTERN.match(cid), cid
        return cid

    def for_signal(self, symbol: str, signal_id: str, leg: str) -> str:
        """Shortcut: ``make(tag(symbol, signal_id), leg)``."""
        return self.make(self.tag(symbol, signal_id), leg)

    def owns(self, client_order_id: str | None) -> bool:
        """True when ``client_order_id`` was made by this bot."""
        return bool(client_order_id) and client_order_id.startswith(self.prefix)

    def parse(self, client_order_id: str | None) -> ParsedClientId | None:
        """Tag and leg of one of this bot's ids; None for any other id."""
        if not self.owns(client_order_id):
            return None
        rest = client_order_id[len(self.prefix):]
        tag, sep, leg = rest.partition("-")
        if not sep or not re.fullmatch(r"[0-9a-f]{12}", tag) or not _LEG.match(leg):
            return None
        return ParsedClientId(tag, leg)


def client_order_id(bot_key: str, symbol: str, signal_id: str, leg: str) -> str:
    """The client order id of ``leg`` of the position opened (or closed) by ``signal_id``
    of ``symbol`` by bot ``bot_key`` (see the module docstring for the scheme)."""
    return ClientIds(bot_key).for_signal(symbol, signal_id, leg)
