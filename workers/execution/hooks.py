"""Callbacks the executor calls so the bot can count what happens (metrics, logs).

The executor never touches a Prometheus registry: the bot passes an object with these
methods and feeds its own ``order_latency_ms`` histogram and reject counter (seed metric
names; ``order_reject_rate`` is derived from them). Hooks must be quick and must not raise;
an exception from a hook is logged and swallowed so it can never fail an order.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["ExecutionHooks", "NullHooks"]


@runtime_checkable
class ExecutionHooks(Protocol):
    """What the executor reports. All methods are synchronous and return None."""

    def order_latency(self, symbol: str, purpose: str, latency_ms: float) -> None:
        """An order request got its ACK after ``latency_ms`` (host monotonic clock, ms).
        Called once per acknowledged order (seed histogram ``order_latency_ms``)."""

    def order_rejected(self, symbol: str, purpose: str, code: int | None, message: str) -> None:
        """The exchange refused an order (Binance ``code``, e.g. -2021) or it failed
        without an answer after every retry (``code`` None)."""

    def request_retried(self, symbol: str, operation: str, attempt: int, delay_ms: float,
                        error: str) -> None:
        """A request failed with a transient error (timeout, 429, 5xx) and will be tried
        again after ``delay_ms``; ``attempt`` is the number of the failed attempt (1-based)."""


class NullHooks:
    """Hooks that do nothing (the default); subclass and override what you need."""

    def order_latency(self, symbol: str, purpose: str, latency_ms: float) -> None:
        return None

    def order_rejected(self, symbol: str, purpose: str, code: int | None, message: str) -> None:
        return None

    def request_retried(self, symbol: str, operation: str, attempt: int, delay_ms: float,
                        error: str) -> None:
        return None
