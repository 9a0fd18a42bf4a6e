"""Messages between bots and risk, and the interface every checker implements.

A bot asks before every new exposure; exits and stop moves never ask (fail closed only
applies to new exposure: DESIGN.md, risk service). Over NATS (``tradefleet risk``) the
messages are JSON bodies (:mod:`tradefleet.bus.codec`, Decimal as string, times UTC ms),
request/reply, all served by queue group ``risk``:

=================  ====================  ==============================================
subject            request               reply
=================  ====================  ==============================================
``risk.check``     :class:`CheckRequest`  :class:`Decision`
``risk.confirm``   :class:`ConfirmReport` ``{"ok": true}``
``risk.position``  :class:`PositionReport` ``{"ok": true}``
``risk.trade``     :class:`TradeReport`   ``{"ok": true, "halt": reason | null}``
any, malformed     anything               ``{"error": "field 'x': why", "subject": s}``
any, not decided   a valid request        ``{"error": why, "retry": true, ...}`` (reports;
                                          a check gets a BLOCK Decision instead)
=================  ====================  ==============================================

Every parser raises ``ValueError`` naming the field and the reason (``field 'side': must be
'long' or 'short', got 'up'``), so a malformed request is refused before it touches state.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from tradefleet.bus import subjects

MODES = ("paper", "testnet", "live")
SIDES = ("long", "short")
_MAX_ID = 128
_IDENT = re.compile(rf"[^\s]{{1,{_MAX_ID}}}")
# Names seen valid before: the hot path parses the same few bots and symbols all day.
_CACHE_MAX = 10_000
_VALID_BOTS: dict[str, tuple[str, str]] = {}
_VALID_SYMBOLS: set[str] = set()


class Outcome(str, enum.Enum):
    """PortfolioGuard outcomes (seed: ``allow`` / ``soft_allow`` / ``block``)."""

    ALLOW = "allow"
    SOFT_ALLOW = "soft_allow"
    BLOCK = "block"

    @property
    def approved(self) -> bool:
        return self is not Outcome.BLOCK


# -- field parsers (each raises ValueError naming the field) ---------------------------------


def _bad(field: str, why: str, value: Any) -> ValueError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ValueError(f"field {field!r}: {why}, got {shown}")


def _get(d: dict, field: str) -> Any:
    if not isinstance(d, dict):
        raise ValueError(f"request body must be a JSON object, got {type(d).__name__}")
    if field not in d or d[field] is None:
        raise ValueError(f"field {field!r}: missing")
    return d[field]


def _ident(d: dict, field: str) -> str:
    v = _get(d, field)
    if not isinstance(v, str) or not _IDENT.fullmatch(v):
        raise _bad(field, f"must be a non-empty string without whitespace, at most {_MAX_ID} "
                   "characters", v)
    return v


def split_bot(bot: str) -> tuple[str, str]:
    """``"namespace/name"`` -> ``(namespace, name)``; both must be DNS-1123 labels.

    Raises ValueError naming the field ``bot``. The pair addresses the bot's command
    subject ``fleet.cmd.{namespace}.{name}``.
    """
    known = _VALID_BOTS.get(bot) if isinstance(bot, str) else None
    if known is not None:
        return known
    if not isinstance(bot, str) or bot.count("/") != 1:
        raise _bad("bot", "must be 'namespace/name' (the TradingBot's namespace and name)", bot)
    ns, name = bot.split("/")
    try:
        subjects.check_namespace(ns)
        subjects.check_bot(name)
    except ValueError as exc:
        raise ValueError(f"field 'bot': {exc}") from None
    if len(_VALID_BOTS) >= _CACHE_MAX:
        _VALID_BOTS.clear()
    _VALID_BOTS[bot] = (ns, name)
    return ns, name


def _bot(d: dict) -> str:
    bot = _get(d, "bot")
    split_bot(bot)
    return bot


def _symbol(d: dict) -> str:
    v = _get(d, "symbol")
    if isinstance(v, str) and v in _VALID_SYMBOLS:
        return v
    try:
        subjects.check_symbol(v)
    except ValueError as exc:
        raise ValueError(f"field 'symbol': {exc}") from None
    if len(_VALID_SYMBOLS) >= _CACHE_MAX:
        _VALID_SYMBOLS.clear()
    _VALID_SYMBOLS.add(v)
    return v


def _decimal(d: dict, field: str, *, positive: bool = False, non_negative: bool = False,
             optional: bool = False) -> Decimal | None:
    if optional and d.get(field) is None:
        return None
    v = _get(d, field)
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        raise _bad(field, "must be a decimal string (USDT)", v)
    if isinstance(v, float) and not math.isfinite(v):
        raise _bad(field, "must be a finite amount", v)
    try:
        out = Decimal(str(v))
    except InvalidOperation:
        raise _bad(field, "must be a decimal string (USDT)", v) from None
    if not out.is_finite():
        raise _bad(field, "must be a finite amount", v)
    if positive and not out > 0:
        raise _bad(field, "must be > 0", v)
    if non_negative and out < 0:
        raise _bad(field, "must be >= 0", v)
    return out


def _time_ms(d: dict, field: str = "time_ms") -> int:
    v = _get(d, field)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise _bad(field, "must be a non-negative integer (UTC ms)", v)
    return v


# -- messages ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckRequest:
    """A bot asks to add ``notional_usdt`` of exposure on ``symbol`` (``risk.check``).

    bot is ``namespace/name``; side is ``long`` or ``short``; notional_usdt > 0 is the
    order's quantity × reference price in USDT; time_ms is the bot's clock (replay clock in
    paper mode), UTC ms; request_id is unique per check and becomes the reservation id;
    mode is ``paper``, ``testnet`` or ``live``; pool names a capital pool, if any.
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
        return {"request_id": self.request_id, "bot": self.bot, "symbol": self.symbol,
                "side": self.side, "notional_usdt": str(self.notional_usdt),
                "time_ms": self.time_ms, "mode": self.mode, "pool": self.pool}

    @classmethod
    def from_dict(cls, d: dict) -> "CheckRequest":
        """Parse a wire dict; raises ValueError naming the bad field and why."""
        request_id, bot, symbol = _ident(d, "request_id"), _bot(d), _symbol(d)
        side = _get(d, "side")
        if side not in SIDES:
            raise _bad("side", "must be 'long' or 'short'", side)
        notional = _decimal(d, "notional_usdt", positive=True)
        time_ms = _time_ms(d)
        mode = d.get("mode", "paper")
        if mode not in MODES:
            raise _bad("mode", f"must be one of {', '.join(MODES)}", mode)
        pool = d.get("pool")
        if pool is not None:
            try:
                subjects.check_bot(pool)  # pool names are DNS labels, like bot names
            except ValueError:
                raise _bad("pool", "must be a capital pool name (DNS-1123 label)", pool) from None
        return cls(request_id=request_id, bot=bot, symbol=symbol, side=side,
                   notional_usdt=notional, time_ms=time_ms, mode=mode, pool=pool)


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer: outcome, the reason (names the limit and the numbers), and the reservation.

    An approved decision reserves the notional under ``reservation_id`` until ``expires_ms``
    (the risk service's clock, UTC ms) unless the bot confirms the fill or releases it first.
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
        """Parse a reply; raises ValueError / KeyError when it is not a Decision."""
        return cls(request_id=d["request_id"], outcome=Outcome(d["outcome"]), reason=d["reason"],
                   reservation_id=d.get("reservation_id"), expires_ms=d.get("expires_ms"))

    @classmethod
    def block(cls, request_id: str, reason: str) -> "Decision":
        """A BLOCK decision without reservation (what fail-closed paths return)."""
        return cls(request_id, Outcome.BLOCK, reason)


@dataclass(frozen=True, slots=True)
class ConfirmReport:
    """The order of reservation ``reservation_id`` is done (``risk.confirm``).

    filled_notional_usdt >= 0 is what filled (0 = nothing; the reservation is released
    either way: the position report carries the exposure).
    """

    reservation_id: str
    bot: str
    symbol: str
    filled_notional_usdt: Decimal

    def to_dict(self) -> dict:
        return {"reservation_id": self.reservation_id, "bot": self.bot, "symbol": self.symbol,
                "filled_notional_usdt": str(self.filled_notional_usdt)}

    @classmethod
    def from_dict(cls, d: dict) -> "ConfirmReport":
        """Parse a wire dict; raises ValueError naming the bad field and why."""
        return cls(reservation_id=_ident(d, "reservation_id"), bot=_bot(d), symbol=_symbol(d),
                   filled_notional_usdt=_decimal(d, "filled_notional_usdt", non_negative=True))


@dataclass(frozen=True, slots=True)
class PositionReport:
    """A bot's current signed notional on a symbol, USDT (``risk.position``).

    Positive = long, negative = short, 0 = flat. Absolute, so re-sending is harmless.
    """

    bot: str
    symbol: str
    notional_usdt: Decimal
    time_ms: int

    def to_dict(self) -> dict:
        return {"bot": self.bot, "symbol": self.symbol, "notional_usdt": str(self.notional_usdt),
                "time_ms": self.time_ms}

    @classmethod
    def from_dict(cls, d: dict) -> "PositionReport":
        """Parse a wire dict; raises ValueError naming the bad field and why."""
        return cls(bot=_bot(d), symbol=_symbol(d), notional_usdt=_decimal(d, "notional_usdt"),
                   time_ms=_time_ms(d))


@dataclass(frozen=True, slots=True)
class TradeReport:
    """A closed trade (``risk.trade``): realized PnL net of fees, USDT, for DailyGuard.

    trade_id is unique per trade: the service books a trade id once per UTC day, so a
    client re-sending after a lost reply does not count the loss twice. equity_usdt is the
    bot's equity after the trade (base of the drawdown percentage), if known.
    """

    trade_id: str
    bot: str
    symbol: str
    realized_pnl_usdt: Decimal
    time_ms: int
    equity_usdt: Decimal | None = None

    def to_dict(self) -> dict:
        return {"trade_id": self.trade_id, "bot": self.bot, "symbol": self.symbol,
                "realized_pnl_usdt": str(self.realized_pnl_usdt), "time_ms": self.time_ms,
                "equity_usdt": None if self.equity_usdt is None else str(self.equity_usdt)}

    @classmethod
    def from_dict(cls, d: dict) -> "TradeReport":
        """Parse a wire dict; raises ValueError naming the bad field and why."""
        return cls(trade_id=_ident(d, "trade_id"), bot=_bot(d), symbol=_symbol(d),
                   realized_pnl_usdt=_decimal(d, "realized_pnl_usdt"), time_ms=_time_ms(d),
                   equity_usdt=_decimal(d, "equity_usdt", positive=True, optional=True))


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
