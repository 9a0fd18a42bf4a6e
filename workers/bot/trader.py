"""The bot's trading logic: one closed bar in, orders out, in the order the data flows.

Per closed kline of a symbol (:meth:`Trader.on_kline`), under one lock so a command never
interleaves with a bar:

1. **sync first** when the bot has a position or resting orders on the symbol: stops and
   take-profits may have filled inside the bar (exsim and Binance trigger them intra-bar),
   and the strategy must see the true position before it decides. Fills are booked (PnL,
   loss streak, ``risk.report_trade``) and published. When the bot is flat with nothing
   resting, nothing of it can have filled, so the sync runs after step 3 instead (it still
   runs every bar, but off the signal-to-order path).
2. ``strategy.on_bar(bar)`` → :class:`Signal` or None.
3. Signal:
   - ``exit`` → ``executor.close_position`` at once (exits never ask risk, and run in
     every phase).
   - entry against the opposite position → close it first (``reverse``), like an exit.
   - entry → only while Running: sizing (``size_position``: equity × riskPctPerTrade over
     the signal's stop distance, capped by maxPositionNotionalUsdt, market filters) → risk
     check (``CheckRequest`` at the bar's close time; no answer within the timeout or any
     error = BLOCK, fail closed) → ``executor.open_position`` (MARKET + reduce-only
     STOP_MARKET + take-profit tiers) → ``report_position`` then ``confirm`` to risk.
   - whatever happened, the strategy is told the true position afterwards.
4. Trailing (``execution.trailing``): ``strategy.trail_stop`` → ``executor.move_stop``
   (only tightens), in every phase but Draining.

Each signal starts an OpenTelemetry trace (span ``signal``, a root span linked to the
kline's publisher span); the risk check and the orders are child spans, every message it
causes carries its ``trace_id`` and ``traceparent``, and later fills of the position (its
stop, its take-profits) are recorded as spans of the same trace.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from tradefleet.workers.execution import (
    EntryRequest,
    ExecutionError,
    Executor,
    Fill,
    OrderResult,
    PositionView,
)
from tradefleet.workers.risk import CheckRequest, Decision, RiskChecker
from tradefleet.workers.sizing import SizingRefused, size_position
from tradefleet.workers.strategies import Action, Bar, Signal, Strategy, build_strategy

from tradefleet.api import TradingBot
from tradefleet.bus.fleet_messages import (
    Command,
    CommandMsg,
    Counters,
    Phase,
    SignalDisposition,
    SignalMsg,
    StatusMsg,
)
from tradefleet.bus.fleet_messages import (
    signal_id as make_signal_id,
)
from tradefleet.bus.market_messages import FundingMsg, KlineMsg, MarkMsg
from tradefleet.telemetry.tracing import extract_context, get_tracer

from .events import fill_msg, order_msg, position_msg, signed_qty, unrealized
from .ledger import DAY_MS, Ledger
from .market import History, bar_from_kline
from .metrics import BotMetrics
from .publisher import FleetPublisher

log = logging.getLogger("tradefleet.workers.bot")
tracer = get_tracer("tradefleet.workers.bot")

ZERO = Decimal(0)


def _d(x: float | None) -> Decimal | None:
    """A strategy float as a Decimal through its shortest repr (97012.4 → "97012.4")."""
    return None if x is None else Decimal(repr(float(x)))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _trace_id(span: trace.Span) -> str | None:
    ctx = span.get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


@dataclass
class _PositionTrace:
    """The trace of the signal that opened a position: its later fills join it."""

    context: otel_context.Context
    trace_id: str | None
    reference: Decimal | None


class Trader:
    """Strategy → sizing → risk → execution for one bot, plus its phase and PnL book.

    Parameters
    ----------
    bot : TradingBot
        The manifest (spec and identity).
    executor : Executor
        Started (markets loaded, positions rehydrated).
    risk : RiskChecker
        ``LocalRiskChecker`` by default; the shared service's client later.
    publisher : FleetPublisher
        Where events go.
    metrics : BotMetrics
    risk_timeout_ms : int
        A check without answer in this time blocks the entry (fail closed).
    config_hash : str
        Reported in every status.
    """

    def __init__(self, *, bot: TradingBot, executor: Executor, risk: RiskChecker,
                 publisher: FleetPublisher, metrics: BotMetrics, risk_timeout_ms: int = 500,
                 config_hash: str = "") -> None:
        self.bot = bot
        self.spec = bot.spec
        self.namespace = bot.metadata.namespace
        self.name = bot.metadata.name
        self.key = bot.key
        self.executor = executor
        self.risk = risk
        self.pub = publisher
        self.metrics = metrics
        self.risk_timeout_s = risk_timeout_ms / 1000
        self.config_hash = config_hash
        params = self.spec.strategy.build_params()
        self.strategies: dict[str, Strategy] = {
            s: build_strategy(self.spec.strategy.name, s, params) for s in self.spec.symbols}
        self.ledger = Ledger(self.spec.risk.loss_streak_limit)
        self.counters = Counters()
        self.lock = asyncio.Lock()
        self.marks: dict[str, Decimal] = {}
        self.last_close: dict[str, int] = {}
        self.last_stream_seq: int | None = None
        self.views: dict[str, PositionView] = {}
        self.equity: Decimal | None = None
        self._pos_trace: dict[str, _PositionTrace] = {}
        # Phase inputs; the phase itself is derived (see `phase`).
        self.started = False
        self.failed_reason: str | None = None
        self.paused_reason: str | None = ("spec.paused is true" if self.spec.paused else None)
        self.halted_reason: str | None = None
        # Bar close time (UTC ms) at which a loss-streak halt lifts; None: no timed halt.
        self.halted_until_ms: int | None = None
        self.draining = False
        self.last_command: str | None = None
        self.started_ms = _now_ms()
        self._equity_task: asyncio.Task[None] | None = None
        self._published_phase: tuple[Phase, str] | None = None

    # ------------------------------------------------------------------ phase and status
    @property
    def phase(self) -> Phase:
        """Derived: Failed > Draining > Halted > Paused > Starting > Running."""
        if self.failed_reason is not None:
            return Phase.FAILED
        if self.draining:
            return Phase.DRAINING
        if self.halted_reason is not None:
            return Phase.HALTED
        if self.paused_reason is not None:
            return Phase.PAUSED
        if not self.started:
            return Phase.STARTING
        return Phase.RUNNING

    @property
    def reason(self) -> str:
        """Why the bot is in its phase (empty when Running)."""
        phase = self.phase
        return {Phase.FAILED: self.failed_reason, Phase.DRAINING: "draining: closing "
                "positions and cancelling orders", Phase.HALTED: self.halted_reason,
                Phase.PAUSED: self.paused_reason, Phase.STARTING: "rehydrating positions "
                "and warming up indicators"}.get(phase) or ""

    @property
    def entries_allowed(self) -> bool:
        """New exposure only while Running."""
        return self.phase is Phase.RUNNING

    async def phase_changed(self) -> None:
        """Publish a status when phase or reason changed since the last one; update the
        phase gauge."""
        now = (self.phase, self.reason)
        if now == self._published_phase:
            return
        self._published_phase = now
        self.metrics.set_phase(now[0])
        log.info("phase %s", now[0].value, extra={"phase": now[0].value, "reason": now[1]})
        await self.pub.status(self.status("status"))

    def status(self, kind: str = "status", *, stopped: bool = False,
               reason: str | None = None) -> StatusMsg:
        """A StatusMsg of the bot now (``kind`` status or heartbeat)."""
        positions, upnl = [], ZERO
        for sym in self.spec.symbols:
            view = self.views.get(sym)
            if view is None:
                continue
            mark = self.marks.get(sym)
            upnl += unrealized(view, mark)
            if not view.is_flat:
                positions.append(position_msg(self.namespace, self.name, view, mark,
                                              view.time_ms or self.last_close.get(sym, 0),
                                              "status"))
        open_orders = sum((1 if v.stop_order_id else 0) + len(v.take_profits)
                          for v in self.views.values())
        return StatusMsg(
            namespace=self.namespace, bot=self.name, kind=kind, phase=self.phase,
            reason=reason if reason is not None else self.reason,
            paused=not self.entries_allowed, stopped=stopped,
            strategy=self.spec.strategy.name, venue=self.spec.venue, mode=self.spec.mode.value,
            symbols=list(self.spec.symbols), interval=self.spec.interval, positions=positions,
            open_orders=open_orders, realized_pnl=self.ledger.realized, unrealized_pnl=upnl,
            pnl_day=self.ledger.pnl_day, loss_streak=self.ledger.loss_streak,
            halted_until_ms=self.halted_until_ms,
            last_bar_close_ms=dict(self.last_close), last_stream_seq=self.last_stream_seq,
            counters=self.counters.model_copy(), last_command=self.last_command,
            config_hash=self.config_hash, started_ms=self.started_ms, ts_ms=_now_ms(),
        )

    def restore(self, last: StatusMsg | None, clock_ms: int) -> None:
        """Carry over from the previous process's last status: a halt (loss streak or
        kill) with its reason and cooldown end, the losing streak, and the day's PnL if
        ``clock_ms`` (the bot clock now) is still in the same UTC day."""
        if last is None:
            return
        self.ledger.loss_streak = last.loss_streak
        day = clock_ms - clock_ms % DAY_MS
        last_bar = max(last.last_bar_close_ms.values(), default=0)
        if last_bar and last_bar - last_bar % DAY_MS == day:
            self.ledger.restore(loss_streak=last.loss_streak, pnl_day=last.pnl_day,
                                day_start_ms=day)
        if last.phase is Phase.HALTED and last.reason:
            self.halted_reason = last.reason
            self.halted_until_ms = last.halted_until_ms
        self.metrics.loss_streak.labels(self.key).set(self.ledger.loss_streak)

    # ------------------------------------------------------------------ start-up
    async def adopt(self, result: Any) -> None:
        """Take the executor's rehydration (``RehydrateResult``): publish the orders it
        placed (stops for unprotected positions) and the positions, tell risk and the
        strategies the true positions."""
        for o in result.orders:
            await self.pub.order(order_msg(self.namespace, self.name, o, None))
        for view in result.positions:
            self._set_view(view)
            t = view.time_ms or _now_ms()
            await self.pub.position(position_msg(self.namespace, self.name, view,
                                                 self.marks.get(view.symbol), t, "rehydrate"))
            await self._report_position(view, t)
        log.info("rehydrated", extra={
            "positions": {v.symbol: f"{v.side} {v.qty} stop {v.stop_price}"
                          for v in result.positions if not v.is_flat},
            "orders_placed": len(result.orders), "orders_adopted": len(result.adopted),
            "reason": result.reason})

    def warm(self, history: History) -> None:
        """Feed history to the strategies without trading: funding events and bars in
        time order, then the latest marks; finally each strategy is told the true
        position (warm-up signals are ignored)."""
        for sym, strategy in self.strategies.items():
            events: list[tuple[int, int, Any]] = [(b.close_time, 1, b)
                                                  for b in history.bars.get(sym, [])]
            events += [(f.funding_time, 0, f) for f in history.funding.get(sym, [])]
            events.sort(key=lambda e: (e[0], e[1]))
            for _, kind, ev in events:
                if kind == 1:
                    strategy.on_bar(ev)
                    self.last_close[sym] = ev.close_time
                    self.counters.warmup_bars += 1
                    self.metrics.warmup.labels(self.key, sym).inc()
                else:
                    strategy.on_funding(float(ev.funding_rate), ev.funding_time)
            mark = history.mark.get(sym)
            if mark is not None:
                self.marks[sym] = mark.mark_price
                strategy.on_mark(float(mark.mark_price), mark.event_time)
            self._tell_strategy(sym)
            log.info("warmed up", extra={
                "symbol": sym, "bars": len(history.bars.get(sym, [])),
                "from_rest": history.from_rest.get(sym, 0), "ready": strategy.ready,
                "warmup_bars": strategy.warmup_bars, "upto_seq": history.upto_seq})

    async def refresh_equity(self) -> None:
        """Equity for sizing: ``sizing.equityUsdt`` if set, else the account's USDT total
        (wallet balance, ccxt ``fetch_balance``). Kept as a cache so sizing never waits
        for a REST call on the signal path; refreshed after every closed trade."""
        if self.spec.sizing.equity_usdt is not None:
            self.equity = _d(self.spec.sizing.equity_usdt)
            return
        try:
            bal = await self.executor.exchange.fetch_balance()
            total = (bal.get("USDT") or {}).get("total")
            if total is not None:
                self.equity = Decimal(str(total))
        except Exception as exc:  # noqa: BLE001 - keep the last value; sizing refuses if None
            log.warning("cannot read the account balance for sizing; keeping %s", self.equity,
                        extra={"error": f"{type(exc).__name__}: {exc}"})

    async def close(self) -> None:
        """Stop background work (the equity refresh) before the exchange client closes."""
        if self._equity_task is not None and not self._equity_task.done():
            self._equity_task.cancel()
            await asyncio.gather(self._equity_task, return_exceptions=True)

    def _refresh_equity_soon(self) -> None:
        if self.spec.sizing.equity_usdt is not None:
            return
        if self._equity_task is None or self._equity_task.done():
            self._equity_task = asyncio.get_running_loop().create_task(self.refresh_equity())

    # ------------------------------------------------------------------ market data
    def on_mark(self, m: MarkMsg) -> None:
        """Latest mark price: unrealized PnL, and the strategy's ``on_mark``."""
        if m.symbol not in self.strategies:
            return
        self.marks[m.symbol] = m.mark_price
        self.strategies[m.symbol].on_mark(float(m.mark_price), m.event_time)

    def on_funding(self, f: FundingMsg) -> None:
        """A settled funding rate for the strategy's funding filters."""
        if f.symbol in self.strategies:
            self.strategies[f.symbol].on_funding(float(f.funding_rate), f.funding_time)

    async def on_kline(self, k: KlineMsg, headers: dict[str, str] | None = None) -> bool:
        """Process one closed bar (module docstring); False when it was already processed
        (a redelivery of a bar at or before the last one)."""
        sym = k.symbol
        if sym not in self.strategies or k.interval != self.spec.interval:
            return False
        if k.close_time <= self.last_close.get(sym, -1):
            return False
        bar = bar_from_kline(k)
        if self.halted_until_ms is not None and bar.close_time >= self.halted_until_ms:
            await self._end_streak_cooldown(bar.close_time)
        async with self.lock:
            view = self.executor.position(sym)
            synced = False
            if not view.is_flat or view.stop_order_id or view.take_profits:
                await self._sync(sym, bar.close_time)
                synced = True
            strategy = self.strategies[sym]
            signal = strategy.on_bar(bar)
            if signal is not None:
                await self._on_signal(signal, bar, headers)
            await self._trail(sym, bar)
            if not synced:
                await self._sync(sym, bar.close_time)
            self.last_close[sym] = bar.close_time
        self.counters.bars_processed += 1
        self.metrics.bars.labels(self.key, sym).inc()
        self.metrics.last_bar.labels(self.key, sym).set(bar.close_time)
        self.metrics.bar_lag.labels(self.key).observe(max(0, _now_ms() - bar.close_time))
        self._update_pnl_metrics()
        return True

    # ------------------------------------------------------------------ signals
    async def _on_signal(self, signal: Signal, bar: Bar, headers: dict[str, str] | None) -> None:
        sid = make_signal_id(signal.symbol, signal.close_time, signal.action.value)
        self.counters.signals += 1
        link_ctx = trace.get_current_span(extract_context(headers)).get_span_context()
        links = [trace.Link(link_ctx)] if link_ctx.is_valid else []
        with tracer.start_as_current_span(
            "signal", context=otel_context.Context(), links=links,
            attributes={"bot": self.key, "symbol": signal.symbol,
                        "action": signal.action.value, "signal_id": sid,
                        "bar.close_time_ms": signal.close_time},
        ) as span:
            trace_id = _trace_id(span)
            if signal.action is Action.EXIT:
                disposition, why, qty, outcome = await self._exit(signal, sid, trace_id)
            else:
                disposition, why, qty, outcome = await self._enter(signal, sid, trace_id, span)
            span.set_attribute("disposition", disposition.value)
            self._tell_strategy(signal.symbol)
            self.metrics.signals.labels(self.key, signal.symbol, signal.action.value,
                                        disposition.value).inc()
            log.info("signal %s %s: %s", signal.action.value, signal.symbol, disposition.value,
                     extra={"signal_id": sid, "reason": why, "qty": qty,
                            "price": signal.price, "stop_price": signal.stop_price})
            await self.pub.signal(SignalMsg(
                namespace=self.namespace, bot=self.name, signal_id=sid, symbol=signal.symbol,
                action=signal.action.value, strategy=signal.strategy,
                close_time_ms=signal.close_time, price=_d(signal.price),
                stop_price=_d(signal.stop_price), stop_distance=_d(signal.stop_distance),
                trail_distance=_d(signal.trail_distance),
                take_profit_r=list(signal.take_profit_r), reason=_jsonable(signal.reason),
                disposition=disposition, disposition_reason=why, quantity=qty,
                risk_outcome=outcome, trace_id=trace_id, ts_ms=_now_ms(),
            ))

    async def _exit(self, signal: Signal, sid: str, trace_id: str | None):
        sym = signal.symbol
        if self.executor.position(sym).is_flat:
            return SignalDisposition.NOTHING_TO_DO, "already flat", None, None
        res = await self._close(sym, "exit", sid, trace_id, _d(signal.price), signal.close_time)
        if res is None or res.outcome in ("rejected", "failed"):
            return (SignalDisposition.ORDER_FAILED,
                    res.reason if res is not None else "close raised", None, None)
        if res.outcome == "flat":
            return SignalDisposition.NOTHING_TO_DO, res.reason or "already flat", None, None
        self.counters.exits += 1
        return SignalDisposition.EXECUTED, "", None, None

    async def _enter(self, signal: Signal, sid: str, trace_id: str | None, span: trace.Span):
        sym = signal.symbol
        side = "long" if signal.action is Action.ENTER_LONG else "short"
        view = self.executor.position(sym)
        if not view.is_flat:
            if view.side == side:
                return SignalDisposition.NOTHING_TO_DO, f"already {side}", None, None
            # A reversal: closing the opposite position is an exit (any phase, no risk).
            res = await self._close(sym, "reverse", sid, trace_id, _d(signal.price),
                                    signal.close_time)
            if res is None or not self.executor.position(sym).is_flat:
                why = res.reason if res is not None else "close raised"
                return SignalDisposition.ORDER_FAILED, f"reverse close failed: {why}", None, None
        if not self.entries_allowed:
            return (SignalDisposition.PAUSED, f"{self.phase.value}: {self.reason}", None, None)
        ref, stop = _d(signal.price), _d(signal.stop_price)
        if stop is None:
            return SignalDisposition.SIZING_REFUSED, "signal has no stop price", None, None
        if self.equity is None:
            await self.refresh_equity()
        try:
            if self.equity is None:
                raise SizingRefused("account equity unknown (balance not readable) and "
                                    "sizing.equityUsdt not set")
            qty = size_position(
                equity_usdt=self.equity,
                risk_pct=_d(self.spec.sizing.risk_pct_per_trade),
                entry_price=ref, stop_price=stop,
                max_notional_usdt=_d(self.spec.sizing.max_position_notional_usdt),
                filters=self.executor.rules(sym).sizing_filters(),
            )
        except SizingRefused as exc:
            self.counters.sizing_refusals += 1
            return SignalDisposition.SIZING_REFUSED, exc.reason, None, None
        notional = qty * ref
        decision = await self._check(sym, side, notional, signal.close_time, sid)
        span.set_attribute("risk.outcome", decision.outcome.value)
        if not decision.outcome.approved:
            self.counters.risk_blocks += 1
            return SignalDisposition.RISK_BLOCKED, decision.reason, qty, decision.outcome.value
        before = self.views.get(sym)
        with tracer.start_as_current_span("order.entry", attributes={
                "symbol": sym, "side": side, "qty": str(qty), "signal_id": sid}) as ospan:
            try:
                res = await self.executor.open_position(EntryRequest(
                    symbol=sym, side=side, qty=qty, stop_price=stop, reference_price=ref,
                    signal_id=sid))
            except (ExecutionError, ValueError) as exc:
                ospan.record_exception(exc)
                await self._release(decision, sym)
                return (SignalDisposition.ORDER_FAILED, f"{type(exc).__name__}: {exc}", qty,
                        decision.outcome.value)
            ospan.set_attribute("outcome", res.outcome)
        ctx = otel_context.get_current()
        if res.outcome in ("opened", "unprotected"):
            self._pos_trace[sym] = _PositionTrace(ctx, trace_id, stop)
        await self._publish_orders(res.orders, trace_id)
        await self._book_fills(sym, res.fills, before, trace_id,
                               {"entry": ref, "exit": ref, "reverse": ref, "drain": ref,
                                "stop": stop}, signal.close_time)
        # Report the position first, then confirm: the reservation's room passes to the
        # position without a gap (RiskChecker.confirm).
        await self._after_change(sym, res.position, signal.close_time, "fill")
        filled = (res.entry.filled_qty * (res.entry.avg_price or ref)
                  if res.entry is not None and res.position.side == side else ZERO)
        if decision.reservation_id:
            await self._confirm(decision.reservation_id, sym, filled)
        if res.outcome == "opened":
            self.counters.entries += 1
            return SignalDisposition.EXECUTED, "", qty, decision.outcome.value
        if res.outcome == "refused" and res.entry is not None and res.entry.recovered:
            # A redelivered bar whose entry the previous process already placed.
            return SignalDisposition.NOTHING_TO_DO, res.reason, qty, decision.outcome.value
        if res.outcome == "unprotected":
            log.error("position is UNPROTECTED: no stop could be placed and the close failed; "
                      "sync retries protection on every bar", extra={"symbol": sym,
                                                                      "reason": res.reason})
        return SignalDisposition.ORDER_FAILED, f"{res.outcome}: {res.reason}", qty, \
            decision.outcome.value

    async def _check(self, sym: str, side: str, notional: Decimal, time_ms: int,
                     sid: str) -> Decision:
        rid = f"{self.key}:{sid}"
        req = CheckRequest(request_id=rid, bot=self.key, symbol=sym, side=side,
                           notional_usdt=notional, time_ms=time_ms, mode=self.spec.mode.value,
                           pool=self.spec.capital_pool)
        with tracer.start_as_current_span("risk.check", attributes={
                "symbol": sym, "notional_usdt": str(notional)}) as span:
            try:
                # asyncio.timeout, not wait_for: no extra task on the signal-to-order path.
                async with asyncio.timeout(self.risk_timeout_s):
                    decision = await self.risk.check(req)
            except TimeoutError:
                decision = Decision.block(rid, f"no risk answer within "
                                          f"{int(self.risk_timeout_s * 1000)} ms (fail closed)")
            except Exception as exc:  # noqa: BLE001 - fail closed
                decision = Decision.block(rid, f"risk check failed ({type(exc).__name__}: "
                                          f"{exc}); fail closed")
            span.set_attribute("outcome", decision.outcome.value)
        return decision

    async def _release(self, decision: Decision, sym: str) -> None:
        if decision.reservation_id:
            await self._confirm(decision.reservation_id, sym, ZERO)

    async def _confirm(self, reservation_id: str, sym: str, filled: Decimal) -> None:
        try:
            await self.risk.confirm(reservation_id, self.key, sym, filled)
        except Exception as exc:  # noqa: BLE001 - the reservation expires on its own
            log.warning("risk confirm failed", extra={"error": f"{type(exc).__name__}: {exc}"})

    # ------------------------------------------------------------------ exits, sync, trail
    async def _close(self, sym: str, purpose: str, sid: str | None, trace_id: str | None,
                     ref: Decimal | None, time_ms: int):
        before = self.views.get(sym)
        with tracer.start_as_current_span(f"order.{purpose}", attributes={"symbol": sym}):
            try:
                res = await self.executor.close_position(sym, purpose=purpose, signal_id=sid)
            except (ExecutionError, ValueError) as exc:
                log.error("close_position raised", extra={
                    "symbol": sym, "error": f"{type(exc).__name__}: {exc}"})
                return None
            await self._publish_orders(res.orders, trace_id)
            await self._book_fills(sym, res.fills, before, trace_id,
                                   {purpose: ref, "exit": ref}, time_ms)
        await self._after_change(sym, res.position, time_ms, purpose)
        return res

    async def _sync(self, sym: str, time_ms: int) -> None:
        before = self.views.get(sym)
        try:
            res = await self.executor.sync(sym)
        except (ExecutionError, ValueError) as exc:
            log.error("sync raised", extra={"symbol": sym,
                                            "error": f"{type(exc).__name__}: {exc}"})
            return
        if not res.fills and not res.orders and not res.closed:
            self._set_view(res.position)
            return
        pt = self._pos_trace.get(sym)
        ctx = pt.context if pt is not None else None
        token = otel_context.attach(ctx) if ctx is not None else None
        try:
            with tracer.start_as_current_span("position.sync", attributes={
                    "symbol": sym, "cause": res.cause}):
                refs = self._trigger_refs(before, res.orders)
                await self._publish_orders(res.orders, pt.trace_id if pt else None)
                await self._book_fills(sym, res.fills, before, pt.trace_id if pt else None,
                                       refs, time_ms)
        finally:
            if token is not None:
                otel_context.detach(token)
        log.info("sync: %s", res.cause, extra={"symbol": sym, "fills": len(res.fills),
                                               "reason": res.reason})
        await self._after_change(sym, res.position, time_ms, res.cause)

    @staticmethod
    def _trigger_refs(before: PositionView | None, orders: Iterable[OrderResult]) -> dict:
        """Reference prices of stop / take-profit fills: their trigger prices."""
        refs: dict[str, Decimal | None] = {}
        if before is not None:
            refs["stop"] = before.stop_price
            refs["trail"] = before.stop_price
        for o in orders:
            if o.stop_price is not None and o.purpose in ("stop", "trail", "take_profit"):
                refs[o.client_order_id] = o.stop_price
        return refs

    async def _trail(self, sym: str, bar: Bar) -> None:
        if not self.spec.execution.trailing or self.draining:
            return
        view = self.executor.position(sym)
        if view.is_flat or view.stop_price is None:
            return
        cand = self.strategies[sym].trail_stop(view.side, float(view.stop_price), bar)
        if cand is None:
            return
        pt = self._pos_trace.get(sym)
        token = otel_context.attach(pt.context) if pt is not None else None
        try:
            with tracer.start_as_current_span("stop.trail", attributes={
                    "symbol": sym, "from": str(view.stop_price), "to": repr(cand)}):
                try:
                    res = await self.executor.move_stop(sym, _d(cand))
                except (ExecutionError, ValueError) as exc:
                    log.error("move_stop raised", extra={
                        "symbol": sym, "error": f"{type(exc).__name__}: {exc}"})
                    return
                await self._publish_orders(res.orders, pt.trace_id if pt else None)
        finally:
            if token is not None:
                otel_context.detach(token)
        if res.outcome == "moved":
            self.counters.stop_moves += 1
            self.metrics.stop_moves.labels(self.key, sym).inc()
            self._set_view(res.position)
            await self.pub.position(position_msg(self.namespace, self.name, res.position,
                                                 self.marks.get(sym), bar.close_time,
                                                 "stop_moved"))
        elif res.outcome in ("rejected", "failed"):
            log.warning("trailing stop not moved: %s", res.reason, extra={"symbol": sym})

    async def _after_change(self, sym: str, view: PositionView, time_ms: int,
                            cause: str) -> None:
        before = self.views.get(sym)
        self._set_view(view)
        if view.is_flat:
            self._pos_trace.pop(sym, None)
            closed = self.ledger.close_open(sym, time_ms, f"{sym}-{time_ms}-flat")
            if closed is not None:
                await self._trade_closed(closed)
        if before is None or (before.side, before.qty, before.stop_price) != \
                (view.side, view.qty, view.stop_price):
            await self._report_position(view, time_ms)
            await self.pub.position(position_msg(self.namespace, self.name, view,
                                                 self.marks.get(sym), time_ms, cause))

    # ------------------------------------------------------------------ fills and PnL
    async def _publish_orders(self, orders: Iterable[OrderResult], trace_id: str | None) -> None:
        for o in orders:
            self.counters.orders += 1 if o.sent_ms is not None else 0
            self.counters.order_rejects += 1 if o.is_rejected else 0
            await self.pub.order(order_msg(self.namespace, self.name, o, trace_id))

    async def _book_fills(self, sym: str, fills: Iterable[Fill], before: PositionView | None,
                          trace_id: str | None, refs: dict, time_ms: int) -> None:
        pos = signed_qty(before) if before is not None else ZERO
        for f in fills:
            pos += f.qty if f.side == "buy" else -f.qty
            ref = refs.get(f.client_order_id or "") or refs.get(f.purpose or "")
            span = tracer.start_span("fill", attributes={
                "symbol": sym, "trade_id": f.trade_id, "price": str(f.price), "qty": str(f.qty),
                "purpose": f.purpose or "", "realized_pnl": str(f.realized_pnl)})
            span.end()
            self.counters.fills += 1
            self.metrics.fills.labels(self.key, sym).inc()
            await self.pub.fill(fill_msg(self.namespace, self.name, f, ref, trace_id))
            fee = f.fee if f.fee_asset in ("USDT", "", None) else ZERO
            closed = self.ledger.on_fill(sym, f.realized_pnl, fee, f.time_ms, pos, f.trade_id)
            if closed is not None:
                await self._trade_closed(closed)

    async def _trade_closed(self, closed: Any) -> None:
        if closed.net_pnl < 0:
            self.counters.trades_lost += 1
        elif closed.net_pnl > 0:
            self.counters.trades_won += 1
        self.metrics.loss_streak.labels(self.key).set(self.ledger.loss_streak)
        try:
            await self.risk.report_trade(self.key, closed.symbol, closed.net_pnl,
                                         closed.time_ms, self.equity)
        except Exception as exc:  # noqa: BLE001 - the service re-learns from positions
            log.warning("risk report_trade failed", extra={
                "error": f"{type(exc).__name__}: {exc}"})
        log.info("trade closed", extra={"symbol": closed.symbol, "net_pnl": closed.net_pnl,
                                        "loss_streak": self.ledger.loss_streak})
        self._refresh_equity_soon()
        if self.ledger.streak_tripped and self.halted_reason is None:
            cooldown = self.spec.risk.loss_streak_cooldown_min
            lifts = (f"entries resume after {cooldown} min of market time or on a resume "
                     "command" if cooldown else "send resume to trade again")
            self.halted_reason = (
                f"loss streak: {self.ledger.loss_streak} consecutive losing trades reached "
                f"risk.lossStreakLimit {self.ledger.loss_streak_limit}; {lifts}")
            self.halted_until_ms = closed.time_ms + cooldown * 60_000 if cooldown else None
            log.warning("entries halted", extra={"reason": self.halted_reason})
            await self.phase_changed()

    async def _end_streak_cooldown(self, now_ms: int) -> None:
        """The loss-streak halt's cooldown is over: reset the streak, entries resume."""
        self.halted_until_ms = None
        if self.halted_reason is not None and self.halted_reason.startswith("loss streak"):
            self.halted_reason = None
            self.ledger.reset_streak()
            self.metrics.loss_streak.labels(self.key).set(0)
            log.info("loss-streak cooldown over; entries resume", extra={"bar_close_ms": now_ms})
            await self.phase_changed()

    async def _report_position(self, view: PositionView, time_ms: int) -> None:
        mark = self.marks.get(view.symbol) or view.mark_price or view.entry_price or ZERO
        try:
            await self.risk.report_position(self.key, view.symbol, signed_qty(view) * mark,
                                            time_ms)
        except Exception as exc:  # noqa: BLE001 - re-sent with the next change
            log.warning("risk report_position failed", extra={
                "error": f"{type(exc).__name__}: {exc}"})

    def _set_view(self, view: PositionView) -> None:
        self.views[view.symbol] = view
        self.metrics.position(view.symbol, signed_qty(view), self.marks.get(view.symbol)
                              or view.mark_price or view.entry_price)

    def _tell_strategy(self, sym: str) -> None:
        view = self.executor.position(sym)
        self._set_view(view)
        entry = float(view.entry_price) if view.entry_price else None
        self.strategies[sym].set_position(view.side, None if view.is_flat else entry)

    def _update_pnl_metrics(self) -> None:
        upnl = sum((unrealized(v, self.marks.get(s)) for s, v in self.views.items()), ZERO)
        self.metrics.pnl(self.ledger.realized, upnl, self.ledger.pnl_day)

    # ------------------------------------------------------------------ commands
    async def apply(self, cmd: CommandMsg) -> None:
        """Apply one command (see :class:`~tradefleet.bus.fleet_messages.Command`)."""
        self.counters.commands += 1
        self.last_command = cmd.command_id
        why = f"{cmd.command.value} command" + (f" ({cmd.reason})" if cmd.reason else "") + \
            (f" by {cmd.issued_by}" if cmd.issued_by else "")
        log.info("command %s", cmd.command.value, extra={
            "command_id": cmd.command_id, "reason": cmd.reason, "issued_by": cmd.issued_by})
        if cmd.command is Command.PAUSE:
            self.paused_reason = f"paused: {why}"
        elif cmd.command is Command.RESUME:
            self.paused_reason = None
            self.halted_reason = None
            self.halted_until_ms = None
            self.ledger.reset_streak()
            self.metrics.loss_streak.labels(self.key).set(0)
        else:
            await self.drain(why, kill=cmd.command is Command.KILL)
            return
        await self.phase_changed()

    async def drain(self, why: str, *, kill: bool = False) -> None:
        """Cancel every order, close every position, report flat; then Paused (drain) or
        Halted (kill), with a reason saying whether it ended flat."""
        async with self.lock:
            self.draining = True
            await self.phase_changed()
            befores = dict(self.views)
            try:
                res = await self.executor.drain()
            except (ExecutionError, ValueError) as exc:
                res = None
                outcome = f"drain failed: {type(exc).__name__}: {exc}"
            else:
                for close in res.closes:
                    await self._publish_orders(close.orders, None)
                    await self._book_fills(close.symbol, close.fills, befores.get(close.symbol),
                                           None, {}, _now_ms())
                await self._publish_orders(res.canceled, None)
                t = max(self.last_close.values(), default=_now_ms())
                for view in res.positions:
                    await self._after_change(view.symbol, view, t, "drain")
                for sym in self.strategies:
                    self._tell_strategy(sym)
                outcome = ("drained: flat, no open orders" if res.flat else
                           f"drain incomplete: {', '.join(res.remaining)} not flat "
                           f"({res.reason})")
            self.draining = False
            if kill:
                self.halted_reason = f"killed: {why}; {outcome}"
            else:
                self.paused_reason = f"{outcome} ({why})"
            log.info(outcome, extra={"kill": kill})
        await self.phase_changed()


def _jsonable(reason: Any) -> dict[str, Any]:
    """A strategy's reason mapping with numpy/float values made JSON-safe."""
    out: dict[str, Any] = {}
    for k, v in dict(reason).items():
        if isinstance(v, (str, int, bool)) or v is None:
            out[str(k)] = v
        elif isinstance(v, float):
            out[str(k)] = v if math.isfinite(v) else None
        else:
            try:
                out[str(k)] = float(v)
            except (TypeError, ValueError):
                out[str(k)] = str(v)
    return out


__all__ = ["Trader"]
