"""Records the engine keeps and returns: orders, user trades, income, positions, events.

Every record stores integers (ticks, lots, 1e-8 USDT money units) and renders Binance's
JSON shape with ``to_binance()`` (field names and string formatting of the REST API), so the
server forwards them verbatim. Decimal views (``price``, ``orig_qty`` ...) are provided for
Python callers.
"""

from __future__ import annotations

from decimal import Decimal

from .enums import (CONDITIONAL_TYPES, ORDER_TYPE_NAME, POSITION_SIDE_NAME, SIDE_NAME,
                    STATUS_NAME, TIF_NAME, WORKING_TYPE_NAME, NEW, PARTIALLY_FILLED)
from .specs import MONEY_SCALE, SymbolSpec

__all__ = ["Order", "Trade", "Income", "Position", "Event", "money", "fmt_money", "AUTO_CID_PREFIX"]

#: Prefix of generated client order ids (``exsim-<orderId>``).
AUTO_CID_PREFIX = "exsim-"

_Q8 = Decimal("0.00000001")


def money(units: int) -> Decimal:
    """Decimal USDT of an integer count of 1e-8 USDT."""
    return Decimal(units).scaleb(-8)


def fmt_money(units: int) -> str:
    """``"12.34000000"``: 8-decimal USDT string as Binance prints balances and income."""
    sign = "-" if units < 0 else ""
    q, r = divmod(abs(units), MONEY_SCALE)
    return f"{sign}{q}.{r:08d}"


class Order:
    """One order. Integer fields: ``price``/``stop_price`` in ticks (0 = none), ``orig_lots`` /
    ``executed_lots`` in lots, ``cum_quote_units`` in 1e-8 USDT, times in ms UTC.

    Enum-valued fields hold the ints of :mod:`.enums`; ``to_binance()`` renders strings.
    """

    __slots__ = ("order_id", "_cid", "account_id", "spec", "sym", "side",
                 "position_side", "type", "tif", "price_ticks", "stop_ticks", "orig_lots",
                 "executed_lots", "cum_quote_units", "status", "reduce_only", "close_position",
                 "working_type", "price_protect", "time", "update_time", "triggered",
                 "maker_ok", "pending_next_open", "margin_units", "trig_dir", "trig_thr",
                 "on_mark")

    def __init__(self, order_id: int, client_order_id: str, account_id: str, spec: SymbolSpec,
                 sym: int, side: int, position_side: int, type_: int, tif: int,
                 price_ticks: int, stop_ticks: int, orig_lots: int, reduce_only: bool,
                 close_position: bool, working_type: int, price_protect: bool, time: int) -> None:
        self.order_id = order_id
        self._cid = client_order_id   # None: generated id, rendered lazily
        self.account_id = account_id
        self.spec = spec
        self.sym = sym
        self.side = side
        self.position_side = position_side
        self.type = type_
        self.tif = tif
        self.price_ticks = price_ticks
        self.stop_ticks = stop_ticks
        self.orig_lots = orig_lots
        self.executed_lots = 0
        self.cum_quote_units = 0
        self.status = NEW
        self.reduce_only = reduce_only
        self.close_position = close_position
        self.working_type = working_type
        self.price_protect = price_protect
        self.time = time
        self.update_time = time
        self.triggered = False        # conditional order whose stop price was reached
        self.maker_ok = True          # False when it crossed at submission (taker fill)
        self.pending_next_open = False  # MARKET order waiting for the next bar's open
        self.margin_units = 0         # initial margin reserved while open (1e-8 USDT)
        self.trig_dir = 0             # -1 fires when price <= trig_thr, +1 when price >= it
        self.trig_thr = 0             # ticks
        self.on_mark = False          # resting in the mark-price trigger set

    # -- Decimal views ------------------------------------------------------------------
    @property
    def client_order_id(self) -> str:
        """newClientOrderId as sent, else the generated ``exsim-<orderId>``."""
        cid = self._cid
        return cid if cid is not None else f"{AUTO_CID_PREFIX}{self.order_id}"

    @property
    def symbol(self) -> str:
        return self.spec.symbol

    @property
    def is_open(self) -> bool:
        """NEW or PARTIALLY_FILLED."""
        return self.status <= PARTIALLY_FILLED

    @property
    def price(self) -> Decimal:
        return self.spec.tick_size * self.price_ticks

    @property
    def stop_price(self) -> Decimal:
        return self.spec.tick_size * self.stop_ticks

    @property
    def orig_qty(self) -> Decimal:
        return self.spec.step_size * self.orig_lots

    @property
    def executed_qty(self) -> Decimal:
        return self.spec.step_size * self.executed_lots

    @property
    def cum_quote(self) -> Decimal:
        return money(self.cum_quote_units)

    @property
    def avg_price(self) -> Decimal:
        """Volume-weighted fill price in USDT (0 before the first fill)."""
        if not self.executed_lots:
            return Decimal(0)
        return money(self.cum_quote_units) / (self.spec.step_size * self.executed_lots)

    @property
    def status_name(self) -> str:
        return STATUS_NAME[self.status]

    @property
    def type_name(self) -> str:
        return ORDER_TYPE_NAME[self.type]

    @property
    def side_name(self) -> str:
        return SIDE_NAME[self.side]

    @property
    def position_side_name(self) -> str:
        return POSITION_SIDE_NAME[self.position_side]

    def _avg_str(self) -> str:
        # Binance prints avgPrice with a fixed number of decimals ("0.00000" when unfilled).
        places = max(self.spec.price_precision, 5)
        return f"{self.avg_price:.{places}f}"

    def to_binance(self) -> dict:
        """The order as ``GET /fapi/v1/order`` returns it (strings for numbers)."""
        spec = self.spec
        qf = spec.quantity_precision
        tname = ORDER_TYPE_NAME[self.type]
        return {
            "orderId": self.order_id,
            "symbol": spec.symbol,
            "status": STATUS_NAME[self.status],
            "clientOrderId": self.client_order_id,
            "price": f"{spec.tick_size * self.price_ticks:.{spec.price_precision}f}",
            "avgPrice": self._avg_str(),
            "origQty": f"{spec.step_size * self.orig_lots:.{qf}f}",
            "executedQty": f"{spec.step_size * self.executed_lots:.{qf}f}",
            "cumQty": f"{spec.step_size * self.executed_lots:.{qf}f}",
            "cumQuote": fmt_money(self.cum_quote_units),
            "timeInForce": TIF_NAME[self.tif],
            "type": tname,
            "reduceOnly": self.reduce_only,
            "closePosition": self.close_position,
            "side": SIDE_NAME[self.side],
            "positionSide": POSITION_SIDE_NAME[self.position_side],
            "stopPrice": f"{spec.tick_size * self.stop_ticks:.{spec.price_precision}f}",
            "workingType": WORKING_TYPE_NAME[self.working_type],
            "priceProtect": self.price_protect,
            "origType": tname,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "NONE",
            "goodTillDate": 0,
            "time": self.time,
            "updateTime": self.update_time,
        }

    def __repr__(self) -> str:
        return (f"Order({self.order_id} {self.spec.symbol} {SIDE_NAME[self.side]} "
                f"{ORDER_TYPE_NAME[self.type]} {self.orig_qty}@{self.price} stop={self.stop_price} "
                f"{STATUS_NAME[self.status]} filled={self.executed_qty})")

    @property
    def is_conditional(self) -> bool:
        return self.type in CONDITIONAL_TYPES


