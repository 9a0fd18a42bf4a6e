"""The bot's PnL book: realized and daily PnL net of fees, round trips and the loss streak.

A *trade* (what the loss streak and the risk service's DailyGuard count) is a round trip on
one symbol: from the fill that opens a position to the fill that leaves it flat (or flips
it). Its result is the sum of the realized PnL of its fills minus every fee paid on the way
(entry, take-profit tiers, exit), i.e. net of fees (seed 000: ``LOSS_STREAK_LIMIT`` pauses
after a run of losing trades). A trade at exactly 0 breaks no streak and extends none.

The day of ``pnl_day_usdt`` is the UTC day of the bot clock (the fill's exchange time), so
a paper replay of May 2025 books PnL on May days.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

DAY_MS = 86_400_000
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """A finished round trip: symbol, net PnL (USDT, after fees), close time (UTC ms), and
    the id of the fill that closed it (unique per trade: the risk service books it once)."""

    symbol: str
    net_pnl: Decimal
    time_ms: int
    trade_id: str


@dataclass
class _Open:
    pnl: Decimal = ZERO
    fees: Decimal = ZERO


@dataclass
class Ledger:
    """Mutable PnL state of one bot. Amounts in USDT, times UTC ms.

    ``loss_streak_limit`` is ``spec.risk.lossStreakLimit``; :attr:`streak_tripped` turns true
    when :attr:`loss_streak` reaches it (the worker then halts entries until ``resume``).
    """

    loss_streak_limit: int
    realized: Decimal = ZERO
    fees: Decimal = ZERO
    day_start_ms: int = 0
    pnl_day: Decimal = ZERO
    loss_streak: int = 0
    won: int = 0
    lost: int = 0
    _open: dict[str, _Open] = field(default_factory=dict)

    def _roll_day(self, time_ms: int) -> None:
        day = time_ms - time_ms % DAY_MS
        if day > self.day_start_ms:
            self.day_start_ms, self.pnl_day = day, ZERO

    def on_fill(self, symbol: str, realized_pnl: Decimal, fee: Decimal, time_ms: int,
                position_after: Decimal, trade_id: str) -> ClosedTrade | None:
        """Book one fill; return the ClosedTrade when it left ``symbol`` flat or flipped.

        ``realized_pnl`` is the exchange's gross realized PnL of the fill, ``fee`` its
        commission in USDT, ``position_after`` the signed position once it is applied.
        """
        self._roll_day(time_ms)
        net = realized_pnl - fee
        self.realized += net
        self.fees += fee
        self.pnl_day += net
        book = self._open.setdefault(symbol, _Open())
        book.pnl += realized_pnl
        book.fees += fee
        if position_after != 0:
            # Opened, added, or partly closed (a take-profit tier): the round trip goes on.
            # The executor closes before it reverses, so one fill never flips a position.
            return None
        result = book.pnl - book.fees
        del self._open[symbol]
        return self._close(ClosedTrade(symbol, result, time_ms, trade_id))

    def close_open(self, symbol: str, time_ms: int, trade_id: str) -> ClosedTrade | None:
        """The position of ``symbol`` is found flat (e.g. a stop filled while the fills were
        not seen): close its round trip with what was booked so far, if any."""
        book = self._open.pop(symbol, None)
        if book is None or (book.pnl == 0 and book.fees == 0):
            return None
        return self._close(ClosedTrade(symbol, book.pnl - book.fees, time_ms, trade_id))

    def _close(self, trade: ClosedTrade) -> ClosedTrade:
        if trade.net_pnl < 0:
            self.loss_streak += 1
            self.lost += 1
        elif trade.net_pnl > 0:
            self.loss_streak = 0
            self.won += 1
        return trade

    @property
    def streak_tripped(self) -> bool:
        """True once ``loss_streak >= loss_streak_limit``."""
        return self.loss_streak >= self.loss_streak_limit

    def reset_streak(self) -> None:
        """Forget the losing streak (``resume`` after a loss-streak halt)."""
        self.loss_streak = 0

    def restore(self, *, loss_streak: int, pnl_day: Decimal, day_start_ms: int) -> None:
        """Carry the streak and the day's PnL over from the last status of a previous process
        (``pnl_day`` only if it is still that UTC day: the caller passes its day start)."""
        self.loss_streak = loss_streak
        self.day_start_ms, self.pnl_day = day_start_ms, pnl_day


__all__ = ["DAY_MS", "ClosedTrade", "Ledger"]
