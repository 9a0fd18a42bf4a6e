"""The fleet's risk state: positions, reservations, soft-cap clocks, daily guards, halts.

Plain data with exact Decimal money, serialisable to JSON so the shared service can keep
it in the JetStream KV bucket ``risk-state`` and a restart loses nothing (a halt survives).
All notionals are USDT; times are UTC ms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

DAY_MS = 86_400_000
_ZERO = Decimal(0)


@dataclass(slots=True)
class Reservation:
    """Notional held for an approved check until confirmed, released or expired."""

    bot: str
    symbol: str
    notional_usdt: Decimal
    expires_ms: int


@dataclass(slots=True)
class BotDay:
    """One bot's daily guard counters (DailyGuard, reset at 00:00 UTC)."""

    realized_pnl_usdt: Decimal = Decimal(0)
    peak_pnl_usdt: Decimal = Decimal(0)
    equity_start_usdt: Decimal | None = None
    losing_streak: int = 0
    trade_ids: list[str] = field(default_factory=list)
    """Trades booked today (bounded to the last MAX_TRADE_IDS), so a re-sent report of the
    same trade is not counted twice."""


MAX_TRADE_IDS = 2_000


@dataclass(slots=True)
class FleetState:
    """Everything the rules read and write. ``day`` is the UTC day number (ms // DAY_MS)."""

    positions: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    reservations: dict[str, Reservation] = field(default_factory=dict)
    soft_since_ms: dict[str, int] = field(default_factory=dict)
    bot_days: dict[str, BotDay] = field(default_factory=dict)
    halts: dict[str, str] = field(default_factory=dict)
    locks: dict[str, str] = field(default_factory=dict)
    day: int = 0
    bots: dict[str, int] = field(default_factory=dict)
    """Every bot that talked to risk (``namespace/name`` -> last seen, UTC ms): the kill
    switch sends its command to each of them."""

    def seen(self, bot: str, now_ms: int) -> None:
        """Remember that ``bot`` talked to risk at ``now_ms``."""
        self.bots[bot] = now_ms

    # -- exposure -------------------------------------------------------------------------
    def expire(self, now_ms: int) -> list[str]:
        """Drop reservations past their expiry; returns their ids."""
        gone = [rid for rid, r in self.reservations.items() if r.expires_ms <= now_ms]
        for rid in gone:
            del self.reservations[rid]
        return gone

    def gross(self, symbols: set[str] | None = None) -> Decimal:
        """Gross notional (|positions| + reservations) over ``symbols`` (None = all)."""
        total = sum((abs(n) for (_, s), n in self.positions.items()
                     if symbols is None or s in symbols), Decimal(0))
        total += sum((r.notional_usdt for r in self.reservations.values()
                      if symbols is None or r.symbol in symbols), Decimal(0))
        return total

    def exposure(self) -> dict[str, Decimal]:
        """Gross notional per symbol (|positions| + reservations), USDT, in one pass."""
        out: dict[str, Decimal] = {}
        for (_, s), n in self.positions.items():
            out[s] = out.get(s, _ZERO) + abs(n)
        for r in self.reservations.values():
            out[r.symbol] = out.get(r.symbol, _ZERO) + r.notional_usdt
        return out

    def gross_of_bots(self, bots: set[str]) -> Decimal:
        """Gross notional held or reserved by ``bots`` (a capital pool's members)."""
        total = sum((abs(n) for (b, _), n in self.positions.items() if b in bots), Decimal(0))
        return total + sum((r.notional_usdt for r in self.reservations.values() if r.bot in bots),
                           Decimal(0))

    def holders(self, symbols: set[str]) -> set[tuple[str, str]]:
        """(bot, symbol) pairs with a position or a reservation on ``symbols``."""
        held = {k for k, n in self.positions.items() if n != 0 and k[1] in symbols}
        return held | {(r.bot, r.symbol) for r in self.reservations.values() if r.symbol in symbols}

    # -- daily guards ---------------------------------------------------------------------
    def roll_day(self, now_ms: int) -> bool:
        """Reset daily counters and daily halts at 00:00 UTC; True when the day changed."""
        day = now_ms // DAY_MS
        if day == self.day:
            return False
        self.day = day
        self.bot_days.clear()
        self.halts = {b: why for b, why in self.halts.items() if not why.startswith("daily")}
        return True

    def bot_day(self, bot: str) -> BotDay:
        return self.bot_days.setdefault(bot, BotDay())

    # -- persistence ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready dict (Decimals as strings, tuple keys as ``bot|symbol``)."""
        return {
            "positions": {f"{b}|{s}": str(n) for (b, s), n in self.positions.items()},
            "reservations": {rid: {"bot": r.bot, "symbol": r.symbol,
                                   "notional_usdt": str(r.notional_usdt),
                                   "expires_ms": r.expires_ms}
                             for rid, r in self.reservations.items()},
            "soft_since_ms": dict(self.soft_since_ms),
            "bot_days": {b: {"realized_pnl_usdt": str(d.realized_pnl_usdt),
                             "peak_pnl_usdt": str(d.peak_pnl_usdt),
                             "equity_start_usdt": None if d.equity_start_usdt is None
                             else str(d.equity_start_usdt),
                             "losing_streak": d.losing_streak,
                             "trade_ids": list(d.trade_ids)}
                         for b, d in self.bot_days.items()},
            "halts": dict(self.halts),
            "locks": dict(self.locks),
            "day": self.day,
            "bots": dict(self.bots),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "FleetState":
        """Inverse of :meth:`to_dict`."""
        st = cls(day=int(d.get("day", 0)))
        for key, n in d.get("positions", {}).items():
            bot, sym = key.rsplit("|", 1)
            st.positions[(bot, sym)] = Decimal(n)
        for rid, r in d.get("reservations", {}).items():
            st.reservations[rid] = Reservation(r["bot"], r["symbol"], Decimal(r["notional_usdt"]),
                                               int(r["expires_ms"]))
        st.soft_since_ms = {k: int(v) for k, v in d.get("soft_since_ms", {}).items()}
        for b, bd in d.get("bot_days", {}).items():
            st.bot_days[b] = BotDay(Decimal(bd["realized_pnl_usdt"]), Decimal(bd["peak_pnl_usdt"]),
                                    None if bd["equity_start_usdt"] is None
                                    else Decimal(bd["equity_start_usdt"]),
                                    int(bd["losing_streak"]), list(bd.get("trade_ids", [])))
        st.halts = dict(d.get("halts", {}))
        st.locks = dict(d.get("locks", {}))
        st.bots = {b: int(t) for b, t in d.get("bots", {}).items()}
        return st