class Trade:
    """One fill of one order (``GET /fapi/v1/userTrades`` row).

    ``price_ticks`` ticks, ``lots`` lots, ``quote_units`` / ``commission_units`` /
    ``realized_units`` in 1e-8 USDT; ``commission_units`` is what was charged (>= 0 when
    fees are positive).
    """

    __slots__ = ("id", "order_id", "account_id", "spec", "side", "position_side", "price_ticks",
                 "lots", "quote_units", "commission_units", "realized_units", "maker", "time",
                 "seq", "closing")

    def __init__(self, id_: int, order_id: int, account_id: str, spec: SymbolSpec, side: int,
                 position_side: int, price_ticks: int, lots: int, quote_units: int,
                 commission_units: int, realized_units: int, maker: bool, time: int,
                 seq: int = 0, closing: bool = False) -> None:
        self.id = id_
        self.order_id = order_id
        self.account_id = account_id
        self.spec = spec
        self.side = side
        self.position_side = position_side
        self.price_ticks = price_ticks
        self.lots = lots
        self.quote_units = quote_units
        self.commission_units = commission_units
        self.realized_units = realized_units
        self.maker = maker
        self.time = time
        self.seq = seq            # income tranIds: seq (REALIZED_PNL), seq + 1 (COMMISSION)
        self.closing = closing    # it reduced a position (has a REALIZED_PNL income record)

    @property
    def symbol(self) -> str:
        return self.spec.symbol

    @property
    def price(self) -> Decimal:
        return self.spec.tick_size * self.price_ticks

    @property
    def qty(self) -> Decimal:
        return self.spec.step_size * self.lots

    @property
    def commission(self) -> Decimal:
        return money(self.commission_units)

    @property
    def realized_pnl(self) -> Decimal:
        return money(self.realized_units)

    def incomes(self) -> list["Income"]:
        """The income records this fill implies: REALIZED_PNL (when it reduced a position)
        and COMMISSION (−commission, when non-zero), as ``/fapi/v1/income`` lists them."""
        out = []
        if self.closing:
            out.append(Income(self.seq, self.account_id, self.spec.symbol, "REALIZED_PNL",
                              self.realized_units, self.time, self.id))
        if self.commission_units:
            out.append(Income(self.seq + 1, self.account_id, self.spec.symbol, "COMMISSION",
                              -self.commission_units, self.time, self.id))
        return out

    def to_binance(self) -> dict:
        spec = self.spec
        return {
            "buyer": self.side > 0,
            "commission": fmt_money(self.commission_units),
            "commissionAsset": spec.margin_asset,
            "id": self.id,
            "maker": self.maker,
            "orderId": self.order_id,
            "price": f"{spec.tick_size * self.price_ticks:.{spec.price_precision}f}",
            "qty": f"{spec.step_size * self.lots:.{spec.quantity_precision}f}",
            "quoteQty": fmt_money(self.quote_units),
            "realizedPnl": fmt_money(self.realized_units),
            "side": SIDE_NAME[self.side],
            "positionSide": POSITION_SIDE_NAME[self.position_side],
            "symbol": spec.symbol,
            "time": self.time,
        }


