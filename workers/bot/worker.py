"""The bot worker process: start-up, the three loops, and a clean stop.

Start-up, in this order (each step must succeed before the next):

1. metrics server (``/metrics``, ``/healthz``, ``/readyz``) and tracing;
2. NATS connection, streams ensured (MARKET, FLEET, RISK, DLQ);
3. execution: ccxt client from the spec, account set-up, and **rehydration** from the
   exchange: positions and the bot's open orders; a position without a protective stop
   gets one (at mark ∓ the fallback distance) before anything else happens;
4. the previous process's last status (halts, loss streak, day PnL) and the last command
   sent to the bot (pause, drain, kill while it was down) are applied;
5. the durable MARKET consumer is created or resumed, and the strategies are **warmed up**
   from the history before its first delivery (MARKET stream, REST klines for the older
   part), placing no orders; then each strategy is told the true position;
6. Running (or Paused/Halted), ready.

Loops (asyncio tasks): **consume** — fetch one message, process it fully, then ack
(``ack_sync``) — see :mod:`.market` for why this never skips or repeats a bar;
**commands** — apply pause / resume / drain / kill; **heartbeat** — a StatusMsg every
``spec.heartbeatIntervalS``.

Stop (:meth:`BotWorker.request_stop`, SIGTERM): the consume loop finishes the message in
hand and acks it, the listeners stop, a final status (``stopped: true``) is published, and
positions are left on the exchange with their protective stops. Cancelling the task
instead (a crash) skips all that; the unacked message is redelivered to the next instance
after ``ack_wait``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal
from typing import Any

from nats.js.errors import NotFoundError
from prometheus_client import CollectorRegistry
from tradefleet.workers.execution import ExecutionHooks, Executor, pct_stop_fallback
from tradefleet.workers.risk import LocalRiskChecker, RiskChecker

from tradefleet.api import RiskPolicySpec, TradingBot
from tradefleet.bus import codec, connect, ensure_streams, subjects
from tradefleet.bus.fleet_messages import Command, CommandMsg, Phase, StatusMsg
from tradefleet.bus.market_messages import FundingMsg, KlineMsg, MarkMsg, decode_market
from tradefleet.bus.streams import FLEET
from tradefleet.telemetry import Health, serve_metrics, setup_tracing

from .commands import CommandListener
from .config import BotOptions, Credentials, config_hash, credentials_from_env
from .market import MarketFeed, lookback_bars
from .metrics import BotMetrics
from .publisher import FleetPublisher
from .trader import Trader

log = logging.getLogger("tradefleet.workers.bot")

DEFAULT_STOP_FALLBACK_PCT = Decimal(1)
"""Stop distance (percent of mark) for a position found without a stop at start, unless the
strategy has a ``stop_pct`` parameter."""


def stop_fallback_pct(bot: TradingBot) -> Decimal:
    """Percent of the mark price at which a rehydrated, unprotected position gets its stop:
    the strategy's ``stop_pct`` (ema_cross) when it has one, else 1 %. (The indicators are
    not warm yet at that point, so an ATR stop is not available; trailing tightens it on
    the next bars.)"""
    params = bot.spec.strategy.build_params()
    pct = getattr(params, "stop_pct", None)
    return Decimal(repr(pct * 100)) if pct else DEFAULT_STOP_FALLBACK_PCT


class BotHooks:
    """Execution hooks → the bot's metrics (``order_latency_ms``, rejects), plus optional
    extra hooks (benchmarks time the ACK with them)."""

    def __init__(self, metrics: BotMetrics, extra: ExecutionHooks | None = None) -> None:
        self.metrics = metrics
        self.extra = extra

    def order_latency(self, symbol: str, purpose: str, latency_ms: float) -> None:
        self.metrics.order(purpose, "acked", latency_ms)
        if self.extra is not None:
            self.extra.order_latency(symbol, purpose, latency_ms)

    def order_rejected(self, symbol: str, purpose: str, code: int | None, message: str) -> None:
        self.metrics.order(purpose, "rejected", None)
        log.warning("order rejected", extra={"symbol": symbol, "purpose": purpose,
                                             "code": code, "reject_message": message})
        if self.extra is not None:
            self.extra.order_rejected(symbol, purpose, code, message)

    def request_retried(self, symbol: str, operation: str, attempt: int, delay_ms: float,
                        error: str) -> None:
        log.info("exchange request retried", extra={
            "symbol": symbol, "operation": operation, "attempt": attempt,
            "delay_ms": delay_ms, "error": error})
        if self.extra is not None:
            self.extra.request_retried(symbol, operation, attempt, delay_ms, error)


class BotWorker:
    """One bot worker. ``await worker.run()`` runs it until :meth:`request_stop`; returns
    the process exit code (0 stopped cleanly, 1 failed).

    Parameters
    ----------
    bot : TradingBot
        The validated manifest.
    options : BotOptions
    credentials : Credentials, optional
        Default: :func:`~.config.credentials_from_env`.
    risk : RiskChecker, optional
        Default: ``LocalRiskChecker(policy)``.
    policy : RiskPolicySpec, optional
        The local checker's policy (default: RiskPolicySpec defaults).
    hooks : ExecutionHooks, optional
        Extra execution hooks (called after the bot's own).
    registry : CollectorRegistry, optional
        Metrics registry (default: a fresh one).
    """

    def __init__(self, bot: TradingBot, options: BotOptions | None = None, *,
                 credentials: Credentials | None = None, risk: RiskChecker | None = None,
                 policy: RiskPolicySpec | None = None, hooks: ExecutionHooks | None = None,
                 registry: CollectorRegistry | None = None) -> None:
        self.bot = bot
        self.options = options or BotOptions()
        self.credentials = credentials or credentials_from_env(bot)
        self.risk: RiskChecker = risk or LocalRiskChecker(policy or RiskPolicySpec())
        self.metrics = BotMetrics(bot.key, registry)
        self.health = Health()
        self.hooks = BotHooks(self.metrics, hooks)
        self.config_hash = config_hash(bot)
        self.trader: Trader | None = None
        self.executor: Executor | None = None
        self.feed: MarketFeed | None = None
        self.commands: CommandListener | None = None
        self.metrics_server: Any = None
        self.nc: Any = None
        self.js: Any = None
        self._stop = asyncio.Event()
        self._stop_reason = ""
        self._consuming = False
        self._last_loop_s = time.monotonic()
        self.started = asyncio.Event()
        """Set once the bot is consuming (tests and benchmarks wait on it)."""

    # ------------------------------------------------------------------ control
    def request_stop(self, reason: str = "stop requested") -> None:
        """Ask the worker to stop cleanly (SIGTERM handler); returns at once."""
        if not self._stop.is_set():
            self._stop_reason = reason
            self._stop.set()

    @property
    def metrics_url(self) -> str | None:
        """``http://host:port`` of the metrics server once started."""
        return self.metrics_server.url if self.metrics_server is not None else None

    # ------------------------------------------------------------------ run
    async def run(self) -> int:
        """Start, trade until stopped, stop; the exit code (0 clean, 1 failed)."""
        try:
            await self._start()
        except asyncio.CancelledError:
            await self._abort()
            raise
        except Exception as exc:
            log.exception("bot failed to start")
            await self._fail(f"start-up failed: {type(exc).__name__}: {exc}")
            await self._abort()
            return 1
        code = 0
        try:
            code = await self._serve()
        except asyncio.CancelledError:
            await self._abort()
            raise
        await self._shutdown(failed=code != 0)
        return code

    async def _start(self) -> None:
        bot, opts = self.bot, self.options
        setup_tracing("tradefleet-bot", opts.otlp_endpoint)
        self.health.live.add_check("consume loop", self._loop_alive)
        self.metrics_server = await serve_metrics(self.metrics.registry, self.health,
                                                  port=opts.metrics_port, host=opts.metrics_host)
        self.nc = await connect(opts.nats_url, name=f"bot:{bot.key}", connect_deadline_s=60)
        self.js = self.nc.jetstream(timeout=10)
        await ensure_streams(self.js)
        publisher = FleetPublisher(self.js, bot.metadata.namespace, bot.metadata.name)
        self.executor = Executor.from_spec(
            bot.spec, bot_key=bot.key, api_key=self.credentials.api_key,
            api_secret=self.credentials.api_secret, hooks=self.hooks,
            exchange_options=dict(opts.exchange_options))
        self.trader = trader = Trader(bot=bot, executor=self.executor, risk=self.risk,
                                      publisher=publisher, metrics=self.metrics,
                                      risk_timeout_ms=opts.risk_timeout_ms,
                                      config_hash=self.config_hash)
        await trader.phase_changed()  # Starting
        log.info("starting", extra={"bot": bot.key, "strategy": bot.spec.strategy.name,
                                    "symbols": bot.spec.symbols, "venue": bot.spec.venue,
                                    "mode": bot.spec.mode.value, "config_hash": self.config_hash,
                                    "credentials": self.credentials.source})
        rehydrated = await self.executor.start(pct_stop_fallback(stop_fallback_pct(bot)))
        await trader.adopt(rehydrated)
        await trader.refresh_equity()
        self.feed = MarketFeed(self.js, bot.spec, bot.metadata.namespace, bot.metadata.name,
                               ack_wait_s=opts.ack_wait_s)
        upto = await self.feed.prepare()
        lookback = max(lookback_bars(s.warmup_bars) for s in trader.strategies.values())
        history = await self.feed.read_history(
            upto, lookback, exchange=self.executor.exchange,
            ccxt_symbols={s: self.executor.rules(s).market for s in bot.spec.symbols})
        trader.warm(history)
        trader.last_stream_seq = upto or None
        last_status = await self._last(subjects.fleet(bot.metadata.namespace, bot.metadata.name,
                                                      "status"), StatusMsg)
        last_cmd = await self._last(subjects.command(bot.metadata.namespace, bot.metadata.name),
                                    CommandMsg)
        clock = max(trader.last_close.values(), default=int(time.time() * 1000))
        await self._resume_state(last_status, last_cmd, clock)
        self.commands = CommandListener(self.js, bot.metadata.namespace, bot.metadata.name)
        await self.commands.start()
        trader.started = True
        await trader.phase_changed()
        self.metrics.up.labels(bot.key).set(1)
        self.health.ready.ok()

    async def _last(self, subject: str, model: type) -> Any:
        try:
            raw = await self.js.get_last_msg(FLEET, subject)
        except NotFoundError:
            return None
        try:
            return codec.decode(raw.data or b"", subject=subject, model=model)
        except codec.DecodeError as exc:
            log.warning("ignoring unreadable last message", extra={"subject": subject,
                                                                    "error": exc.reason})
            return None

    async def _resume_state(self, last: StatusMsg | None, cmd: CommandMsg | None,
                            clock_ms: int) -> None:
        """Apply the previous process's last status and the last command (see module doc).

        A command the previous process already applied (its id is the status's
        ``last_command``) is not applied again, except that its state (paused, halted) is
        kept; one it never saw is applied now. A ``resume`` never overrides spec.paused.
        """
        trader = self.trader
        assert trader is not None
        trader.restore(last, clock_ms)
        if cmd is None:
            return
        seen = last is not None and last.last_command == cmd.command_id
        if cmd.command is Command.PAUSE:
            trader.paused_reason = f"paused: pause command {cmd.command_id} (before restart)"
        elif cmd.command is Command.RESUME:
            if not seen:
                trader.halted_reason = None
                trader.ledger.reset_streak()
        elif seen:
            # Drained/killed before the restart: keep the resulting state, do not drain again.
            if cmd.command is Command.DRAIN:
                trader.paused_reason = (last.reason if last is not None and
                                        last.phase is Phase.PAUSED else
                                        f"drained by command {cmd.command_id} before restart")
        else:
            await trader.apply(cmd)  # sent while the bot was down: apply it now
        trader.last_command = cmd.command_id

    async def _serve(self) -> int:
        self.started.set()
        tasks = {
            asyncio.create_task(self._consume(), name="bot:consume"),
            asyncio.create_task(self._commands(), name="bot:commands"),
            asyncio.create_task(self._heartbeat(), name="bot:heartbeat"),
        }
        stop = asyncio.create_task(self._stop.wait(), name="bot:stop")
        try:
            done, _ = await asyncio.wait(tasks | {stop}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # A crash (the task cancelled): the loops die with it, mid-bar if need be. The
            # stop flag too: on Python 3.11 asyncio.wait_for (inside nats-py's fetch) can
            # turn a cancellation into a timeout, and the consume loop must not go on.
            self._stop.set()
            for t in tasks | {stop}:
                t.cancel()
            _, stuck = await asyncio.wait(tasks | {stop}, timeout=10)
            for t in stuck:
                log.error("loop %s did not stop within 10 s of being cancelled", t.get_name(),
                          extra={"stack": _stack(t)})
            raise
        code = 0
        for t in done:
            if t is not stop and not t.cancelled() and t.exception() is not None:
                exc = t.exception()
                log.error("bot loop %s died: %s", t.get_name(), exc, exc_info=exc)
                await self._fail(f"{t.get_name()} failed: {type(exc).__name__}: {exc}")
                code = 1
        self.request_stop(self._stop_reason or "a loop ended")
        # Let the consume loop finish the message in hand (it checks the stop flag).
        consume = next(t for t in tasks if t.get_name() == "bot:consume")
        await asyncio.wait({consume}, timeout=self.options.drain_timeout_s)
        if not consume.done():
            log.warning("the bar in hand did not finish within %.0f s; cancelling it (it is "
                        "redelivered to the next instance)", self.options.drain_timeout_s,
                        extra={"stack": _stack(consume)})
        for t in tasks | {stop}:
            t.cancel()
        _, stuck = await asyncio.wait(tasks | {stop}, timeout=10)
        for t in stuck:  # never hang the shutdown on a loop that ignores cancellation
            log.error("loop %s did not stop within 10 s of being cancelled", t.get_name(),
                      extra={"stack": _stack(t)})
        return code

    def _loop_alive(self) -> str | None:
        if not self._consuming:
            return None
        idle = time.monotonic() - self._last_loop_s
        if idle > 300:
            return f"consume loop stuck for {idle:.0f} s (one message takes too long)"
        return None

    async def _consume(self) -> None:
        feed, trader = self.feed, self.trader
        assert feed is not None and trader is not None
        self._consuming = True
        while not self._stop.is_set():
            self._last_loop_s = time.monotonic()
            msg = await feed.next(timeout_s=0.5)
            if msg is None:
                continue
            if await self._handle(msg):
                # A plain ack (no round trip): it travels on the same connection ahead of
                # the next pull request, and with max_ack_pending 1 the server delivers
                # nothing new before it has it. A lost ack only means a redelivery, which
                # the bar's close time dedupes.
                try:
                    await msg.ack()
                except Exception as exc:  # noqa: BLE001 - redelivered; the bar dedupes
                    log.warning("ack failed; the message will be redelivered and skipped as "
                                "already processed", extra={"error": f"{type(exc).__name__}: "
                                                                     f"{exc}"})
                trader.last_stream_seq = msg.metadata.sequence.stream

    async def _handle(self, msg: Any) -> bool:
        """Process one market message; True when it may be acked (processed, or a bad body
        stored in the dead-letter stream)."""
        trader = self.trader
        assert trader is not None
        try:
            body = decode_market(msg.data, msg.subject)
        except codec.DecodeError as exc:
            return await self._dead_letter(msg, exc)
        try:
            if isinstance(body, KlineMsg):
                await trader.on_kline(body, msg.headers)
            elif isinstance(body, MarkMsg):
                trader.on_mark(body)
            elif isinstance(body, FundingMsg):
                trader.on_funding(body)
        except Exception as exc:
            log.exception("processing failed; message dead-lettered",
                          extra={"subject": msg.subject})
            return await self._dead_letter(msg, exc)
        return True

    async def _dead_letter(self, msg: Any, exc: BaseException) -> bool:
        assert self.trader is not None
        self.trader.counters.dead_letters += 1
        try:
            await codec.dead_letter_msg(self.js, msg, exc)
            return True
        except Exception as dlq_exc:  # noqa: BLE001 - leave unacked: redelivered later
            log.error("cannot dead-letter; leaving the message unacked",
                      extra={"error": f"{type(dlq_exc).__name__}: {dlq_exc}"})
            return False

    async def _commands(self) -> None:
        trader, commands = self.trader, self.commands
        assert trader is not None and commands is not None
        # Loops re-check the stop flag after every wait: on Python 3.11 a cancellation can
        # be lost inside nats-py's asyncio.wait_for (a publish), and the loop must end anyway.
        while not self._stop.is_set():
            try:
                async with asyncio.timeout(0.5):
                    cmd = await commands.queue.get()
            except TimeoutError:
                continue
            if cmd.command_id == trader.last_command:
                continue  # the last command, already applied at start
            await trader.apply(cmd)

    async def _heartbeat(self) -> None:
        trader = self.trader
        assert trader is not None
        while not self._stop.is_set():
            try:
                async with asyncio.timeout(self.bot.spec.heartbeat_interval_s):
                    await self._stop.wait()
                return
            except TimeoutError:
                pass
            await trader.pub.status(trader.status("heartbeat"))

    # ------------------------------------------------------------------ stop
    async def _fail(self, reason: str) -> None:
        self.metrics.up.labels(self.bot.key).set(0)
        self.health.live.fail(reason)
        if self.trader is not None:
            self.trader.failed_reason = reason
            try:
                await self.trader.phase_changed()
            except Exception as exc:  # noqa: BLE001 - NATS may be what failed
                log.debug("cannot publish the Failed status", extra={"error": repr(exc)})

    async def _shutdown(self, failed: bool) -> None:
        """Clean stop: listeners off, final status, connections closed. Positions stay on
        the exchange with their protective stops."""
        self.metrics.up.labels(self.bot.key).set(0)
        if self.commands is not None:
            await self.commands.stop()
        if self.feed is not None:
            await self.feed.close()
        if self.trader is not None and not failed:
            open_positions = sum(1 for v in self.trader.views.values() if not v.is_flat)
            reason = (f"stopped ({self._stop_reason}); {open_positions} open position(s) left "
                      "with their protective stops")
            await self.trader.pub.status(self.trader.status("status", stopped=True,
                                                            reason=reason))
            log.info("stopped", extra={"reason": reason})
        await self._abort()

    async def _abort(self) -> None:
        """Release connections without any trading action (crash path and the end of a
        clean stop)."""
        if self.trader is not None:
            await self.trader.close()
        if self.executor is not None:
            try:
                await self.executor.close()
            except Exception as exc:  # noqa: BLE001 - closing anyway
                log.debug("exchange client close failed", extra={"error": repr(exc)})
            self.executor = None
        if self.nc is not None:
            try:
                if self.nc.is_connected:
                    await self.nc.close()
            except Exception as exc:  # noqa: BLE001 - closing anyway
                log.debug("NATS close failed", extra={"error": repr(exc)})
            self.nc = None
        if self.metrics_server is not None:
            try:
                await self.metrics_server.stop()
            except Exception as exc:  # noqa: BLE001 - closing anyway
                log.debug("metrics server stop failed", extra={"error": repr(exc)})
            self.metrics_server = None


def _stack(task: asyncio.Task) -> str:
    """Where ``task`` is waiting, for logs about a loop that does not stop."""
    import io

    out = io.StringIO()
    task.print_stack(limit=12, file=out)
    return out.getvalue()


async def run_bot(bot: TradingBot, options: BotOptions | None = None, **kwargs: Any) -> int:
    """Run a bot worker until it is stopped; the exit code. ``kwargs`` go to BotWorker."""
    return await BotWorker(bot, options, **kwargs).run()


__all__ = ["BotHooks", "BotWorker", "run_bot", "stop_fallback_pct"]
