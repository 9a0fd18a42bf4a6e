"""Exponential backoff with jitter for transient exchange errors.

Delay before retry ``n`` (1-based) is "equal jitter" from the AWS Architecture Blog,
"Exponential Backoff And Jitter" (2015)::

    d = min(max_delay_ms, base_delay_ms × 2^(n−1));   delay = d/2 + uniform(0, d/2)

so retries spread out (no thundering herd after an outage) but never collapse to zero.
A rate-limit answer (HTTP 429/418) waits at least ``rate_limit_delay_ms``.

:func:`retry_call` retries idempotent requests (queries, cancels). Order *placement* is
not retried blindly: :mod:`.orders` looks the order up under its client order id first.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import ccxt.async_support as ccxt

from .errors import ExchangeRequestError, ExecutionError, binance_error, is_rate_limited, is_transient
from .hooks import ExecutionHooks

__all__ = ["RetryPolicy", "retry_call", "RetriesExhausted"]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry.

    Attributes:
        max_retries: retries after the first attempt (``execution.maxRetries``); 0 = none.
        base_delay_ms, max_delay_ms: backoff base and cap, ms.
        rate_limit_delay_ms: minimum wait after HTTP 429/418, ms.
        rng: random source of the jitter (seed it for reproducible tests).
    """

    max_retries: int = 3
    base_delay_ms: float = 100.0
    max_delay_ms: float = 2_000.0
    rate_limit_delay_ms: float = 500.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.max_retries, int) or not 0 <= self.max_retries <= 20:
            raise ValueError(f"max_retries must be an integer in 0..20, got {self.max_retries!r}")
        if not 0 < self.base_delay_ms <= self.max_delay_ms:
            raise ValueError(f"need 0 < base_delay_ms <= max_delay_ms, got "
                             f"{self.base_delay_ms} and {self.max_delay_ms}")
        if self.rate_limit_delay_ms < 0:
            raise ValueError(f"rate_limit_delay_ms must be >= 0, got {self.rate_limit_delay_ms}")

    @property
    def attempts(self) -> int:
        """Total attempts: 1 + ``max_retries``."""
        return 1 + self.max_retries

    def delay_ms(self, retry: int, exc: BaseException | None = None) -> float:
        """Wait before retry number ``retry`` (1-based), ms."""
        d = min(self.max_delay_ms, self.base_delay_ms * (2 ** (retry - 1)))
        delay = d / 2 + self.rng.uniform(0, d / 2)
        if exc is not None and is_rate_limited(exc):
            delay = max(delay, self.rate_limit_delay_ms)
        return delay


class RetriesExhausted(ExecutionError):
    """Every attempt failed with a transient error (the exchange is unreachable, times out
    or keeps answering 429/5xx); ``last`` is the last error. Executor calls that must read
    the exchange (sync, close, drain, rehydrate) raise it; try again later."""

    def __init__(self, operation: str, attempts: int, last: BaseException) -> None:
        super().__init__(f"{operation}: no answer after {attempts} attempt(s): "
                         f"{type(last).__name__}: {last}")
        self.operation = operation
        self.attempts = attempts
        self.last = last


async def retry_call(fn: Callable[[], Awaitable[T]], *, policy: RetryPolicy,
                     hooks: ExecutionHooks, symbol: str, operation: str) -> T:
    """Await ``fn()`` until it returns, retrying transient errors with backoff.

    Final ccxt errors (``ExchangeError`` other than -1001/-1007) raise
    :class:`~.errors.ExchangeRequestError` at once (Binance code and message); after
    ``policy.attempts`` transient failures raises :class:`RetriesExhausted`. Both are
    :class:`~.errors.ExecutionError`. Only for idempotent requests.
    """
    for attempt in range(1, policy.attempts + 1):
        try:
            return await fn()
        except Exception as exc:
            if not is_transient(exc):
                if isinstance(exc, ccxt.BaseError):
                    code, msg = binance_error(exc)
                    raise ExchangeRequestError(operation, code, msg) from exc
                raise
            if attempt == policy.attempts:
                raise RetriesExhausted(operation, attempt, exc) from exc
            delay = policy.delay_ms(attempt, exc)
            _notify(hooks, symbol, operation, attempt, delay, exc)
            await asyncio.sleep(delay / 1000)
    raise AssertionError("unreachable")  # pragma: no cover


def _notify(hooks: ExecutionHooks, symbol: str, operation: str, attempt: int, delay: float,
            exc: BaseException) -> None:
    try:
        hooks.request_retried(symbol, operation, attempt, delay, f"{type(exc).__name__}: {exc}")
    except Exception:  # a hook must never fail an order
        import logging

        logging.getLogger("tradefleet.execution").exception("request_retried hook failed")
