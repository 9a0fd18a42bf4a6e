"""Pre-trade risk: one set of rules for the whole fleet.

``protocol`` holds the request and decision messages of ``risk.check``; ``state`` the
fleet's exposure, reservations and daily guards; ``rules`` the pure evaluation of a request
against a RiskPolicy; ``local`` an in-process checker (used by a bot without the shared
service, and by the backtester); the NATS service and client build on the same rules.
"""

from tradefleet.workers.risk.local import LocalRiskChecker
from tradefleet.workers.risk.protocol import CheckRequest, Decision, Outcome, RiskChecker
from tradefleet.workers.risk.rules import evaluate
from tradefleet.workers.risk.state import FleetState

__all__ = ["LocalRiskChecker", "CheckRequest", "Decision", "FleetState", "Outcome", "RiskChecker", "evaluate"]
