"""Fault injection for the REST API: latency, HTTP 429 / 5XX and order rejects.

Rates are probabilities in [0, 1] drawn per request from a seeded RNG, so a test that sets
``seed`` gets the same sequence every run. Bodies are Binance-shaped:

* 429: ``{"code": -1003, "msg": "Too many requests; ..."}`` with a ``Retry-After`` header
  (seconds), as Binance sends when the request-weight limit is hit;
* 5XX: HTTP 503 ``{"code": -1001, "msg": "Internal error; ..."}`` (request not executed);
* order reject: HTTP 400 ``{"code": -2010, "msg": "NEW_ORDER_REJECTED"}`` on new orders
  (``POST /fapi/v1/order`` and ``/fapi/v1/algoOrder``), with no state change.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Faults"]

_RATES = ("order_reject_rate", "http_429_rate", "http_5xx_rate")


@dataclass
class Faults:
    """Current fault settings; all zero means a well-behaved exchange."""

    order_reject_rate: float = 0.0
    http_429_rate: float = 0.0
    http_5xx_rate: float = 0.0
    latency_ms: float = 0.0
    retry_after_s: int = 1
    seed: int | None = None
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def update(self, values: dict) -> None:
        """Apply a partial update (admin API body); raises ValueError naming a bad field."""
        known = set(_RATES) | {"latency_ms", "retry_after_s", "seed"}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown fault field(s) {sorted(unknown)}; known: {sorted(known)}")
        new = {k: getattr(self, k) for k in known}
        for name in _RATES:
            if name in values:
                v = values[name]
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                    raise ValueError(f"{name} must be a number in [0, 1], got {v!r}")
                new[name] = float(v)
        if "latency_ms" in values:
            v = values["latency_ms"]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 60_000:
                raise ValueError(f"latency_ms must be a number of ms in [0, 60000], got {v!r}")
            new["latency_ms"] = float(v)
        if "retry_after_s" in values:
            v = values["retry_after_s"]
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 3600:
                raise ValueError(f"retry_after_s must be an integer in [0, 3600], got {v!r}")
            new["retry_after_s"] = v
        if "seed" in values:
            v = values["seed"]
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise ValueError(f"seed must be an integer or null, got {v!r}")
            new["seed"] = v
            self._rng = random.Random(v)
        for k, v in new.items():
            setattr(self, k, v)

    def clear(self) -> None:
        """Back to no faults (the RNG keeps its seed)."""
        self.order_reject_rate = self.http_429_rate = self.http_5xx_rate = 0.0
        self.latency_ms = 0.0

    def hit(self, rate: float) -> bool:
        """One draw: True with probability ``rate``."""
        return rate > 0 and (rate >= 1 or self._rng.random() < rate)

    @property
    def active(self) -> bool:
        """True when any fault can fire."""
        return bool(self.order_reject_rate or self.http_429_rate or self.http_5xx_rate
                    or self.latency_ms)

    def to_dict(self) -> dict:
        """Settings as the admin API reports them."""
        return {"order_reject_rate": self.order_reject_rate, "http_429_rate": self.http_429_rate,
                "http_5xx_rate": self.http_5xx_rate, "latency_ms": self.latency_ms,
                "retry_after_s": self.retry_after_s, "seed": self.seed}
