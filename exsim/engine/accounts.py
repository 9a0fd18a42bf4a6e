"""Per-account state: wallet, positions, leverage, margin type, orders, trades and income.

Pure data plus the margin arithmetic of Binance's cross-margin account
(``GET /fapi/v2/account`` field definitions):

* unrealized PnL at mark = Σ (mark − entry) × signed qty,
* marginBalance = walletBalance + unrealizedProfit,
* positionInitialMargin = Σ |qty| × mark / leverage,
* openOrderInitialMargin = Σ initial margin reserved by resting orders that open exposure,
* availableBalance = marginBalance − positionInitialMargin − openOrderInitialMargin,
* maintMargin = Σ |qty| × mark × maintenance margin rate.

All amounts are integers of 1e-8 USDT; rounding of a margin figure is always up (the
trader's disfavour), and never touches the wallet, so the wallet invariant stays exact.
"""

from __future__ import annotations

from .enums import BOTH, LONG, SHORT
from .models import Income, Order, Position
from .specs import SymbolSpec

__all__ = ["Account", "DEFAULT_LEVERAGE"]

#: Binance's default leverage for a symbol the account never changed.
DEFAULT_LEVERAGE = 20


class Account:
    """One trading account (the server maps API keys onto account ids).

    ``pos[sym][position_side]`` is the :class:`Position` for symbol index ``sym`` and
    position side BOTH/LONG/SHORT (0/1/2). Money fields are 1e-8 USDT integers.
    """

    __slots__ = ("account_id", "initial_units", "wallet_units", "dual_side", "leverage",
                 "margin_type", "pos", "orders", "open_orders", "cids", "open_order_margin",
                 "fills", "incomes", "update_time", "n_reduce_only", "realized_units",
                 "commission_units", "funding_units", "transfer_units", "created_time",
                 "open_sym", "n_algo", "active")

    def __init__(self, account_id: str, initial_units: int, specs: list[SymbolSpec],
                 time_ms: int) -> None:
        self.account_id = account_id
        self.initial_units = initial_units
        self.created_time = time_ms
        n = len(specs)
        self.wallet_units = 0
        self.dual_side = False
        self.leverage = [DEFAULT_LEVERAGE] * n
        self.margin_type = ["CROSSED"] * n
        self.pos = [[Position(i, s, BOTH), Position(i, s, LONG), Position(i, s, SHORT)]
                    for i, s in enumerate(specs)]
        self.active: list[Position] = []          # positions with lots != 0 (margin loops)
        self.orders: dict[int, Order] = {}        # every order ever accepted, by orderId
        self.open_orders: dict[int, Order] = {}   # NEW / PARTIALLY_FILLED, by orderId
        self.cids: dict[tuple[int, str], Order] = {}  # (sym, clientOrderId) -> latest order
        self.open_order_margin = 0
        self.fills: list[tuple] = []              # Trade(*fill) field order, oldest first
        self.incomes: list[Income] = []           # TRANSFER and FUNDING_FEE (fills: trades)
        self.update_time = time_ms
        self.n_reduce_only = 0                    # resting reduce-only / hedge-closing LIMITs
        self.open_sym: list[dict[int, Order]] = [{} for _ in specs]   # open orders per symbol
        self.n_algo = [0] * n                     # open conditional orders (MAX_NUM_ALGO_ORDERS)
        # Running totals of every wallet movement, for the accounting invariant.
        self.realized_units = 0
        self.commission_units = 0
        self.funding_units = 0
        self.transfer_units = 0

    # -- margin arithmetic (1e-8 USDT) ---------------------------------------------------------
    def unrealized_units(self, marks: list[int]) -> int:
        """Σ unrealized PnL of all positions at ``marks[sym]`` (mark price ticks)."""
        total = 0
        for p in self.active:
            total += p.unrealized_units(marks[p.sym])
        return total

    def position_margin_units(self, marks: list[int]) -> tuple[int, int]:
        """(positionInitialMargin, maintMargin) at the given marks, rounded up."""
        im = mm = 0
        for p in self.active:
            notional = abs(p.lots) * marks[p.sym] * p.spec.tick_lot_units
            im += -(-notional // self.leverage[p.sym])
            mm += _ceil_mul(notional, p.spec.maint_margin_rate)
        return im, mm

    def available_units(self, marks: list[int]) -> int:
        """availableBalance: wallet + unrealized − position IM − open-order IM."""
        avail = self.wallet_units - self.open_order_margin
        for p in self.active:
            lots = p.lots
            value = marks[p.sym] * p.spec.tick_lot_units
            if lots > 0:
                notional = lots * value
                avail += notional - p.cost_units
            else:
                notional = -lots * value
                avail += p.cost_units - notional
            avail -= -(-notional // self.leverage[p.sym])
        return avail

    def has_exposure(self) -> bool:
        """True when any position is non-zero."""
        return bool(self.active)


def _ceil_mul(units: int, rate) -> int:
    """⌈units × rate⌉ for a Decimal rate, in integers."""
    num, den = rate.as_integer_ratio()
    return -(-(units * num) // den)
