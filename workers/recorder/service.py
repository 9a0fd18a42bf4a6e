"""The recorder: JetStream (``md.>``, ``fleet.>``, ``risk.events``) -> PostgreSQL/TimescaleDB.

Data path, top to bottom::

    _fetch_loop (one per stream): reserve room in the HeldQueue, pull at most that many
        messages from the durable consumer, queue them
    _write_loop: take a batch (batch_size, or what arrived within flush_ms)
        -> rows.records(msg) per message; a message that cannot be decoded is poison:
           dead-lettered to dlq.{subject} with its error, acked once the DLQ has it
        -> BatchWriter.write: COPY + INSERT ... ON CONFLICT DO NOTHING, one transaction
           - committed: ack every message of the batch, free their slots
           - a row refused by the database (data/integrity error): split the batch in
             halves until the message is found; it is dead-lettered, the rest commit
           - database unreachable or failing: keep the batch, reconnect with backoff and
             retry it; fetching stops once the queue is full; held messages get
             in-progress acks so JetStream does not redeliver them meanwhile

Guarantees: a message is acked only after its rows are committed (or it is in the DLQ),
so a crash at any point loses nothing: unacked messages are redelivered after ``ack_wait``
and rows already stored are skipped by their natural keys, so nothing is duplicated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any

import nats.errors
import psycopg
from prometheus_client import CollectorRegistry

from tradefleet.bus.codec import dead_letter_msg
from tradefleet.bus.connect import connect
from tradefleet.bus.streams import ensure_streams
from tradefleet.telemetry.metrics import Health, new_registry
from tradefleet.workers.recorder.config import RecorderConfig
from tradefleet.workers.recorder.consumer import ConsumerSpec, consumer_specs, ensure_consumer
from tradefleet.workers.recorder.metrics import RecorderMetrics
from tradefleet.workers.recorder.queue import Held, HeldQueue
from tradefleet.workers.recorder.rows import Record, batch_rows, records
from tradefleet.workers.recorder.writer import BatchWriter, is_poison

log = logging.getLogger(__name__)

_Item = tuple[Held, list[Record]]

IDLE_FETCH = 100
"""Pull request size on a stream that had nothing waiting at the last fetch (messages)."""


class Recorder:
    """One recorder process's work. ``await run()`` until :meth:`stop`.

    Parameters
    ----------
    config : RecorderConfig
    nc : nats client, optional
        A connected client to use (not closed by the recorder); by default the recorder
        connects to ``config.nats_url`` / ``NATS_URL`` and closes its connection at the end.
    registry, health :
        Prometheus registry and probes to report on (fresh ones by default).

    Cancelling the task running :meth:`run` is a crash: nothing more is committed or
    acked, connections are closed, held messages are redelivered to the next recorder.
    """

    def __init__(self, config: RecorderConfig, *, nc: Any = None,
                 registry: CollectorRegistry | None = None, health: Health | None = None):
        self.config = config
        self.registry = registry or new_registry(process=False)
        self.health = health or Health()
        self.metrics = RecorderMetrics(self.registry)
        self.writer = BatchWriter(config.resolved_database_url())
        self.queue = HeldQueue(config.capacity)
        self.specs: tuple[ConsumerSpec, ...] = consumer_specs(config.durable_prefix)
        self._nc = nc
        self._own_nc = nc is None
        self.js: Any = None
        self._inflight: list[Held] = []
        self._stopping = asyncio.Event()
        self._fetchers_done = asyncio.Event()
        self._stop_deadline: float | None = None
        self._db_down_since: float | None = None
        self._rate: deque[tuple[float, int]] = deque()
        self.metrics.queue_capacity.set(config.capacity)
        self.health.live.add_check("writer", self._writer_check)

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, migrate, bind the consumers, then record until :meth:`stop`.

        Waits (with backoff, logging what to check) for PostgreSQL when it is down at
        start. Raises on NATS errors at start (no streams, refused consumer config).
        """
        try:
            if self._nc is None:
                self._nc = await connect(self.config.nats_url, name="recorder")
            self.js = self._nc.jetstream()
            await ensure_streams(self.js, self.config.bus)
            await self._connect_db()
            subs = [await ensure_consumer(self.js, spec, ack_wait_s=self.config.ack_wait_s,
                                          max_ack_pending=self.config.capacity * 4)
                    for spec in self.specs]
            self.health.ready.ok("recording")
            async with asyncio.TaskGroup() as tg:
                fetchers = [tg.create_task(self._fetch_loop(spec, sub), name=f"fetch:{spec.stream}")
                            for spec, sub in zip(self.specs, subs)]
                tg.create_task(self._keep_alive_loop(), name="recorder:keep-alive")
                self._writer_task = tg.create_task(self._write_loop(), name="recorder:write")
                await asyncio.gather(*fetchers)
                self._fetchers_done.set()
                await self._writer_task
                raise _Stopped
        except* _Stopped:
            pass
        finally:
            self.health.ready.fail("stopped")
            await self.writer.close()
            if self._own_nc and self._nc is not None:
                with contextlib.suppress(Exception):
                    await self._nc.close()

    async def stop(self) -> None:
        """Graceful stop: no new fetches; commit and ack what is held (for at most
        ``stop_grace_s``; anything left is redelivered later), then :meth:`run` returns."""
        if not self._stopping.is_set():
            log.info("recorder stopping", extra={"held": self.queue.held})
            self._stop_deadline = time.monotonic() + self.config.stop_grace_s
            self._stopping.set()

    def _writer_check(self) -> str | None:
        task = getattr(self, "_writer_task", None)
        if task is not None and task.done() and not self._stopping.is_set():
            return "the batch writer stopped; restart the recorder"
        return None

    # -- fetching -------------------------------------------------------------------------

    async def _fetch_loop(self, spec: ConsumerSpec, sub: Any) -> None:
        """Pull from one durable consumer while there is room in the queue.

        A full pull request (``fetch_batch``) is only made while the stream has messages
        waiting; an idle stream is polled with a small one, so a request waiting on it
        does not keep queue room from a busy stream."""
        delay = self.config.backoff_min_s
        busy = False  # the first request is small; a backlog makes the next one full
        idle_batch = min(self.config.fetch_batch, IDLE_FETCH)
        while not self._stopping.is_set():
            _raise_if_cancelling()
            n = await self.queue.reserve(self.config.fetch_batch if busy else idle_batch)
            msgs: list[Any] = []
            try:
                if not self._stopping.is_set():
                    msgs = await sub.fetch(n, timeout=self.config.fetch_timeout_s)
                delay = self.config.backoff_min_s
            except TimeoutError:  # nats.errors.TimeoutError or asyncio's: an idle stream
                pass
            except (nats.errors.Error, OSError) as exc:
                if _cancelling():  # nats-py turns a cancel into ConnectionClosedError
                    await self.queue.put([], n)
                    raise asyncio.CancelledError from exc
                log.warning("fetch from %s failed: %s %s; retrying in %.1fs (NATS reconnects "
                            "on its own; check the NATS server if this repeats)", spec.stream,
                            type(exc).__name__, exc, delay, extra={"stream": spec.stream})
                await self.queue.put([], n)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.backoff_max_s)
                continue
            except BaseException:
                await self.queue.put([], n)
                raise
            await self.queue.put([Held(m, spec.stream) for m in msgs], n)
            busy = len(msgs) >= n
            if msgs:
                self.metrics.messages.labels(spec.stream).inc(len(msgs))
                self.metrics.queue_depth.set(self.queue.held)
                with contextlib.suppress(Exception):
                    pending = msgs[-1].metadata.num_pending
                    self.metrics.pending.labels(spec.stream).set(pending)
                    busy = busy or pending > 0
            else:
                self.metrics.pending.labels(spec.stream).set(0)

    async def _keep_alive_loop(self) -> None:
        """Extend the ack deadline of messages held longer than a third of ``ack_wait``
        (a slow or unreachable database), so JetStream does not redeliver them to another
        recorder meanwhile."""
        every = self.config.ack_wait_s / 3
        while True:
            await asyncio.sleep(min(every, 5.0))
            now = time.monotonic()
            for h in [*self._inflight, *self.queue.queued()]:
                if now - h.touched >= every:
                    try:
                        await h.msg.in_progress()
                        h.touched = now
                    except Exception as exc:  # noqa: BLE001 - NATS down: redelivery covers it
                        log.debug("in-progress ack failed: %s", exc)
                        break

    # -- writing --------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        linger = self.config.flush_ms / 1000
        while True:
            _raise_if_cancelling()
            if self._stopping.is_set() and self._fetchers_done.is_set() and not len(self.queue):
                return
            batch = await self.queue.take(self.config.batch_size, linger, timeout_s=0.25)
            if not batch:
                continue
            self._inflight = batch
            try:
                await self._process(batch)
            finally:
                self._inflight = []
                self.metrics.queue_depth.set(self.queue.held)

    async def _process(self, batch: list[Held]) -> None:
        """Decode, dead-letter poison, commit the rest, ack; frees the batch's slots."""
        items: list[_Item] = []
        poison: list[tuple[Held, BaseException]] = []
        for h in batch:
            try:
                items.append((h, records(h.msg)))
            except Exception as exc:  # noqa: BLE001 - any undecodable message is poison
                poison.append((h, exc))
        try:
            if poison:
                await self._dead_letter(poison, "decode")
            if items:
                await self._commit(items)
        finally:
            await self.queue.release(len(batch))

    async def _commit(self, items: list[_Item]) -> None:
        """Write ``items`` until committed; on database failures keep them and retry."""
        delay = self.config.backoff_min_s
        pending = items
        while pending:
            try:
                if not self.writer.connected:
                    self.metrics.reconnects.inc()
                    await self.writer.connect()
                await self._write_split(pending)
                self._db_up()
                return
            except psycopg.Error as exc:
                self._db_down(exc, len(pending))
            await self.writer.recover()
            if self._give_up(pending):
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.backoff_max_s)
            pending = [(h, recs) for h, recs in pending if not h.done]

    async def _write_split(self, items: list[_Item]) -> None:
        """Commit ``items`` in one transaction; when a row is refused, bisect to the
        message behind it and dead-letter that message. Raises the database's non-row
        errors (connection, server state)."""
        t0 = time.perf_counter()
        try:
            inserted = await self.writer.write(batch_rows([r for _, recs in items for r in recs]))
        except psycopg.Error as exc:
            if not is_poison(exc):
                self.metrics.batches.labels("failed").inc()
                raise
            self.metrics.batches.labels("split").inc()
            if len(items) == 1:
                log.warning("the database refused a message: %s", exc,
                            extra={"subject": items[0][0].msg.subject})
                await self._dead_letter([(items[0][0], exc)], "database")
                return
            mid = len(items) // 2
            await self._write_split(items[:mid])
            await self._write_split(items[mid:])
            return
        seconds = time.perf_counter() - t0
        self._count(items, inserted, seconds)
        await self._ack([h for h, _ in items])

    def _count(self, items: list[_Item], inserted: dict[str, int], seconds: float) -> None:
        m = self.metrics
        m.batches.labels("committed").inc()
        m.batch_seconds.observe(seconds)
        m.batch_messages.observe(len(items))
        totals: dict[str, int] = {}
        for _, recs in items:
            for r in recs:
                totals[r.table] = totals.get(r.table, 0) + 1
        for table, total in totals.items():
            new = inserted.get(table, 0)
            m.rows.labels(table).inc(new)
            if total > new:
                m.duplicates.labels(table).inc(total - new)
        now = time.monotonic()
        self._rate.append((now, sum(inserted.values())))
        while self._rate and now - self._rate[0][0] > 10:
            self._rate.popleft()
        span = max(now - self._rate[0][0], seconds, 1e-3)
        m.ingest_rate.labels("recorder").set(sum(n for _, n in self._rate) / span)
        last: dict[str, Held] = {}
        for h, _ in items:
            last[h.stream] = h
        wall = time.time()
        for stream, h in last.items():
            with contextlib.suppress(Exception):
                m.lag.labels(stream).set(max(0.0, wall - h.msg.metadata.timestamp.timestamp()))

    async def _ack(self, held: list[Held]) -> None:
        """Ack committed messages. A lost ack only means a redelivery, which the natural
        keys turn into a no-op, so failures are logged, not retried."""
        try:
            for h in held:
                if not h.done:
                    await h.msg.ack()
                    h.done = True
        except Exception as exc:  # noqa: BLE001
            log.warning("acks not sent (%s): the committed messages will be redelivered and "
                        "skipped as duplicates", exc)
            for h in held:
                h.done = True

    async def _dead_letter(self, poison: list[tuple[Held, BaseException]], reason: str) -> None:
        """Publish each message to ``dlq.{subject}`` with its error; ack it only once the
        DLQ stream has it. If the DLQ publish fails the message stays unacked (redelivered
        after ack_wait, and tried again)."""
        for h, error in poison:
            try:
                await dead_letter_msg(self.js, h.msg, error, timeout=5)
            except Exception as exc:  # noqa: BLE001
                log.error("cannot dead-letter a message from %s (%s); leaving it unacked for "
                          "redelivery", h.msg.subject, exc, extra={"error": str(error)})
                h.done = True  # not ours any more: JetStream redelivers it
                continue
            log.warning("message dead-lettered: %s", error,
                        extra={"subject": h.msg.subject, "stream": h.stream, "reason": reason})
            self.metrics.dead_letters.labels(h.stream, reason).inc()
            await self._ack([h])

    # -- database state -------------------------------------------------------------------

    async def _connect_db(self) -> None:
        delay = self.config.backoff_min_s
        while True:
            if self._stopping.is_set():
                raise _Stopped
            try:
                await self.writer.connect()
                self._db_up()
                return
            except psycopg.OperationalError as exc:
                log.warning("waiting for PostgreSQL at %s: %s; retrying in %.1fs (is the "
                            "server up and DATABASE_URL right?)", self.writer.where,
                            _first_line(exc), delay)
                self.metrics.db_up.set(0)
                self.health.ready.fail(f"PostgreSQL at {self.writer.where} unreachable")
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.backoff_max_s)

    def _db_up(self) -> None:
        if self._db_down_since is not None:
            log.info("PostgreSQL writable again after %.1fs; resuming", time.monotonic() -
                     self._db_down_since, extra={"database": self.writer.where})
            self._db_down_since = None
            self.health.ready.ok("recording")
        self.metrics.db_up.set(1)

    def _db_down(self, exc: BaseException, held: int) -> None:
        self.metrics.db_up.set(0)
        if self._db_down_since is None:
            self._db_down_since = time.monotonic()
            log.error("PostgreSQL write failed: %s. Holding %d messages unacked (nothing is "
                      "lost) and retrying with backoff; fetching pauses when the queue is "
                      "full. Check the database at %s.", _first_line(exc), held,
                      self.writer.where)
            self.health.ready.fail(f"PostgreSQL at {self.writer.where} not writable: "
                                   f"{_first_line(exc)}; retrying")

    def _give_up(self, pending: list[_Item]) -> bool:
        if self._stop_deadline is None or time.monotonic() < self._stop_deadline:
            return False
        log.warning("stopping with %d messages not committed: left unacked, JetStream "
                    "redelivers them to the next recorder", len(pending))
        return True


class _Stopped(Exception):
    """Internal: ends the TaskGroup after a graceful stop."""


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _raise_if_cancelling() -> None:
    """Honour a cancellation a library swallowed (nats-py and Python 3.11's wait_for can
    lose one that races with a result), so a crash or TaskGroup shutdown never hangs."""
    if _cancelling():
        raise asyncio.CancelledError


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
