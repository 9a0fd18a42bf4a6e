"""The shared risk service (``tradefleet risk``): one brain for the fleet's exposure.

Data path, top to bottom::

    bot --request risk.check|confirm|position|trade (queue group "risk")--> _on_request
        parse (malformed: error reply + dlq.risk.*) -> queue
    _commit_loop: take every queued request (a batch), apply the pure rules (rules.py) to
        the in-memory FleetState in arrival order, write the state to KV risk-state/fleet
        with compare-and-set on the revision it was read at, and only then reply, publish
        one risk.events event per decision and send commands (halts with close_all).

Concurrency (why no two bots get the last room, even with several replicas in the queue
group): the in-memory state is a cache of the single KV key; a batch's decisions are only
answered after the KV write naming the revision they were computed from succeeded. A
replica that lost the race (``StateConflict``) re-reads the key and re-decides the whole
batch against the winner's state. Group commit (one write per batch, the batch being
whatever arrived while the previous write was in flight) keeps the KV round trip off the
per-check cost, so one replica scales with load and replicas need no leader election or
lease timing. A write whose outcome is unknown (timeout, NATS down) answers BLOCK and the
state is re-read before the next decision: fail closed.

Time: the service decides with its own UTC clock (reservation expiry, soft-cap grace,
00:00 UTC day roll); a bot's ``time_ms`` is kept in the event for audit. One clock for the
fleet means a bot's clock (a replay clock in paper mode, or a wrong one) cannot expire
another bot's reservation.

Policy: ``risk-policy/policy`` in KV when present (watched: a change applies within
milliseconds), else the ``--policy`` file; with neither, every check is blocked. Turning
the kill switch on sends ``{"command": "kill"}`` to every known bot (commands.py).

Decision events on ``risk.events`` are published without waiting for the JetStream ack
(stream RISK still stores them): they are the audit trail, while the decisions' effect is
in the KV state, which is acknowledged. Halts, kills, auto-closes and policy changes are
rarer and published with an ack.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError
from opentelemetry import trace
from prometheus_client import CollectorRegistry

from tradefleet.api.riskpolicy import HaltAction, RiskPolicySpec
from tradefleet.bus import subjects
from tradefleet.bus.codec import DecodeError, dead_letter, decode, encode
from tradefleet.bus.publish import publish
from tradefleet.bus.streams import KV_RISK_POLICY, BusConfig, ensure_kv, ensure_streams
from tradefleet.telemetry.metrics import Health, new_registry
from tradefleet.telemetry.tracing import TRACEPARENT, extract_context, get_tracer
from tradefleet.workers.risk import commands, rules
from tradefleet.workers.risk.locks import PoolLocks
from tradefleet.workers.risk.metrics import RiskMetrics
from tradefleet.workers.risk.policy import POLICY_KEY, parse_policy
from tradefleet.workers.risk.protocol import (
    CheckRequest, ConfirmReport, Decision, PositionReport, TradeReport,
)
from tradefleet.workers.risk.state import DAY_MS, FleetState
from tradefleet.workers.risk.store import StateConflict, StateStore

log = logging.getLogger(__name__)

_KINDS: dict[str, tuple[str, Callable[[dict], Any]]] = {
    subjects.RISK_CHECK: ("check", CheckRequest.from_dict),
    subjects.RISK_CONFIRM: ("confirm", ConfirmReport.from_dict),
    subjects.RISK_POSITION: ("position", PositionReport.from_dict),
    subjects.RISK_TRADE: ("trade", TradeReport.from_dict),
}
_NO_POLICY_BOOKKEEPING = RiskPolicySpec()  # soft clocks of reports while no policy is loaded
_OK = encode({"ok": True})


async def _bounded(coro: Any, timeout_s: float = 1.0) -> None:
    """Await ``coro`` for at most ``timeout_s``; errors are logged, not raised (shutdown)."""
    try:
        await asyncio.wait_for(coro, timeout_s)
    except Exception as exc:  # noqa: BLE001 - best effort while stopping
        log.debug("shutdown step failed: %s", exc)


def wall_clock_ms() -> int:
    """UTC now in integer ms."""
    return time.time_ns() // 1_000_000


@dataclasses.dataclass(slots=True)
class _Op:
    """One queued request (or a housekeeping ``tick``)."""

    kind: str
    body: Any
    reply: str | None
    headers: dict[str, str] | None
    t0: float  # perf_counter at receipt, s
    t0_ns: int  # wall clock at receipt, ns (span start)


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceSettings:
    """Tuning of the service; the defaults suit a fleet of hundreds of bots.

    batch_max: most requests decided per KV write. commit_attempts: compare-and-set
    retries before a batch is answered BLOCK. housekeeping_s: period of reservation expiry,
    day roll and auto-close, seconds. auto_close_repeat_s: an unchanged auto-close
    instruction is re-sent after this long. kv_timeout_s: JetStream/KV call timeout.
    """

    batch_max: int = 1024
    commit_attempts: int = 10
    housekeeping_s: float = 1.0
    auto_close_repeat_s: float = 30.0
    kv_timeout_s: float = 2.0


class RiskService:
    """The NATS risk service; ``await start()``, ``await stop()`` (or ``async with``).

    Parameters
    ----------
    nc : nats-py Client
        Connected client (``tradefleet.bus.connect``).
    file_policy : RiskPolicySpec, optional
        The ``--policy`` file's spec: used while the KV key ``risk-policy/policy`` is absent.
    replica : str, optional
        This instance's name in events and logs (default ``hostname-pid``).
    clock : callable, optional
        UTC ms; the wall clock by default.
    registry, health : optional
        Where metrics and probes go (a fresh registry / Health otherwise).
    bus_config : BusConfig, optional
        Stream and bucket limits for ``ensure_streams`` / ``ensure_kv``.
    """

    def __init__(self, nc: Any, *, file_policy: RiskPolicySpec | None = None,
                 replica: str | None = None, clock: Callable[[], int] | None = None,
                 registry: CollectorRegistry | None = None, health: Health | None = None,
                 bus_config: BusConfig | None = None, settings: ServiceSettings | None = None):
        self.nc = nc
        self.js = nc.jetstream(timeout=(settings or ServiceSettings()).kv_timeout_s)
        self.file_policy = file_policy
        self.replica = replica or f"{socket.gethostname()}-{os.getpid()}"
        self.clock = clock or wall_clock_ms
        self.registry = registry or new_registry(process=False)
        self.health = health or Health()
        self.settings = settings or ServiceSettings()
        self._bus_config = bus_config
        self.policy: RiskPolicySpec | None = None
        self.policy_source = "none"
        self.policy_revision: int | None = None
        self._state: FleetState | None = None
        self._rev = 0
        self._queue: list[_Op] = []
        self._wake = asyncio.Event()
        self._committing = False
        self._stopping = False  # loops exit on it too: 3.11's wait_for can swallow a cancel
        self._subs: list[Any] = []
        self._tasks: list[asyncio.Task] = []
        self._background: set[asyncio.Task] = set()
        self._watcher: Any = None
        self._auto_close_sent: dict[tuple[str, str], tuple[Decimal, float]] = {}
        self._tracer = get_tracer("tradefleet.risk")
        self._store: StateStore
        self._locks: PoolLocks
        self.metrics = RiskMetrics(self.registry, self._snapshot)

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> "RiskService":
        """Ensure streams and buckets, load state and policy, watch the policy, subscribe.

        Raises the NATS/JetStream error when that fails (after stopping what was started).
        """
        try:
            return await self._start()
        except BaseException:
            await self.stop(timeout_s=0.5)
            raise

    async def _start(self) -> "RiskService":
        await ensure_streams(self.js, self._bus_config)
        await ensure_kv(self.js, self._bus_config)
        self._store = await StateStore.open(self.js)
        self._locks = await PoolLocks.open(self.js)
        self._policy_kv = await self.js.key_value(KV_RISK_POLICY)
        self._state, self._rev = await self._store.load()
        try:
            await self._apply_policy_entry(await self._policy_kv.get(POLICY_KEY))
        except KeyNotFoundError:
            await self._use_file_policy("no risk-policy/policy key")
        self._watcher = await self._policy_kv.watch(POLICY_KEY)
        self._tasks = [asyncio.create_task(self._commit_loop(), name="risk-commit"),
                       asyncio.create_task(self._watch_policy(), name="risk-policy-watch"),
                       asyncio.create_task(self._housekeeping(), name="risk-housekeeping")]
        for subject in _KINDS:
            self._subs.append(await self.nc.subscribe(subject, queue=subjects.RISK_QUEUE,
                                                      cb=self._on_request))
        await self.nc.flush()
        self.health.live.add_check("commit loop", self._commit_loop_check)
        self.health.ready.add_check("nats", lambda: None if self.nc.is_connected
                                    else "not connected to NATS; reconnecting")
        self.health.ready.ok()
        log.info("risk service ready", extra={
            "replica": self.replica, "policy_source": self.policy_source,
            "state_revision": self._rev, "positions": len(self._state.positions),
            "halts": len(self._state.halts)})
        return self

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Stop taking requests, answer the queued ones, stop the background tasks.

        Every step is bounded (``timeout_s`` for the queue, 1 s per NATS call), so a broken
        connection cannot keep the service from stopping.
        """
        self.health.ready.fail("stopping")
        for sub in self._subs:
            await _bounded(sub.unsubscribe())
        self._subs.clear()
        self._stopping = True
        self._wake.set()
        deadline = time.monotonic() + timeout_s
        while (self._queue or self._committing) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=1.0)
        self._tasks.clear()
        if self._watcher is not None:
            await _bounded(self._watcher.stop())
            self._watcher = None
        if self._background:
            await asyncio.wait(self._background, timeout=max(0.1, deadline - time.monotonic()))
        await _bounded(self.nc.flush(timeout=1))
        log.info("risk service stopped", extra={"replica": self.replica})

    async def __aenter__(self) -> "RiskService":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _commit_loop_check(self) -> str | None:
        task = self._tasks[0] if self._tasks else None
        if task is not None and task.done():
            return "the commit loop has stopped; restart the risk service"
        return None

    def _snapshot(self) -> tuple[FleetState | None, RiskPolicySpec | None, int]:
        return self._state, self.policy, self.clock()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- requests ---------------------------------------------------------------------------
    async def _on_request(self, msg: Msg) -> None:
        """Parse and queue; a malformed request is answered with an error and dead-lettered."""
        t0 = time.perf_counter()
        kind, parse = _KINDS[msg.subject]
        try:
            body = parse(decode(msg.data, subject=msg.subject))
            if kind == "check" and not msg.reply:
                raise ValueError("risk.check needs a reply subject: use request/reply")
        except (DecodeError, ValueError) as exc:
            await self._reject(msg, exc)
            return
        except Exception as exc:  # noqa: BLE001 - a parser bug must not kill the subscription
            log.exception("unexpected error parsing a %s request", kind)
            await self._reject(msg, exc)
            return
        self._queue.append(_Op(kind, body, msg.reply or None, msg.headers, t0, time.time_ns()))
        self._wake.set()

    async def _reject(self, msg: Msg, exc: BaseException) -> None:
        reason = exc.reason if isinstance(exc, DecodeError) else str(exc)
        self.metrics.rejected.labels(subject=msg.subject).inc()
        log.warning("refused a malformed %s request: %s", msg.subject, reason,
                    extra={"subject": msg.subject, "error": reason})
        if msg.reply:
            with contextlib.suppress(Exception):
                await self.nc.publish(msg.reply, encode({"error": reason, "subject": msg.subject}))
        self._spawn(self._dead_letter(msg, exc))

    async def _dead_letter(self, msg: Msg, exc: BaseException) -> None:
        try:
            await dead_letter(self.js, msg.subject, msg.data, exc, msg.headers)
        except Exception as err:  # noqa: BLE001 - logged; the request was already refused
            log.error("cannot dead-letter a malformed %s request: %s", msg.subject, err)

    # -- the commit loop --------------------------------------------------------------------
    async def _commit_loop(self) -> None:
        while not (self._stopping and not self._queue):
            await self._wake.wait()
            await asyncio.sleep(0)  # let requests already read from the socket join this batch
            self._wake.clear()
            while self._queue:
                ops = self._queue[: self.settings.batch_max]
                del self._queue[: self.settings.batch_max]
                self._committing = True
                try:
                    await self._commit(ops)
                except Exception as exc:  # noqa: BLE001 - never leave requests unanswered
                    log.exception("risk commit failed")
                    self._state = None
                    await self._fail(ops, f"risk service error ({type(exc).__name__}: {exc})")
                finally:
                    self._committing = False

    async def _commit(self, ops: list[_Op]) -> None:
        """Decide ``ops`` in order, persist with compare-and-set, then answer them."""
        for attempt in range(self.settings.commit_attempts):
            if self._state is None:
                try:
                    self._state, self._rev = await self._store.load()
                except Exception as exc:  # noqa: BLE001 - fail closed on unreadable state
                    await self._fail(ops, f"risk state unreadable in KV ({type(exc).__name__}: {exc})")
                    return
            policy, now = self.policy, self.clock()
            await self._refresh_locks(ops)
            results = [self._apply(op, policy, now) for op in ops]
            value = self._store.encode(self._state)
            t = time.perf_counter()
            try:
                self._rev = await self._store.save(value, self._rev)
            except StateConflict:
                self.metrics.conflicts.inc()
                self._state = None  # another replica wrote: re-read and re-decide
                if attempt:
                    await asyncio.sleep(0.0005 * attempt)
                continue
            except Exception as exc:  # noqa: BLE001 - outcome unknown: re-read before deciding
                self._state = None
                await self._fail(ops, f"risk state could not be saved to KV "
                                      f"({type(exc).__name__}: {exc})")
                return
            self.metrics.commits.inc()
            self.metrics.commit_seconds.observe(time.perf_counter() - t)
            await self._finish(ops, results, policy, now)
            return
        await self._fail(ops, f"risk state kept changing under other replicas "
                              f"({self.settings.commit_attempts} attempts)")

    async def _refresh_locks(self, ops: list[_Op]) -> None:
        """Read the capital-pool locks the batch's checks name, fresh from KV ``locks``."""
        pools = {op.body.pool for op in ops if op.kind == "check" and op.body.pool}
        for pool in pools:
            try:
                held = await self._locks.holder(pool)
            except Exception as exc:  # noqa: BLE001 - unknown holder: nobody (fail closed)
                log.warning("cannot read lock of pool %s: %s", pool, exc)
                held = None
            if held is None:
                self._state.locks.pop(pool, None)
            else:
                self._state.locks[pool] = held.holder

    def _apply(self, op: _Op, policy: RiskPolicySpec | None, now: int) -> Any:
        """Apply one request to the in-memory state; returns its result (not yet final)."""
        state = self._state
        body = op.body
        if op.kind == "check":
            if policy is None:
                return Decision.block(body.request_id, "no RiskPolicy loaded: write one to KV "
                                      "risk-policy/policy or start with --policy FILE")
            waited_ms = (time.perf_counter() - op.t0) * 1000
            if waited_ms > policy.check_timeout_ms:
                return Decision.block(body.request_id, f"waited {waited_ms:.0f} ms in the risk "
                                      f"queue, beyond checkTimeoutMs {policy.check_timeout_ms}: "
                                      "the bot has given up")
            state.seen(body.bot, now)
            return rules.evaluate(policy, state, body, now)
        bookkeeping = policy or _NO_POLICY_BOOKKEEPING
        if op.kind == "confirm":
            try:
                rules.confirm(bookkeeping, state, body.reservation_id, body.bot)
            except ValueError as exc:
                return exc
            state.seen(body.bot, now)
            return None
        if op.kind == "position":
            state.seen(body.bot, now)
            rules.record_position(bookkeeping, state, body.bot, body.symbol, body.notional_usdt, now)
            return None
        if op.kind == "trade":
            state.seen(body.bot, now)
            already = body.bot in state.halts
            halt = rules.record_trade(bookkeeping, state, body.bot, body.realized_pnl_usdt,
                                      body.equity_usdt, now, body.trade_id)
            return None if already else halt  # only a new halt is announced
        state.expire(now)  # tick
        state.roll_day(now)
        return None

    async def _finish(self, ops: list[_Op], results: list[Any], policy: RiskPolicySpec | None,
                      now: int) -> None:
        """The state is saved: answer, count, publish events and send commands."""
        publish_core = self.nc.publish
        for op, result in zip(ops, results):
            if op.kind == "check":
                await publish_core(op.reply, encode(result.to_dict()))
                self.metrics.decision(result.outcome.value, time.perf_counter() - op.t0)
                await publish_core(subjects.RISK_EVENTS, encode(self._decision_event(op, result, now)))
                if op.headers and any(k.lower() == TRACEPARENT for k in op.headers):
                    self._trace(op, result)
                continue
            if op.kind == "tick":
                continue
            if isinstance(result, ValueError):
                if op.reply:
                    await publish_core(op.reply, encode({"error": str(result), "subject":
                                                         f"risk.{op.kind}"}))
                continue
            self.metrics.report(op.kind)
            if op.kind == "trade":
                if result is not None:
                    self._spawn(self._halted(op.body.bot, result, policy, now))
                if op.reply:
                    await publish_core(op.reply, encode({"ok": True, "halt": result}))
            elif op.reply:
                await publish_core(op.reply, _OK)

    async def _fail(self, ops: list[_Op], reason: str) -> None:
        """Answer every op of a batch that could not be decided: checks BLOCK, reports error."""
        log.error("risk batch not decided: %s", reason, extra={"requests": len(ops)})
        for op in ops:
            with contextlib.suppress(Exception):
                if op.kind == "check":
                    d = Decision.block(op.body.request_id, f"{reason}; fail closed")
                    await self.nc.publish(op.reply, encode(d.to_dict()))
                    self.metrics.decision(d.outcome.value, time.perf_counter() - op.t0)
                elif op.reply:  # not booked: the client keeps it queued and re-sends
                    await self.nc.publish(op.reply, encode({"error": reason, "retry": True,
                                                            "subject": f"risk.{op.kind}"}))

    def _decision_event(self, op: _Op, d: Decision, now: int) -> dict:
        req: CheckRequest = op.body
        return {"type": "decision", "time_ms": now, "request_id": req.request_id, "bot": req.bot,
                "symbol": req.symbol, "side": req.side, "notional_usdt": req.notional_usdt,
                "mode": req.mode, "pool": req.pool, "outcome": d.outcome.value,
                "reason": d.reason, "reservation_id": d.reservation_id,
                "expires_ms": d.expires_ms, "bot_time_ms": req.time_ms, "replica": self.replica}

    def _trace(self, op: _Op, d: Decision) -> None:
        """A SERVER span under the bot's trace covering receipt to reply."""
        span = self._tracer.start_span(
            "risk.check", context=extract_context(op.headers), kind=trace.SpanKind.SERVER,
            start_time=op.t0_ns,
            attributes={"messaging.system": "nats", "messaging.destination.name":
                        subjects.RISK_CHECK, "risk.bot": op.body.bot, "risk.symbol":
                        op.body.symbol, "risk.outcome": d.outcome.value, "risk.reason": d.reason})
        span.end()

    async def _event(self, body: dict, *dedupe: str | int) -> None:
        """Publish a (rare) event on risk.events with a JetStream ack; errors are logged."""
        try:
            mid = commands.command_id(*dedupe) if dedupe else None
            await publish(self.js, subjects.RISK_EVENTS, body, msg_id=mid)
        except Exception as exc:  # noqa: BLE001
            log.error("cannot publish risk event %s: %s", body.get("type"), exc)

    async def _halted(self, bot: str, reason: str, policy: RiskPolicySpec | None, now: int) -> None:
        action = policy.on_halt if policy is not None else HaltAction.HALT
        self.metrics.halts.inc()
        log.warning("bot halted: %s", reason, extra={"bot": bot, "action": action.value})
        await self._event({"type": "halt", "time_ms": now, "bot": bot, "reason": reason,
                           "action": action.value, "replica": self.replica},
                          "halt", bot, now)
        if action is HaltAction.CLOSE_ALL:
            cid = commands.command_id("drain", bot, now)
            await commands.send(self.js, bot, commands.drain_command(reason, now, cid))

    # -- policy -----------------------------------------------------------------------------
    async def _watch_policy(self) -> None:
        async for entry in self._watcher:
            if self._stopping:
                return
            if entry is None:
                continue  # "no more history" marker
            try:
                await self._apply_policy_entry(entry)
            except Exception:  # noqa: BLE001 - keep watching
                log.exception("applying a RiskPolicy update failed")

    async def _apply_policy_entry(self, entry: Any) -> None:
        """Apply one ``risk-policy/policy`` KV entry (value, delete or purge)."""
        if self.policy_revision is not None and entry.revision is not None \
                and entry.revision <= self.policy_revision and self.policy_source == "kv":
            return
        now = self.clock()
        if entry.operation in ("DEL", "PURGE") or entry.value is None:
            await self._use_file_policy(f"risk-policy/policy deleted at revision {entry.revision}")
            return
        try:
            new = parse_policy(entry.value)
        except ValueError as exc:
            log.error("refused a RiskPolicy from KV; keeping the current one: %s", exc,
                      extra={"revision": entry.revision})
            await self._event({"type": "policy_rejected", "time_ms": now, "source": "kv",
                               "revision": entry.revision, "error": str(exc),
                               "replica": self.replica}, "policy-rejected", entry.revision)
            return
        await self._set_policy(new, "kv", entry.revision, now)

    async def _use_file_policy(self, why: str) -> None:
        if self.file_policy is None:
            log.warning("%s and no --policy file: every check is blocked until a RiskPolicy "
                        "is written to KV risk-policy/policy", why)
            self.policy, self.policy_source, self.policy_revision = None, "none", None
            return
        await self._set_policy(self.file_policy, "file", None, self.clock())

    async def _set_policy(self, new: RiskPolicySpec, source: str, revision: int | None,
                          now: int) -> None:
        previous = self.policy
        self.policy, self.policy_source, self.policy_revision = new, source, revision
        log.info("RiskPolicy applied", extra={"source": source, "revision": revision,
                                              "kill_switch": new.kill_switch})
        self._spawn(self._event({"type": "policy_applied", "time_ms": now, "source": source,
                                 "revision": revision, "kill_switch": new.kill_switch,
                                 "replica": self.replica},
                                "policy", source, revision if revision is not None else "file"))
        if new.kill_switch and not (previous is not None and previous.kill_switch):
            await self._kill_all(source, revision, now)

    async def _kill_all(self, source: str, revision: int | None, now: int) -> None:
        """Kill switch on: every known bot gets ``{"command": "kill"}``; checks already block."""
        reason = "RiskPolicy kill switch is on: cancel entries, flatten, open nothing new"
        bots = await commands.known_bots(self.js, self._state)
        tag = revision if revision is not None else "file"
        cid = commands.command_id("kill", source, tag)
        reached = await commands.send_many(self.js, bots, commands.kill_command(reason, now, cid))
        self.metrics.kill_commands.inc(len(reached))
        log.warning("kill switch: kill command sent to %d of %d bots", len(reached), len(bots),
                    extra={"bots": reached})
        await self._event({"type": "kill_switch", "time_ms": now, "on": True, "source": source,
                           "revision": revision, "bots": reached,
                           "unreached": sorted(set(bots) - set(reached)), "replica": self.replica},
                          "kill", source, tag)

    # -- housekeeping -----------------------------------------------------------------------
    async def _housekeeping(self) -> None:
        """Every second: expire reservations and roll the day in KV, send auto-close cuts."""
        failing_since: float | None = None
        last_log = 0.0
        while not self._stopping:
            await asyncio.sleep(self.settings.housekeeping_s)
            if self._stopping:
                return
            try:
                await self._housekeep()
                failing_since = None
            except Exception as exc:  # noqa: BLE001 - keep going; logged, at most once a minute
                now = time.monotonic()
                if failing_since is None:
                    failing_since = now
                    log.exception("risk housekeeping failed (expiry, day roll, auto-close)")
                    last_log = now
                elif now - last_log >= 60:
                    log.error("risk housekeeping still failing for %.0f s: %s",
                              now - failing_since, exc)
                    last_log = now

    async def _housekeep(self) -> None:
        now = self.clock()
        state, _ = await self._store.load()  # fresh: other replicas may have written
        if state.day != now // DAY_MS or any(r.expires_ms <= now for r in state.reservations.values()):
            self._queue.append(_Op("tick", None, None, None, time.perf_counter(), time.time_ns()))
            self._wake.set()
        policy = self.policy
        if policy is None or policy.kill_switch:
            return
        for bot, symbol, notional in rules.auto_close(policy, state, now):
            target = abs(state.positions.get((bot, symbol), Decimal(0))) - notional
            key, last = (bot, symbol), self._auto_close_sent.get((bot, symbol))
            if last is not None and last[0] == target and \
                    time.monotonic() - last[1] < self.settings.auto_close_repeat_s:
                continue
            self._auto_close_sent[key] = (target, time.monotonic())
            reason = (f"exposure over the caps (PortfolioGuard auto-close): close {notional:.2f} "
                      f"USDT of {symbol}, down to {target:.2f} USDT")
            self.metrics.auto_close.inc()
            log.warning("auto-close %s %s %s USDT", bot, symbol, notional,
                        extra={"bot": bot, "symbol": symbol, "notional_usdt": notional,
                               "target_notional_usdt": target})
            await self._event({"type": "auto_close", "time_ms": now, "bot": bot, "symbol": symbol,
                               "notional_usdt": notional, "target_notional_usdt": target,
                               "reason": reason, "replica": self.replica},
                              "auto-close", bot, symbol, target)
            if commands.AUTO_CLOSE_SUPPORTED:
                cid = commands.command_id("auto-close", bot, symbol, target)
                await commands.send(self.js, bot, commands.auto_close_command(
                    symbol, notional, target, reason, now, cid))
