"""Public REST market data of a Binance USDⓈ-M compatible venue, for back-fills.

Only unsigned endpoints (security type NONE), so no key is needed:

- ``GET /fapi/v1/time`` → ``{"serverTime": ms}``: the venue clock, to tell closed bars from
  the forming one;
- ``GET /fapi/v1/klines?symbol&interval&startTime&endTime&limit`` (limit ≤ 1500);
- ``GET /fapi/v1/fundingRate?symbol&startTime&endTime&limit`` (limit ≤ 1000).

Retries with the feed's backoff on HTTP 429 (request weight exceeded) and 418 (IP banned
after ignoring 429s), honouring ``Retry-After``, on 5XX and on transport errors; other
answers raise :class:`RestError` at once (Binance "General Info": limits, error codes).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx

from .config import Backoff

log = logging.getLogger(__name__)

MAX_RETRY_AFTER_S = 120.0


class RestError(RuntimeError):
    """A REST request failed for good (after retries, or with a non-retryable answer)."""


class RestClient:
    """Async client of the public endpoints above. Close with :meth:`aclose`."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0, retries: int = 4,
                 backoff: Backoff | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff = backoff or Backoff(min_s=0.5, max_s=10.0)
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s,
                                       headers={"User-Agent": "tradefleet-marketdata"})

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _get(self, path: str, params: dict[str, Any]) -> Any:
        params = {k: v for k, v in params.items() if v is not None}
        attempt = 0
        while True:
            try:
                resp = await self._http.get(path, params=params)
            except httpx.TransportError as exc:
                problem, wait = f"{type(exc).__name__}: {exc}", None
            else:
                if resp.status_code == 200:
                    try:
                        return resp.json()
                    except ValueError:
                        raise RestError(f"GET {path} {params}: answer is not JSON: "
                                        f"{resp.text[:200]!r}") from None
                problem = f"HTTP {resp.status_code} {resp.text[:200]}"
                if resp.status_code not in (418, 429) and resp.status_code < 500:
                    raise RestError(f"GET {self.base_url}{path} {params}: {problem}")
                wait = _retry_after(resp)
            if attempt >= self.retries:
                raise RestError(f"GET {self.base_url}{path} {params}: {problem} "
                                f"(gave up after {attempt + 1} attempts)")
            delay = wait if wait is not None else self.backoff.delay(attempt)
            log.warning("REST request failed; retrying", extra={
                "path": path, "params": params, "problem": problem, "retry_in_s": round(delay, 3),
                "attempt": attempt + 1})
            await asyncio.sleep(delay)
            attempt += 1

    async def server_time(self) -> int:
        """The venue's clock (ms UTC), corrected by half the round trip."""
        sent = time.time()
        body = await self._get("/fapi/v1/time", {})
        got = time.time()
        server = body.get("serverTime") if isinstance(body, dict) else None
        if isinstance(server, bool) or not isinstance(server, int):
            raise RestError(f"GET /fapi/v1/time: no integer serverTime in {body!r:.200}")
        # serverTime was read somewhere during the round trip; assume its middle.
        return server + int((got - sent) * 500)

    async def klines(self, symbol: str, interval: str, *, start_time: int | None = None,
                     end_time: int | None = None, limit: int = 1500) -> list[Any]:
        """Kline rows with ``start_time <= openTime <= end_time`` (ms), oldest first; without
        ``start_time`` the newest ``limit``. The newest row may be the forming bar."""
        body = await self._get("/fapi/v1/klines", {
            "symbol": symbol, "interval": interval, "startTime": start_time,
            "endTime": end_time, "limit": limit})
        if not isinstance(body, list):
            raise RestError(f"GET /fapi/v1/klines {symbol} {interval}: expected an array, "
                            f"got {body!r:.200}")
        return body

    async def funding_rates(self, symbol: str, *, start_time: int, end_time: int,
                            limit: int = 1000) -> list[Any]:
        """Settled funding events of ``symbol`` with ``start_time <= fundingTime <= end_time``
        (ms), oldest first."""
        body = await self._get("/fapi/v1/fundingRate", {
            "symbol": symbol, "startTime": start_time, "endTime": end_time, "limit": limit})
        if not isinstance(body, list):
            raise RestError(f"GET /fapi/v1/fundingRate {symbol}: expected an array, "
                            f"got {body!r:.200}")
        return body


def _retry_after(resp: httpx.Response) -> float | None:
    raw = resp.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return min(max(float(raw), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        return None
