"""Request parameters as Binance reads them: form body and query string, query wins.

Source: Binance USDⓈ-M "General Info" → "General information on Endpoints": parameters may
be sent in the query string or an ``application/x-www-form-urlencoded`` body; when a name is
in both, the query string value is used. Malformed values get -1100 (illegal characters,
with Binance's legal-range pattern) or -1102 (mandatory parameter missing).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl

from .errors import ApiError

__all__ = ["parse_params", "Params"]

_DECIMAL = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_DECIMAL_RANGE = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
_INT = re.compile(r"^-?[0-9]{1,20}$")
_INT_RANGE = r"^[0-9]{1,20}$"


def parse_params(query: str, body: str) -> "Params":
    """Merge the form ``body`` and the ``query`` string (query wins) into :class:`Params`."""
    merged: dict[str, str] = {}
    if body:
        merged.update(parse_qsl(body, keep_blank_values=True))
    if query:
        merged.update(parse_qsl(query, keep_blank_values=True))
    return Params(merged)


class Params(dict):
    """``dict[str, str]`` of request parameters with typed, Binance-erroring getters."""

    def required(self, name: str) -> str:
        """The non-empty value of ``name``; ApiError -1102 when missing or empty."""
        value = self.get(name)
        if value is None or value == "":
            raise ApiError(-1102, name)
        return value

    def optional(self, name: str) -> str | None:
        """The value of ``name``, or None when missing or empty."""
        value = self.get(name)
        return None if value == "" else value

    def decimal(self, name: str, required: bool = False) -> Decimal | None:
        """A non-negative decimal (``^[0-9]{1,20}(\\.[0-9]{1,20})?$``); ApiError -1100 if not."""
        raw = self.required(name) if required else self.optional(name)
        if raw is None:
            return None
        if not _DECIMAL.match(raw):
            raise ApiError(-1100, name, _DECIMAL_RANGE)
        try:
            return Decimal(raw)
        except InvalidOperation:  # pragma: no cover - the regex already rejects these
            raise ApiError(-1100, name, _DECIMAL_RANGE) from None

    def integer(self, name: str, required: bool = False) -> int | None:
        """An integer (ids, times in ms, limits); ApiError -1100 when not digits."""
        raw = self.required(name) if required else self.optional(name)
        if raw is None:
            return None
        if not _INT.match(raw):
            raise ApiError(-1100, name, _INT_RANGE)
        return int(raw)

    def boolean(self, name: str, default: bool = False) -> bool:
        """``"true"``/``"false"`` (any case); ApiError -1130 for anything else."""
        raw = self.optional(name)
        if raw is None:
            return default
        low = raw.lower()
        if low == "true":
            return True
        if low == "false":
            return False
        raise ApiError(-1130, name)

    def limit(self, name: str = "limit", default: int = 500, maximum: int = 1000) -> int:
        """A positive page size, default ``default``; ApiError -1130 when 0 or > ``maximum``."""
        value = self.integer(name)
        if value is None:
            return default
        if not 0 < value <= maximum:
            raise ApiError(-1130, name)
        return value
