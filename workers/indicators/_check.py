"""Constructor argument checks shared by the indicators (bad input names the field)."""

from __future__ import annotations

import math


def check_period(name: str, value: object, minimum: int = 1) -> int:
    """Return ``value`` as an int period, or raise ValueError naming ``name`` and the value."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer number of bars, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum} bars, got {value}")
    return value


def check_positive(name: str, value: object) -> float:
    """Return ``value`` as a finite float > 0, or raise ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)
