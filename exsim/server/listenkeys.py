"""User-data stream listenKeys (Binance "User Data Streams" → "Start/Keepalive/Close").

One active key per account: POST returns the active key (extending it) or a new one; PUT
extends it by 60 minutes; DELETE closes it. Validity is measured on the wall clock.
"""

from __future__ import annotations

import secrets
import string
import time

__all__ = ["ListenKeys", "VALIDITY_MS"]

VALIDITY_MS = 60 * 60 * 1000
_ALPHABET = string.ascii_letters + string.digits


class ListenKeys:
    """listenKey ↔ account registry with expiry times (ms, wall clock)."""

    def __init__(self) -> None:
        self._account_of: dict[str, str] = {}
        self._key_of: dict[str, str] = {}
        self._expires: dict[str, int] = {}

    @staticmethod
    def _now() -> int:
        return int(time.time() * 1000)

    def start(self, account_id: str) -> str:
        """The account's active key (extended) or a new 64-character one."""
        key = self._key_of.get(account_id)
        if key is None or self._expires[key] <= self._now():
            if key is not None:
                self.close(key)
            key = "".join(secrets.choice(_ALPHABET) for _ in range(64))
            self._key_of[account_id] = key
            self._account_of[key] = account_id
        self._expires[key] = self._now() + VALIDITY_MS
        return key

    def keepalive(self, account_id: str) -> str | None:
        """Extend the account's active key; None when it has none (Binance -1125)."""
        key = self._key_of.get(account_id)
        if key is None or self._expires[key] <= self._now():
            return None
        self._expires[key] = self._now() + VALIDITY_MS
        return key

    def close(self, key: str) -> None:
        """Invalidate ``key``."""
        account_id = self._account_of.pop(key, None)
        self._expires.pop(key, None)
        if account_id is not None and self._key_of.get(account_id) == key:
            del self._key_of[account_id]

    def close_account(self, account_id: str) -> None:
        """Invalidate the account's active key, if any."""
        key = self._key_of.get(account_id)
        if key is not None:
            self.close(key)

    def account(self, key: str) -> str | None:
        """The account a valid ``key`` belongs to, else None."""
        account_id = self._account_of.get(key)
        if account_id is None or self._expires[key] <= self._now():
            return None
        return account_id
