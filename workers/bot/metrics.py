"""Prometheus metrics of one bot worker (own registry; served on ``--metrics-port``).

Names from the seeds where they exist (000/001: ``bot_up``, ``order_latency_ms``,
``pnl_day_usdt``; DESIGN.md: ``order_reject_rate``, ``pnl_realized``, ``pnl_unrealized``).
Every series carries ``bot="{namespace}/{name}"`` so one Grafana query covers the fleet.

=================================  =========  ==============================================
metric                             type       meaning
=================================  =========  ==============================================
``bot_up``                         gauge      1 while the worker consumes bars, 0 otherwise
``bot_phase{phase}``               gauge      1 for the current phase (Running, Paused...)
``order_latency_ms{purpose}``      histogram  REST request → ACK of each order, ms
``orders_total{purpose,status}``   counter    orders sent, by purpose and ACK status
``order_rejects_total{purpose}``   counter    orders the exchange refused or did not answer
``order_reject_rate``              gauge      rejects / orders since start (0..1)
``pnl_realized``                   gauge      realized PnL net of fees since start, USDT
``pnl_unrealized``                 gauge      unrealized PnL at mark, USDT
``pnl_day_usdt``                   gauge      realized PnL net of fees since 00:00 UTC, USDT
``position_qty{symbol}``           gauge      signed position, base units (short < 0)
``position_notional_usdt{symbol}`` gauge      signed notional at mark, USDT
``bars_processed_total{symbol}``   counter    closed bars through the strategy (not warm-up)
``warmup_bars_total{symbol}``      counter    history bars fed without trading
``signals_total{symbol,action,disposition}`` counter  signals and what was done with them
``fills_total{symbol}``            counter    trades (executions) of the bot's orders
``stop_moves_total{symbol}``       counter    trailing stop replacements (tighter only)
``loss_streak``                    gauge      consecutive losing trades now
``last_bar_close_time_ms{symbol}`` gauge      close time of the last processed bar, UTC ms
``bar_lag_ms``                     histogram  wall clock at processing − bar close time, ms
=================================  =========  ==============================================
"""

from __future__ import annotations

from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tradefleet.bus.fleet_messages import Phase
from tradefleet.telemetry import new_registry

# ms buckets from sub-millisecond exsim ACKs to multi-second timeouts on real venues.
LATENCY_BUCKETS_MS = (0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 250, 500, 1000,
                      2500, 5000, 10000)
LAG_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 250, 500, 1000, 5000, 30000, 60000, 300000)


class BotMetrics:
    """The metrics of one bot; ``registry`` is what :func:`serve_metrics` exposes."""

    def __init__(self, bot: str, registry: CollectorRegistry | None = None) -> None:
        self.bot = bot
        self.registry = registry or new_registry()
        r = self.registry
        self.up = Gauge("bot_up", "1 while the bot worker consumes bars", ["bot"], registry=r)
        self.phase = Gauge("bot_phase", "1 for the bot's current phase", ["bot", "phase"],
                           registry=r)
        self.order_latency = Histogram("order_latency_ms", "Order REST request to ACK, ms",
                                       ["bot", "purpose"], buckets=LATENCY_BUCKETS_MS,
                                       registry=r)
        self.orders = Counter("orders", "Orders sent, by purpose and ACK status",
                              ["bot", "purpose", "status"], registry=r)
        self.rejects = Counter("order_rejects", "Orders refused by the exchange or unanswered",
                               ["bot", "purpose"], registry=r)
        self.reject_rate = Gauge("order_reject_rate", "Rejected / sent orders since start",
                                 ["bot"], registry=r)
        self.pnl_realized = Gauge("pnl_realized", "Realized PnL net of fees since start, USDT",
                                  ["bot"], registry=r)
        self.pnl_unrealized = Gauge("pnl_unrealized", "Unrealized PnL at mark, USDT", ["bot"],
                                    registry=r)
        self.pnl_day = Gauge("pnl_day_usdt", "Realized PnL net of fees since 00:00 UTC, USDT",
                             ["bot"], registry=r)
        self.position_qty = Gauge("position_qty", "Signed position, base units",
                                  ["bot", "symbol"], registry=r)
        self.position_notional = Gauge("position_notional_usdt", "Signed notional at mark, USDT",
                                       ["bot", "symbol"], registry=r)
        self.bars = Counter("bars_processed", "Closed bars processed by the strategy",
                            ["bot", "symbol"], registry=r)
        self.warmup = Counter("warmup_bars", "History bars fed to the strategy without trading",
                              ["bot", "symbol"], registry=r)
        self.signals = Counter("signals", "Strategy signals by action and disposition",
                               ["bot", "symbol", "action", "disposition"], registry=r)
        self.fills = Counter("fills", "Trades of the bot's orders", ["bot", "symbol"], registry=r)
        self.stop_moves = Counter("stop_moves", "Trailing stop replacements", ["bot", "symbol"],
                                  registry=r)
        self.loss_streak = Gauge("loss_streak", "Consecutive losing trades", ["bot"], registry=r)
        self.last_bar = Gauge("last_bar_close_time_ms", "Close time of the last processed bar",
                              ["bot", "symbol"], registry=r)
        self.bar_lag = Histogram("bar_lag_ms", "Wall clock at processing minus bar close, ms",
                                 ["bot"], buckets=LAG_BUCKETS_MS, registry=r)
        self._sent = 0
        self._rejected = 0
        self.up.labels(bot).set(0)
        self.reject_rate.labels(bot).set(0)
        self.set_phase(Phase.PENDING)

    def set_phase(self, phase: Phase) -> None:
        """Mark ``phase`` current (1) and every other phase 0."""
        for p in Phase:
            self.phase.labels(self.bot, p.value).set(1 if p is phase else 0)

    def order(self, purpose: str, status: str, latency_ms: float | None) -> None:
        """Count one order with its ACK ``status`` (``rejected``/``failed`` count as rejects)."""
        self.orders.labels(self.bot, purpose, status).inc()
        self._sent += 1
        if status in ("rejected", "failed"):
            self.rejects.labels(self.bot, purpose).inc()
            self._rejected += 1
        if latency_ms is not None:
            self.order_latency.labels(self.bot, purpose).observe(latency_ms)
        self.reject_rate.labels(self.bot).set(self._rejected / self._sent)

    def pnl(self, realized: Decimal, unrealized: Decimal, day: Decimal) -> None:
        """Set the three PnL gauges (USDT)."""
        self.pnl_realized.labels(self.bot).set(float(realized))
        self.pnl_unrealized.labels(self.bot).set(float(unrealized))
        self.pnl_day.labels(self.bot).set(float(day))

    def position(self, symbol: str, signed_qty: Decimal, mark: Decimal | None) -> None:
        """Set the position gauges of ``symbol`` (signed base units; notional at ``mark``)."""
        self.position_qty.labels(self.bot, symbol).set(float(signed_qty))
        notional = signed_qty * mark if mark is not None else Decimal(0)
        self.position_notional.labels(self.bot, symbol).set(float(notional))


__all__ = ["LATENCY_BUCKETS_MS", "BotMetrics"]
