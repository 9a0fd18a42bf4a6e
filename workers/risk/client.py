"""The bot side of the shared risk service: a RiskChecker over NATS request/reply.

``check`` fails closed: no answer within the timeout, no responders, an error reply or
anything unexpected is a BLOCK Decision whose reason says why; it never raises (except
``asyncio.CancelledError``, which is the caller's own cancellation).

Reports (``confirm``, ``report_position``, ``report_trade``) are queued in order and sent
at once; one that gets no acknowledgement stays queued and is re-sent before the next
check, and until every queued report is acknowledged ``check`` answers BLOCK: the service
must know a bot's latest positions and losses before it approves more exposure. Re-sending
is harmless: positions are absolute, a confirm of a gone reservation is a no-op, and trades
carry an id the service books once a day.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from decimal import Decimal
from typing import Any

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from tradefleet.bus import subjects
from tradefleet.bus.codec import decode, encode
from tradefleet.telemetry.tracing import inject_headers
from tradefleet.workers.risk.protocol import (
    CheckRequest, ConfirmReport, Decision, PositionReport, TradeReport,
)

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_MS = 500
"""RiskPolicy ``checkTimeoutMs`` default: a bot with no answer in this time opens nothing."""


class RiskServiceClient:
    """RiskChecker over NATS (``risk.check`` / ``risk.confirm`` / ``risk.position`` /
    ``risk.trade``, served by queue group ``risk``).

    Parameters
    ----------
    nc : nats-py Client
        A connected client (``tradefleet.bus.connect``).
    timeout_ms : int
        How long ``check`` waits for a decision, ms (the RiskPolicy's ``checkTimeoutMs``;
        default 500). Reports use the same timeout.
    """

    def __init__(self, nc: Any, *, timeout_ms: int = DEFAULT_TIMEOUT_MS):
        if not 1 <= timeout_ms <= 60_000:
            raise ValueError(f"timeout_ms must be within 1..60000 ms, got {timeout_ms}")
        self.nc = nc
        self.timeout_ms = timeout_ms
        self._pending: list[tuple[str, bytes]] = []
        self._flush_lock = asyncio.Lock()

    @property
    def pending_reports(self) -> int:
        """Reports not yet acknowledged by the service."""
        return len(self._pending)

    # -- check ----------------------------------------------------------------------------
    async def check(self, request: CheckRequest) -> Decision:
        """Ask before new exposure; a BLOCK Decision on any failure (fail closed)."""
        rid = getattr(request, "request_id", "?")
        try:
            if self._pending and not await self.flush():
                return Decision.block(rid, f"{len(self._pending)} earlier risk reports are not "
                                      "acknowledged yet (risk service unreachable?); no new "
                                      "exposure until they are (fail closed)")
            msg = await self._request(subjects.RISK_CHECK, encode(request.to_dict()),
                                      inject_headers() or None)
            body = decode(msg.data, subject=subjects.RISK_CHECK)
            if "error" in body:
                return Decision.block(rid, f"risk service refused the request: {body['error']}")
            decision = Decision.from_dict(body)
            if decision.request_id != rid:
                return Decision.block(rid, f"risk service answered request {decision.request_id!r} "
                                      f"instead of {rid!r} (fail closed)")
            return decision
        except asyncio.CancelledError:
            raise
        except NatsTimeoutError:
            return Decision.block(rid, f"risk service gave no answer within {self.timeout_ms} ms "
                                  "(fail closed)")
        except NoRespondersError:
            return Decision.block(rid, f"no risk service is running (no responders on risk.check "
                                  f"within {self.timeout_ms} ms; fail closed)")
        except Exception as exc:  # noqa: BLE001 - fail closed, never raise to the bot
            return Decision.block(rid, f"risk check failed ({type(exc).__name__}: {exc}); "
                                  "fail closed")

    async def _request(self, subject: str, data: bytes,
                       headers: dict[str, str] | None = None) -> Any:
        """One request within ``timeout_ms``; "no responders" is retried with backoff until
        the budget is spent (a service starting, or restarting, may miss a few ms), then
        raised. A request nobody received is safe to repeat."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_ms / 1000
        delay = 0.002
        while True:
            try:
                return await self.nc.request(subject, data, headers=headers,
                                             timeout=max(deadline - loop.time(), 0.001))
            except NoRespondersError:
                if deadline - loop.time() <= delay:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.05)

    # -- reports --------------------------------------------------------------------------
    async def confirm(self, reservation_id: str, bot: str, symbol: str,
                      filled_notional_usdt: Decimal) -> None:
        """The reserved order is done (``filled_notional_usdt`` USDT filled, 0 = nothing)."""
        await self._report(subjects.RISK_CONFIRM, ConfirmReport(
            reservation_id, bot, symbol, Decimal(filled_notional_usdt)).to_dict())

    async def release(self, reservation_id: str, bot: str, symbol: str) -> None:
        """Give back a reservation whose order was not sent (a confirm of nothing filled)."""
        await self.confirm(reservation_id, bot, symbol, Decimal(0))

    async def report_position(self, bot: str, symbol: str, notional_usdt: Decimal,
                              time_ms: int) -> None:
        """The bot's current signed notional on ``symbol``, USDT (0 = flat)."""
        await self._report(subjects.RISK_POSITION, PositionReport(
            bot, symbol, Decimal(notional_usdt), time_ms).to_dict())

    async def report_trade(self, bot: str, symbol: str, realized_pnl_usdt: Decimal,
                           time_ms: int, equity_usdt: Decimal | None = None) -> None:
        """A closed trade's realized PnL net of fees, USDT (and the bot's equity after it;
        an equity <= 0 is not sent, the trade still is)."""
        equity = None if equity_usdt is None else Decimal(equity_usdt)
        await self._report(subjects.RISK_TRADE, TradeReport(
            uuid.uuid4().hex, bot, symbol, Decimal(realized_pnl_usdt), time_ms,
            equity if equity is not None and equity > 0 else None).to_dict())

    async def _report(self, subject: str, body: dict) -> None:
        self._pending.append((subject, encode(body)))
        await self.flush()

    async def flush(self) -> bool:
        """Send queued reports in order; True when none is left. Never raises."""
        async with self._flush_lock:
            while self._pending:
                subject, data = self._pending[0]
                try:
                    msg = await self._request(subject, data)
                    body = decode(msg.data, subject=subject)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - stays queued, re-sent later
                    log.warning("risk report on %s not acknowledged (%s); %d queued, checks "
                                "block until they are", subject, exc or type(exc).__name__,
                                len(self._pending), extra={"subject": subject})
                    return False
                if body.get("retry"):
                    log.warning("risk service could not book a report on %s yet: %s",
                                subject, body.get("error"), extra={"subject": subject})
                    return False
                if "error" in body:
                    # The service read it and refused it (malformed): re-sending cannot help.
                    log.error("risk service refused a report on %s: %s", subject, body["error"],
                              extra={"subject": subject})
                self._pending.pop(0)
            return True
