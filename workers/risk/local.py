"""In-process RiskChecker: the shared rules over a private FleetState.

Used by a bot running without the shared risk service and by the backtester (several bots
in one process share one instance, so the portfolio rules still apply across them).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from tradefleet.api.riskpolicy import RiskPolicySpec
from tradefleet.workers.risk import rules
from tradefleet.workers.risk.protocol import CheckRequest, Decision
from tradefleet.workers.risk.state import FleetState


class LocalRiskChecker:
    """RiskChecker over in-memory state; safe for many coroutines (one asyncio lock)."""

    def __init__(self, policy: RiskPolicySpec, state: FleetState | None = None):
        self.policy = policy
        self.state = state or FleetState()
        self._lock = asyncio.Lock()

    async def check(self, request: CheckRequest) -> Decision:
        async with self._lock:
            return rules.evaluate(self.policy, self.state, request)

    async def confirm(self, reservation_id: str, bot: str, symbol: str,
                      filled_notional_usdt: Decimal) -> None:
        async with self._lock:
            rules.confirm(self.policy, self.state, reservation_id, bot)

    async def report_position(self, bot: str, symbol: str, notional_usdt: Decimal,
                              time_ms: int) -> None:
        async with self._lock:
            rules.record_position(self.policy, self.state, bot, symbol, notional_usdt, time_ms)

    async def report_trade(self, bot: str, symbol: str, realized_pnl_usdt: Decimal,
                           time_ms: int, equity_usdt: Decimal | None = None) -> None:
        async with self._lock:
            rules.record_trade(self.policy, self.state, bot, realized_pnl_usdt, equity_usdt,
                               time_ms)
