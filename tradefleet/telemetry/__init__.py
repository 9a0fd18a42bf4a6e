"""Telemetry shared by every component: JSON logs, Prometheus metrics and health, traces.

- :mod:`tradefleet.telemetry.logging`: ``setup_logging(component, level)``, redaction.
- :mod:`tradefleet.telemetry.metrics`: ``serve_metrics(registry, health, port=0)``.
- :mod:`tradefleet.telemetry.tracing`: ``setup_tracing``, ``inject_headers``,
  ``extract_context``, ``consumer_span``.
"""

from tradefleet.telemetry.logging import setup_logging
from tradefleet.telemetry.metrics import Health, MetricsServer, new_registry, serve_metrics
from tradefleet.telemetry.tracing import (
    consumer_span,
    extract_context,
    get_tracer,
    inject_headers,
    setup_tracing,
)

__all__ = [
    "Health",
    "MetricsServer",
    "consumer_span",
    "extract_context",
    "get_tracer",
    "inject_headers",
    "new_registry",
    "serve_metrics",
    "setup_logging",
    "setup_tracing",
]
