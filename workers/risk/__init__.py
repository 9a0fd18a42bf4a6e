"""Pre-trade risk: one set of rules for the whole fleet.

``protocol`` holds the request, report and decision messages; ``state`` the fleet's
exposure, reservations and daily guards; ``rules`` the pure evaluation of a request
against a RiskPolicy; ``local`` an in-process checker (used by a bot without the shared
service, and by the backtester). The shared NATS service builds on the same rules:
``service`` (``tradefleet risk``: RiskService), ``client`` (RiskServiceClient, the bot
side, fail closed), ``store`` (state in KV ``risk-state``), ``policy`` (file and KV
``risk-policy``), ``locks`` (capital-pool locks in KV ``locks``), ``commands`` (kill,
flatten, auto-close to ``fleet.cmd.*``), ``metrics``. Those are imported from their modules
(they pull in NATS and telemetry, which the backtester does not need).
"""

from tradefleet.workers.risk.local import LocalRiskChecker
from tradefleet.workers.risk.protocol import CheckRequest, Decision, Outcome, RiskChecker
from tradefleet.workers.risk.rules import evaluate
from tradefleet.workers.risk.state import FleetState

__all__ = ["LocalRiskChecker", "CheckRequest", "Decision", "FleetState", "Outcome", "RiskChecker", "evaluate"]
