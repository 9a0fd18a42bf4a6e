"""Prometheus metrics of the risk service (``/metrics``).

Counters and the latency histogram are updated on the hot path; exposure, reservations,
halts and the kill switch are read from the service's state only when Prometheus scrapes
(a custom collector), so a check pays nothing for them.

===================================  =========  ============================================
metric                               type       labels / meaning
===================================  =========  ============================================
risk_checks_total                    counter    checks answered (any outcome)
risk_decisions_total                 counter    ``outcome``: allow, soft_allow, block
risk_check_latency_seconds           histogram  receipt of the request to the reply sent
risk_reports_total                   counter    ``kind``: confirm, position, trade
risk_requests_rejected_total         counter    ``subject``: malformed requests (dead-lettered)
risk_state_commits_total             counter    KV writes of the state (one per batch)
risk_state_conflicts_total           counter    compare-and-set conflicts (another replica)
risk_state_commit_seconds            histogram  one KV compare-and-set write
risk_halts_total                     counter    DailyGuard halts
risk_auto_close_total                counter    auto-close instructions sent
risk_kill_commands_total             counter    kill commands sent to bots
risk_exposure_usdt                   gauge      ``scope`` symbol|cluster|total, ``name``;
                                                gross notional incl. reservations, USDT
risk_reservations                    gauge      live reservations
risk_halted_bots                     gauge      bots halted now
risk_kill_switch                     gauge      1 while the policy's killSwitch is on
risk_policy_loaded                   gauge      1 when a RiskPolicy is loaded (else all block)
===================================  =========  ============================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from tradefleet.api.riskpolicy import RiskPolicySpec
from tradefleet.workers.risk.state import FleetState

LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1.0)


class _StateCollector(Collector):
    """Exposure gauges computed from the service's state at scrape time."""

    def __init__(self, read: Callable[[], tuple[FleetState | None, RiskPolicySpec | None, int]]):
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state, policy, now_ms = self._read()
        exposure = GaugeMetricFamily("risk_exposure_usdt", "Gross notional held or reserved, USDT",
                                     labels=["scope", "name"])
        reservations = GaugeMetricFamily("risk_reservations", "Live reservations")
        halted = GaugeMetricFamily("risk_halted_bots", "Bots halted now")
        kill = GaugeMetricFamily("risk_kill_switch", "1 while the RiskPolicy kill switch is on")
        loaded = GaugeMetricFamily("risk_policy_loaded", "1 when a RiskPolicy is loaded")
        loaded.add_metric([], 1.0 if policy is not None else 0.0)
        kill.add_metric([], 1.0 if policy is not None and policy.kill_switch else 0.0)
        if state is not None:
            by_symbol: dict[str, Decimal] = {}
            for (_, symbol), n in state.positions.items():
                by_symbol[symbol] = by_symbol.get(symbol, Decimal(0)) + abs(n)
            live = [r for r in state.reservations.values() if r.expires_ms > now_ms]
            for r in live:
                by_symbol[r.symbol] = by_symbol.get(r.symbol, Decimal(0)) + r.notional_usdt
            for symbol, n in sorted(by_symbol.items()):
                exposure.add_metric(["symbol", symbol], float(n))
            exposure.add_metric(["total", "total"], float(sum(by_symbol.values(), Decimal(0))))
            for c in policy.correlation_clusters if policy is not None else []:
                exposure.add_metric(["cluster", c.name], float(sum(
                    (n for s, n in by_symbol.items() if s in c.symbols), Decimal(0))))
            reservations.add_metric([], float(len(live)))
            halted.add_metric([], float(len(state.halts)))
        yield from (exposure, reservations, halted, kill, loaded)


class RiskMetrics:
    """The risk service's metrics, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry,
                 read_state: Callable[[], tuple[FleetState | None, RiskPolicySpec | None, int]]):
        self.checks = Counter("risk_checks", "Checks answered", registry=registry)
        self.decisions = Counter("risk_decisions", "Decisions by outcome", ["outcome"],
                                 registry=registry)
        self.latency = Histogram("risk_check_latency_seconds", "Check receipt to reply, seconds",
                                 buckets=LATENCY_BUCKETS, registry=registry)
        self.reports = Counter("risk_reports", "Reports booked", ["kind"], registry=registry)
        self.rejected = Counter("risk_requests_rejected", "Malformed requests (dead-lettered)",
                                ["subject"], registry=registry)
        self.commits = Counter("risk_state_commits", "State writes to KV", registry=registry)
        self.conflicts = Counter("risk_state_conflicts", "State compare-and-set conflicts",
                                 registry=registry)
        self.commit_seconds = Histogram("risk_state_commit_seconds", "One KV state write, seconds",
                                        buckets=LATENCY_BUCKETS, registry=registry)
        self.halts = Counter("risk_halts", "DailyGuard halts", registry=registry)
        self.auto_close = Counter("risk_auto_close", "Auto-close instructions sent",
                                  registry=registry)
        self.kill_commands = Counter("risk_kill_commands", "Kill commands sent to bots",
                                     registry=registry)
        self._outcome = {o: self.decisions.labels(outcome=o) for o in ("allow", "soft_allow", "block")}
        self._report = {k: self.reports.labels(kind=k) for k in ("confirm", "position", "trade")}
        registry.register(_StateCollector(read_state))

    def decision(self, outcome: str, latency_s: float) -> None:
        """Count one answered check and its latency."""
        self.checks.inc()
        self._outcome[outcome].inc()
        self.latency.observe(latency_s)

    def report(self, kind: str) -> None:
        self._report[kind].inc()
