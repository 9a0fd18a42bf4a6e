"""Capital-pool locks in the JetStream KV bucket ``locks`` (the seeds' ``capital:lock``).

A bot trades a capital pool only while it holds the pool's lock (RiskPolicy
``capitalPools``; the risk service blocks a check naming a pool its bot does not hold).

KV layout: key ``pool.{name}``, value ``{"v": 1, "holder": "namespace/bot", "since_ms": int,
"by": "bot" | "operator"}``. Every change is a compare-and-set on the key's revision
(``Nats-Expected-Last-Subject-Sequence``), so two bots acquiring the same free pool cannot
both get it, and a release never deletes a lock someone else took meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nats.js.errors import APIError, KeyNotFoundError, KeyWrongLastSequenceError

from tradefleet.bus import subjects
from tradefleet.bus.codec import decode, encode
from tradefleet.bus.streams import KV_LOCKS
from tradefleet.workers.risk.protocol import split_bot

POOL_PREFIX = "pool."
_WRONG_LAST = (10071, 10164)  # JetStream: wrong last subject sequence
_ATTEMPTS = 5


class LockHeld(RuntimeError):
    """The pool's lock is held by another bot (``holder``)."""

    def __init__(self, pool: str, holder: str):
        self.pool, self.holder = pool, holder
        super().__init__(f"capital pool {pool} lock is held by {holder}; it must release it "
                         "first, or an operator grants it (tradefleet risk-lock grant)")


@dataclass(frozen=True, slots=True)
class PoolLock:
    """Who holds a pool: holder ``namespace/bot`` since ``since_ms`` (UTC ms); ``revision``
    is the KV revision (for compare-and-set)."""

    pool: str
    holder: str
    since_ms: int
    by: str
    revision: int


def pool_key(pool: str) -> str:
    """``pool.{name}``; raises ValueError when ``pool`` is not a DNS-1123 label."""
    try:
        subjects.check_bot(pool)
    except ValueError:
        raise ValueError(f"pool {pool!r} must be a capital pool name (DNS-1123 label)") from None
    return POOL_PREFIX + pool


class PoolLocks:
    """Acquire, release, grant and read capital-pool locks in the ``locks`` bucket.

    ``kv`` is the nats-py KeyValue of bucket ``locks`` (:meth:`open` gets it). ``clock``
    returns UTC ms (tests may pass their own).
    """

    def __init__(self, kv: Any, clock: Callable[[], int] | None = None):
        self.kv = kv
        self._clock = clock or (lambda: time.time_ns() // 1_000_000)

    @classmethod
    async def open(cls, js: Any) -> "PoolLocks":
        """Locks on the ``locks`` bucket of JetStream context ``js`` (run ``ensure_kv`` first)."""
        return cls(await js.key_value(KV_LOCKS))

    async def holder(self, pool: str) -> PoolLock | None:
        """The current lock of ``pool``, or None when free."""
        try:
            entry = await self.kv.get(pool_key(pool))
        except KeyNotFoundError:
            return None
        body = decode(entry.value)
        return PoolLock(pool, body["holder"], int(body["since_ms"]), body.get("by", "bot"),
                        entry.revision)

    def _value(self, bot: str, by: str) -> bytes:
        return encode({"holder": bot, "since_ms": self._clock(), "by": by})

    async def acquire(self, pool: str, bot: str) -> PoolLock:
        """Take the free lock of ``pool`` for ``bot`` (``namespace/name``); re-entrant.

        Raises :class:`LockHeld` when another bot holds it, ValueError for a bad name.
        """
        split_bot(bot)
        key = pool_key(pool)
        for _ in range(_ATTEMPTS):
            try:
                await self.kv.create(key, self._value(bot, "bot"))
            except KeyWrongLastSequenceError:
                current = await self.holder(pool)
                if current is None:
                    continue  # released between our create and our read: try again
                if current.holder != bot:
                    raise LockHeld(pool, current.holder) from None
                return current
            current = await self.holder(pool)
            if current is not None and current.holder == bot:
                return current
        raise RuntimeError(f"capital pool {pool} lock kept changing hands; try again")

    async def release(self, pool: str, bot: str) -> bool:
        """Release ``bot``'s lock of ``pool``; False (nothing changed) when ``bot`` does not
        hold it. Compare-and-set: a lock granted to someone else meanwhile is kept."""
        current = await self.holder(pool)
        if current is None or current.holder != bot:
            return False
        try:
            await self.kv.delete(pool_key(pool), last=current.revision)
        except APIError as exc:
            if exc.err_code in _WRONG_LAST:
                return False
            raise
        return True

    async def grant(self, pool: str, bot: str, by: str = "operator") -> PoolLock:
        """Give the lock of ``pool`` to ``bot`` whoever holds it (an operator's override)."""
        split_bot(bot)
        key = pool_key(pool)
        for _ in range(_ATTEMPTS):
            current = await self.holder(pool)
            try:
                if current is None:
                    await self.kv.create(key, self._value(bot, by))
                else:
                    await self.kv.update(key, self._value(bot, by), last=current.revision)
            except KeyWrongLastSequenceError:
                continue
            granted = await self.holder(pool)
            if granted is not None and granted.holder == bot:
                return granted
        raise RuntimeError(f"capital pool {pool} lock kept changing hands; try again")

    async def revoke(self, pool: str) -> bool:
        """Free ``pool`` whoever holds it (an operator's override); False when already free."""
        current = await self.holder(pool)
        if current is None:
            return False
        return await self.release(pool, current.holder)