class Income:
    """One ``GET /fapi/v1/income`` row: ``amount_units`` in 1e-8 USDT (signed, credit > 0)."""

    __slots__ = ("tran_id", "account_id", "symbol", "income_type", "amount_units", "time",
                 "trade_id", "info")

    def __init__(self, tran_id: int, account_id: str, symbol: str, income_type: str,
                 amount_units: int, time: int, trade_id: int | None = None, info: str = "") -> None:
        self.tran_id = tran_id
        self.account_id = account_id
        self.symbol = symbol
        self.income_type = income_type
        self.amount_units = amount_units
        self.time = time
        self.trade_id = trade_id
        self.info = info

    @property
    def income(self) -> Decimal:
        return money(self.amount_units)

    def to_binance(self) -> dict:
        return {
            "symbol": self.symbol,
            "incomeType": self.income_type,
            "income": fmt_money(self.amount_units),
            "asset": "USDT",
            "info": self.info or self.income_type,
            "time": self.time,
            "tranId": self.tran_id,
            "tradeId": "" if self.trade_id is None else str(self.trade_id),
        }


class Position:
    """A position of one account in one symbol and position side.

    ``lots`` is signed (long > 0, short < 0; hedge-mode SHORT positions are negative as
    Binance's ``positionAmt``). ``cost_units`` is the entry notional of the open quantity
    in 1e-8 USDT (always >= 0), so entry price = cost / |qty|; it is reduced
    proportionally on partial closes and zeroed on a full close, keeping PnL exact.
    ``fee_units`` accumulates the open's commissions (for ``breakEvenPrice``).
    """

    __slots__ = ("sym", "spec", "position_side", "lots", "cost_units", "fee_units", "update_time",
                 "cum_realized_units")

    def __init__(self, sym: int, spec: SymbolSpec, position_side: int) -> None:
        self.sym = sym
        self.spec = spec
        self.position_side = position_side
        self.lots = 0
        self.cost_units = 0
        self.fee_units = 0
        self.update_time = 0
        self.cum_realized_units = 0   # Σ realized PnL of this position (stream field "cr")

    @property
    def symbol(self) -> str:
        return self.spec.symbol

    @property
    def position_amt(self) -> Decimal:
        """Signed quantity in base units (Binance ``positionAmt``)."""
        return self.spec.step_size * self.lots

    @property
    def entry_price(self) -> Decimal:
        """Average entry price in USDT (0 when flat)."""
        if not self.lots:
            return Decimal(0)
        return money(self.cost_units) / (self.spec.step_size * abs(self.lots))

    @property
    def break_even_price(self) -> Decimal:
        """Entry price moved by the commissions paid to open (0 when flat)."""
        if not self.lots:
            return Decimal(0)
        qty = self.spec.step_size * abs(self.lots)
        sign = 1 if self.lots > 0 else -1
        return (money(self.cost_units) + sign * money(self.fee_units)) / qty

    def unrealized_units(self, mark_ticks: int) -> int:
        """Unrealized PnL at ``mark_ticks`` in 1e-8 USDT: (mark − entry) × signed qty."""
        if not self.lots:
            return 0
        value = abs(self.lots) * mark_ticks * self.spec.tick_lot_units
        return value - self.cost_units if self.lots > 0 else self.cost_units - value


class Event:
    """A user-data stream message for one account.

    ``event_type`` is ``"ORDER_TRADE_UPDATE"`` or ``"ACCOUNT_UPDATE"``; ``payload`` is the
    exact Binance WebSocket JSON object (``{"e": ..., "E": ..., "T": ..., "o"/"a": ...}``)
    that the server sends on the account's listenKey stream.
    """

    __slots__ = ("account_id", "event_type", "event_time", "payload")

    def __init__(self, account_id: str, event_type: str, event_time: int, payload: dict) -> None:
        self.account_id = account_id
        self.event_type = event_type
        self.event_time = event_time
        self.payload = payload

    def __repr__(self) -> str:
        return f"Event({self.account_id!r}, {self.event_type}, {self.payload!r})"
