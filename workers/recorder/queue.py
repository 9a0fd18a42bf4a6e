"""The bounded queue between the JetStream fetchers and the batch writer.

Capacity counts every message the recorder holds: reserved by a fetch in progress, queued,
or in the batch being written; it is freed only when the message is acked, dead-lettered
or given up to redelivery. A fetcher first :meth:`HeldQueue.reserve` s room and asks
JetStream for at most that many messages, so a slow or unreachable database stops the
fetching (backpressure) instead of growing memory, and the unfetched messages wait in the
stream.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Held:
    """A message the recorder holds: the nats-py ``Msg``, its stream, when it was fetched
    (monotonic s), when its ack deadline was last extended, and ``done`` once it was acked
    or handed back to JetStream (no further ack may be sent for it)."""

    msg: Any
    stream: str
    since: float = field(default_factory=time.monotonic)
    touched: float = 0.0
    done: bool = False

    def __post_init__(self) -> None:
        self.touched = self.since


class HeldQueue:
    """FIFO of :class:`Held` with a capacity shared by all fetchers (messages)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"queue capacity must be >= 1 message, got {capacity}")
        self.capacity = capacity
        self._items: deque[Held] = deque()
        self._held = 0  # reserved + queued + taken, not yet released
        self._changed = asyncio.Condition()

    @property
    def held(self) -> int:
        """Messages counted against the capacity now."""
        return self._held

    def __len__(self) -> int:
        return len(self._items)

    def queued(self) -> Iterator[Held]:
        """The queued (not yet taken) messages, oldest first."""
        return iter(tuple(self._items))

    async def reserve(self, want: int) -> int:
        """Wait until there is room, then reserve and return ``min(want, room)`` (>= 1)."""
        if want < 1:
            raise ValueError(f"reserve needs want >= 1, got {want}")
        async with self._changed:
            await self._changed.wait_for(lambda: self._held < self.capacity)
            n = min(want, self.capacity - self._held)
            self._held += n
            return n

    async def put(self, items: list[Held], reserved: int) -> None:
        """Queue ``items`` fetched under a reservation of ``reserved`` slots; the unused
        slots are freed. More items than reserved are accepted and counted (nats-py's
        ``fetch`` also returns messages a previous, timed-out pull request delivered late),
        so the count may exceed the capacity by one request's worth until they are written;
        no new room is given meanwhile."""
        async with self._changed:
            self._items.extend(items)
            self._held += len(items) - reserved
            self._changed.notify_all()

    async def take(self, max_n: int, linger_s: float, timeout_s: float | None = None) -> list[Held]:
        """Wait (at most ``timeout_s``, then return ``[]``) for a message, then up to
        ``linger_s`` more for ``max_n`` of them; return the batch, oldest first (still held
        until :meth:`release`)."""
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
        # cancellation that races with the wait ending, and the writer would never stop.
        try:
            async with asyncio.timeout(timeout_s), self._changed:
                await self._changed.wait_for(lambda: len(self._items) > 0)
        except TimeoutError:
            return []
        if len(self._items) < max_n and linger_s > 0:
            try:
                async with asyncio.timeout(linger_s), self._changed:
                    await self._changed.wait_for(lambda: len(self._items) >= max_n)
            except TimeoutError:
                pass
        n = min(max_n, len(self._items))
        return [self._items.popleft() for _ in range(n)]

    async def release(self, n: int) -> None:
        """Free ``n`` slots (messages acked, dead-lettered or left to redelivery)."""
        if n <= 0:
            return
        async with self._changed:
            self._held = max(0, self._held - n)
            self._changed.notify_all()
