"""Fast JSON responses (orjson) for the REST API."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from fastapi.responses import Response

__all__ = ["json_response", "dumps"]


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def dumps(obj: Any) -> bytes:
    """Serialize ``obj`` to JSON bytes; Decimals become strings (Binance sends numbers as text)."""
    return orjson.dumps(obj, default=_default)


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A ``application/json`` response of ``obj``."""
    return Response(dumps(obj), status_code=status, media_type="application/json",
                    headers=headers)
