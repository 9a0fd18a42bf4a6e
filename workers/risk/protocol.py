"""Messages of the ``risk.check`` request/reply and the interface every checker implements.

A bot asks before every new exposure; exits and stop moves never ask (fail closed only
applies to new exposure: DESIGN.md, risk service).
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Protocol


class Outcome(str, enum.Enum):
    """PortfolioGuard outcomes (seed: ``allow`` / ``soft_allow`` / ``block``)."""

    ALLOW = "allow"
    SOFT_ALLOW = "soft_allow"
    BLOCK = "block"

    @property
    def approved(self) -> bool:
        return self is not Outcome.BLOCK


@dataclass(frozen=True, slots=True)
class CheckRequest:
    """A bot asks to add ``notional_usdt`` of exposure on ``symbol``.

    bot is ``namespace/name``; side is ``long`` or ``short``; notional_usdt > 0 is the
    order's quantity × reference price in USDT; time_ms is the bot's clock (replay clock in
    paper mode), UTC ms; request_id is unique per check and becomes the reservation id.
    """

    request_id: str
    bot: str
    symbol: str
    side: str
    notional_usdt: Decimal
    time_ms: int
    mode: str = "paper"
    pool: str | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["notional_usdt"] = str(self.notional_usdt)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CheckRequest":
        """Parse a wire dict; raises KeyError / ValueError / decimal.InvalidOperation if bad."""
        req = cls(
            request_id=str(d["request_id"]), bot=str(d["bot"]), symbol=str(d["symbol"]),
            side=str(d["side"]), notional_usdt=Decimal(str(d["notional_usdt"])),
            time_ms=int(d["time_ms"]), mode=str(d.get("mode", "paper")), pool=d.get("pool"),
        )
        if req.side not in ("long", "short"):
            raise ValueError(f"side must be 'long' or 'short', got {req.side!r}")
        if not req.notional_usdt > 0:
            raise ValueError(f"notional_usdt must be > 0, got {req.notional_usdt}")
        return req


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer: outcome, the reason (names the limit and the numbers), and the reservation.

    An approved decision reserves the notional under ``reservation_id`` until ``expires_ms``
    unless the bot confirms the fill or releases it first.
    """

    request_id: str
    outcome: Outcome
    reason: str
    reservation_id: str | None = None
    expires_ms: int | None = None

    def to_dict(self) -> dict:
        return {"request_id": self.request_id, "outcome": self.outcome.value,
                "reason": self.reason, "reservation_id": self.reservation_id,
                "expires_ms": self.expires_ms}

    @classmethod
    def from_dict(cls, d: dict) -> "Decision":
        return cls(request_id=d["request_id"], outcome=Outcome(d["outcome"]), reason=d["reason"],
                   reservation_id=d.get("reservation_id"), expires_ms=d.get("expires_ms"))


class RiskChecker(Protocol):
    """What a bot needs from risk, whether in-process or the shared service over NATS.

    ``check`` must fail closed: any error or timeout is a BLOCK decision, never an exception
    that a caller could mistake for approval.
    """

    async def check(self, request: CheckRequest) -> Decision: ...

    async def confirm(self, reservation_id: str, bot: str, symbol: str,
                      filled_notional_usdt: Decimal) -> None:
        """The reserved order is done, ``filled_notional_usdt`` filled (0 = nothing).

        Report the resulting position first (``report_position``), then confirm: the
        reservation's room then passes to the position without a gap a racing bot could use.
        """

    async def report_position(self, bot: str, symbol: str, notional_usdt: Decimal,
                              time_ms: int) -> None:
        """The bot's current signed notional on ``symbol`` (after any fill, exit or stop)."""

    async def report_trade(self, bot: str, symbol: str, realized_pnl_usdt: Decimal,
                           time_ms: int, equity_usdt: Decimal | None = None) -> None:
        """A closed trade's realized PnL net of fees (and the bot's equity after it, USDT),
        for the daily guards and the losing streak."""
