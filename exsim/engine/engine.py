"""The exsim matching engine: Binance USDⓈ-M futures semantics over replayed klines.

There is no real order book: prices come from klines (or single trade/mark prices in paper
mode) and a synthetic top of book. The conventions below are what both exsim and the
backtester use; changing one changes fills, so each is a documented :class:`EngineConfig`
option or fixed here.

Intra-bar price path
    A bar O, H, L, C is walked as four points: **O → L → H → C when C ≥ O, else
    O → H → L → C**. A bar that closes up most plausibly made its low before its high (and
    vice versa); it is the usual OHLC-path convention of bar backtesters (e.g. the
    MetaTrader/"open-low-high-close" tick model) and it is deterministic. The jump from the
    previous price to O is a *gap* segment: nothing traded in between.

Triggers and limit fills along the path
    Every resting order has a threshold: a BUY LIMIT, SELL STOP(_MARKET) and BUY
    TAKE_PROFIT(_MARKET) fire when the price falls to ``≤`` their price; a SELL LIMIT, BUY
    STOP(_MARKET) and SELL TAKE_PROFIT(_MARKET) when it rises to ``≥``. Touching is enough.
    Within a segment orders fire in the order the path reaches them (ties: older first).

    * LIMIT orders that rested fill completely at their limit price, **maker** fee.
    * STOP_MARKET / TAKE_PROFIT_MARKET fill at the stop price, or at O when the bar gapped
      through it, then ``stop_slippage_bps`` worse, **taker** fee. ``workingType`` chooses
      the trigger source: CONTRACT_PRICE uses the path; MARK_PRICE uses the mark price,
      which follows the path until a mark price is fed (``set_mark_price`` /
      ``on_bar(mark_price=)``); then mark-triggered orders fire on mark moves and fill at
      the last trade price ± slippage.
    * STOP / TAKE_PROFIT (limit variants) become LIMIT orders when triggered: they fill at
      once (taker) if their price is marketable at the trigger point, else rest (maker).

Orders at submission
    The synthetic top of book is ``bid = last − spread_ticks // 2`` ticks and
    ``ask = bid + spread_ticks`` ticks (default 1 tick: bid = last, ask = last + 1 tick).
    A BUY LIMIT at ≥ ask (SELL at ≤ bid) takes liquidity: it fills completely at once at the
    reference price (last ± ``market_slippage_bps``) capped by its limit, **taker** fee.
    GTX (post-only) orders that would take are rejected (-5022); FOK orders that cannot
    fill are rejected (-5021); IOC orders that do not cross expire. Liquidity is unlimited:
    an order fills completely or not at all (reduce-only trims aside).

MARKET orders (``EngineConfig.fill_model``)
    ``"immediate"``: fill at once at the last trade price ± ``market_slippage_bps`` (rounded
    to the tick against the trader). ``"next_open"``: a MARKET order rests (NEW, margin
    reserved) and fills at the next bar's open ± slippage, before that bar's path is walked.

Fees and money
    commission = fill notional × maker/taker bps (rounded half up to 1e-8 USDT), charged
    in USDT on every fill. Prices are integer ticks, quantities integer lots, money integer
    1e-8 USDT, so: wallet = initial deposits + Σ realized PnL − Σ commission + Σ funding,
    exactly. Entry price is the weighted average (position cost / qty); a partial close
    removes cost pro rata (floored to 1e-8 USDT, the remainder goes with the last close).

Margin (cross semantics; ``marginType`` is stored and reported but margin is shared)
    New exposure needs availableBalance ≥ notional / leverage + taker fee, else -2019.
    Resting LIMIT orders that open exposure reserve their initial margin
    (openOrderInitialMargin). Conditional orders reserve nothing; when triggered they are
    margin-checked and EXPIRED if the margin is not there. There is no forced liquidation;
    ``liquidationPrice`` is an estimate (see :meth:`Engine.position_risk`).

Reduce-only
    One-way mode: a reduce-only MARKET/LIMIT order is rejected (-2022) when the position is
    flat or on the same side; a fill never exceeds the position (the rest EXPIRES). Hedge
    mode: the closing side (SELL LONG, BUY SHORT) is implicitly reduce-only and may not
    exceed the position (-2022); the ``reduceOnly`` parameter itself is refused (-1106).
    After every position change, resting reduce-only LIMIT orders are trimmed, oldest
    first, so their remaining quantity never exceeds the position; an order left with
    nothing to reduce EXPIRES. Conditional reduce-only / closePosition orders stay open
    (as on Binance) and are trimmed or EXPIRED when they trigger.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Callable, Iterable

from . import events as ev
from .accounts import Account
from .config import FILL_NEXT_OPEN, EngineConfig
from .enums import (BOTH, BUY, CANCELED, COMMISSION, CONDITIONAL_TYPES, CONTRACT_PRICE,
                    EXPIRED, FILLED, FOK, FUNDING_FEE, GTC, GTX, INCOME_TYPES, IOC, LIMIT, LONG,
                    MARGIN_TYPES, MARK_PRICE, MARKET, ORDER_TYPE_CODE, ORDER_TYPE_NAME,
                    PARTIALLY_FILLED,
                    POSITION_SIDE_CODE, POSITION_SIDE_NAME, REALIZED_PNL, SELL, SIDE_CODE, STOP,
                    STOP_MARKET, TAKE_PROFIT, TAKE_PROFIT_MARKET, TIF_CODE, TRANSFER,
                    WORKING_TYPE_CODE)
from .errors import ExchangeError, error
from .models import AUTO_CID_PREFIX, Event, Income, Order, Position, Trade, fmt_money, money
from .specs import MONEY_SCALE, SymbolSpec, default_specs

Number = Decimal | str | int

__all__ = ["Engine", "Listener"]

#: ``listener(event)`` receives every user-data :class:`Event`.
Listener = Callable[[Event], None]

_CID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_NEVER_UP = 1 << 62            # "no rising trigger" threshold
_NEVER_DN = -1                 # "no falling trigger" threshold
_STOP_FAMILY = (STOP, STOP_MARKET)


class _Book:
    """Market state of one symbol: last and mark price (ticks), resting orders by trigger."""

    __slots__ = ("sym", "spec", "last", "mark", "mark_feed", "orders", "mark_orders", "dn", "up",
                 "mdn", "mup", "dirty", "pending", "price_scale", "tick_int", "qty_scale",
                 "step_int", "market_step_lots", "min_lots", "max_lots", "mkt_min_lots",
                 "mkt_max_lots", "min_ticks", "max_ticks", "min_notional_units", "mult_up",
                 "mult_down", "mult_den", "bar_time", "tlu", "max_orders", "max_algo")

    def __init__(self, sym: int, spec: SymbolSpec) -> None:
        self.sym = sym
        self.spec = spec
        self.price_scale = 10 ** spec.price_precision
        self.tick_int = int(spec.tick_size * self.price_scale)
        self.qty_scale = 10 ** spec.quantity_precision
        self.step_int = int(spec.step_size * self.qty_scale)
        self.market_step_lots = int(spec.market_step_size / spec.step_size)
        self.min_lots = -(-spec.min_qty // spec.step_size)
        self.max_lots = int(spec.max_qty // spec.step_size)
        self.mkt_min_lots = int(-(-spec.market_min_qty // spec.step_size))
        self.mkt_max_lots = int(spec.market_max_qty // spec.step_size)
        self.min_lots = int(self.min_lots)
        self.min_ticks = int(-(-spec.min_price // spec.tick_size))
        self.max_ticks = int(spec.max_price // spec.tick_size)
        self.min_notional_units = int(spec.min_notional * MONEY_SCALE)
        self.mult_den = 10 ** spec.multiplier_decimal
        self.mult_up = int(spec.multiplier_up * self.mult_den)
        self.mult_down = int(spec.multiplier_down * self.mult_den)
        self.tlu = spec.tick_lot_units
        self.max_orders = spec.max_num_orders
        self.max_algo = spec.max_num_algo_orders
        self.reset()

    def reset(self) -> None:
        self.last = 0            # ticks; 0 = no trade seen yet
        self.mark = 0
        self.mark_feed = False   # True once a mark price is fed separately
        self.orders: dict[int, Order] = {}       # resting, triggered by the contract path
        self.mark_orders: dict[int, Order] = {}  # resting, triggered by a fed mark price
        self.dn = _NEVER_DN
        self.up = _NEVER_UP
        self.mdn = _NEVER_DN
        self.mup = _NEVER_UP
        self.dirty = False
        self.pending: list[Order] = []           # next_open MARKET orders
        self.bar_time = 0

    def add(self, o: Order) -> None:
        if o.on_mark:
            self.mark_orders[o.order_id] = o
            if o.trig_dir < 0:
                if o.trig_thr > self.mdn:
                    self.mdn = o.trig_thr
            elif o.trig_thr < self.mup:
                self.mup = o.trig_thr
        else:
            self.orders[o.order_id] = o
            if o.trig_dir < 0:
                if o.trig_thr > self.dn:
                    self.dn = o.trig_thr
            elif o.trig_thr < self.up:
                self.up = o.trig_thr

    def remove(self, o: Order) -> None:
        if o.on_mark:
            if self.mark_orders.pop(o.order_id, None) is not None:
                self.dirty = True
        elif self.orders.pop(o.order_id, None) is not None:
            # The bounds only need recomputing when the removed order defined one; a stale
            # bound is merely conservative (a bar may scan and find nothing).
            if o.trig_thr == (self.dn if o.trig_dir < 0 else self.up):
                self.dirty = True

    def recompute(self) -> None:
        self.dn, self.up = _extremes(self.orders)
        self.mdn, self.mup = _extremes(self.mark_orders)
        self.dirty = False


def _extremes(orders: dict[int, Order]) -> tuple[int, int]:
    dn, up = _NEVER_DN, _NEVER_UP
    for o in orders.values():
        t = o.trig_thr
        if o.trig_dir < 0:
            if t > dn:
                dn = t
        elif t < up:
            up = t
    return dn, up


def _set_trigger(o: Order) -> None:
    """Threshold of a resting order (see module docstring, "Triggers")."""
    if o.type in CONDITIONAL_TYPES and not o.triggered:
        o.trig_thr = o.stop_ticks
        rising = (o.side == BUY) == (o.type in _STOP_FAMILY)
        o.trig_dir = 1 if rising else -1
    else:
        o.trig_thr = o.price_ticks
        o.trig_dir = -1 if o.side == BUY else 1


def _ratio(bps: Decimal) -> tuple[int, int]:
    """bps as an exact fraction of 1: (numerator, denominator)."""
    num, den = (bps / 10000).as_integer_ratio()
    return num, den


def _places(d: Decimal) -> int:
    """Decimals of ``d`` ignoring trailing zeros: "0.100" -> 1, "94000.10" -> 1."""
    _, digits, exp = d.as_tuple()
    if exp >= 0:
        return 0
    n = -exp
    i = len(digits) - 1
    while n > 0 and i >= 0 and digits[i] == 0:
        n -= 1
        i -= 1
    return n


def _num(value: object, name: str) -> Decimal:
    """Decimal of a boundary number; -1102 naming the parameter when malformed."""
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, str):
        try:
            d = Decimal(value.strip())
        except InvalidOperation:
            raise error(-1102, name) from None
    elif isinstance(value, bool):
        raise error(-1102, name)
    elif isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, float):
        d = Decimal(repr(value))  # shortest repr: 0.001 -> Decimal("0.001") exactly
    else:
        raise error(-1102, name)
    if not d.is_finite():
        raise error(-1102, name)
    return d


def _flag(value: object, name: str) -> bool:
    """Binance booleans arrive as true/false strings or bools."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if value is None:
        return False
    raise error(-1130, name)


class Engine:
    """Binance USDⓈ-M futures matching engine over replayed klines (no web code).

    Boundary methods take ``Decimal`` (or exact decimal strings / ints) for prices in USDT
    and quantities in base units, and Binance's enum strings; they raise
    :class:`~tradefleet.exsim.engine.errors.ExchangeError` with Binance's code and message,
    leaving state unchanged. Records come back as :class:`Order`, :class:`Trade`,
    :class:`Income` (``to_binance()`` renders Binance's JSON) or Binance-shaped dicts.

    Not thread-safe: drive one engine from one thread (the server's event loop, or the
    backtester's loop).

    Fast path (backtester): :meth:`symbol_index`, :meth:`price_to_ticks`,
    :meth:`on_bar_ticks` and :meth:`submit` / :meth:`cancel` work in ints (ticks, lots,
    enum codes of :mod:`.enums`) and skip string parsing; validation and matching are the
    same code as the boundary methods.

    Args:
        specs: symbol specifications (default: :func:`default_specs`, BTC/ETH/SOLUSDT).
        config: fees, slippage, fill model, synthetic spread (default :class:`EngineConfig`).
    """

    def __init__(self, specs: Iterable[SymbolSpec] | dict[str, SymbolSpec] | None = None,
                 config: EngineConfig | None = None) -> None:
        if specs is None:
            specs = default_specs()
        if isinstance(specs, dict):
            specs = list(specs.values())
        self._specs: list[SymbolSpec] = list(specs)
        if not self._specs:
            raise ValueError("Engine needs at least one SymbolSpec")
        self.config = config or EngineConfig()
        self._sym_index = {s.symbol: i for i, s in enumerate(self._specs)}
        if len(self._sym_index) != len(self._specs):
            raise ValueError("duplicate symbols in specs")
        self._books = [_Book(i, s) for i, s in enumerate(self._specs)]
        self._marks = [0] * len(self._specs)   # alias list kept in sync with book.mark
        cfg = self.config
        self._maker_num, self._maker_den = _ratio(cfg.maker_fee_bps)
        self._taker_num, self._taker_den = _ratio(cfg.taker_fee_bps)
        self._mslip_num, self._mslip_den = _ratio(cfg.market_slippage_bps)
        self._sslip_num, self._sslip_den = _ratio(cfg.stop_slippage_bps)
        self._next_open = cfg.fill_model == FILL_NEXT_OPEN
        self._check_pp = cfg.check_percent_price
        self._bid_off = cfg.spread_ticks // 2
        self._spread = cfg.spread_ticks
        self._listeners: list[Listener] = []
        self._deposits: list[tuple[str, int, int]] = []   # (account, units, time) for reset()
        self._accounts: dict[str, Account] = {}
        self._init_counters()

    def _init_counters(self) -> None:
        self.time_ms = 0
        self._next_order_id = 1
        self._next_trade_id = 1
        self._next_tran_id = 1

    # ================================================================== lifecycle / events
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every user-data :class:`Event` (all accounts; route by
        ``event.account_id``). Called synchronously inside the engine call that caused it, in
        order. Returns a function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)
        return unsubscribe

    def _emit(self, account_id: str, payload: dict) -> None:
        e = Event(account_id, payload["e"], payload["E"], payload)
        for listener in list(self._listeners):
            listener(e)

    def reset(self) -> None:
        """Back to the state right after construction plus the initial deposits: every
        account re-created with its deposits (TRANSFER income), no orders, trades or
        positions, prices unknown, clock 0, id counters restarted. Listeners stay."""
        deposits = list(self._deposits)
        self._accounts.clear()
        self._deposits.clear()
        for b in self._books:
            b.reset()
        self._marks[:] = [0] * len(self._marks)
        self._init_counters()
        for account_id, units, t in deposits:
            self._deposit(account_id, units, t)

    def set_time(self, time_ms: int) -> None:
        """Set the engine clock (ms UTC) used to stamp orders and fills when no ``time_ms``
        is passed. ``on_bar`` advances it to the bar's close time."""
        self.time_ms = int(time_ms)

    # ============================================================================ accounts
    def create_account(self, account_id: str, balance: Number, time_ms: int | None = None) -> None:
        """Open ``account_id`` with ``balance`` USDT deposited (income TRANSFER).

        Raises ValueError if the id exists or the balance is negative or finer than 1e-8.
        """
        if not isinstance(account_id, str) or not account_id:
            raise ValueError("account_id must be a non-empty string")
        if account_id in self._accounts:
            raise ValueError(f"account {account_id!r} already exists")
        amount = _num(balance, "balance")
        units = amount * MONEY_SCALE
        if amount < 0 or units != units.to_integral_value():
            raise ValueError(f"balance must be >= 0 with at most 8 decimals, got {balance!r}")
        self._deposit(account_id, int(units), self.time_ms if time_ms is None else int(time_ms))

    def deposit(self, account_id: str, amount: Number, time_ms: int | None = None) -> None:
        """Add ``amount`` USDT to an existing account's wallet (income TRANSFER)."""
        acct = self._account(account_id)
        d = _num(amount, "amount")
        units = d * MONEY_SCALE
        if d <= 0 or units != units.to_integral_value():
            raise ValueError(f"amount must be > 0 with at most 8 decimals, got {amount!r}")
        t = self.time_ms if time_ms is None else int(time_ms)
        self._deposit(acct.account_id, int(units), t)

    def _deposit(self, account_id: str, units: int, t: int) -> None:
        acct = self._accounts.get(account_id)
        if acct is None:
            acct = Account(account_id, units, self._specs, t)
            self._accounts[account_id] = acct
        self._deposits.append((account_id, units, t))
        acct.wallet_units += units
        acct.transfer_units += units
        acct.incomes.append(Income(self._tran_id(), account_id, "", TRANSFER, units, t,
                                   info="TRANSFER"))
        if self._listeners:
            self._emit(account_id, ev.account_update("DEPOSIT", t, acct.wallet_units, units, []))

    def account_ids(self) -> list[str]:
        """Ids of all accounts, in creation order."""
        return list(self._accounts)

    def has_account(self, account_id: str) -> bool:
        return account_id in self._accounts

    def _account(self, account_id: str) -> Account:
        acct = self._accounts.get(account_id)
        if acct is None:
            raise error(-2015)
        return acct

    def _book(self, symbol: str) -> _Book:
        i = self._sym_index.get(symbol) if isinstance(symbol, str) else None
        if i is None:
            raise error(-1121)
        return self._books[i]

    # ============================================================================ settings
    def change_leverage(self, account_id: str, symbol: str, leverage: int | str) -> dict:
        """``POST /fapi/v1/leverage``: set initial leverage 1..max_leverage of the symbol.

        Returns ``{"leverage": int, "maxNotionalValue": str, "symbol": str}``.
        Raises -4028 (not an integer in range), -1121, -2015. Simplification: one notional
        bracket, so no -2027 cap, and existing positions are not margin-re-checked.
        """
        acct = self._account(account_id)
        b = self._book(symbol)
        try:
            lev = int(leverage)
            if isinstance(leverage, (float, Decimal)) and lev != leverage:
                raise ValueError
        except (TypeError, ValueError):
            raise error(-4028, leverage) from None
        if not 1 <= lev <= b.spec.max_leverage:
            raise error(-4028, leverage)
        acct.leverage[b.sym] = lev
        return {"leverage": lev, "maxNotionalValue": self._max_notional(b.spec, lev),
                "symbol": b.spec.symbol}

    @staticmethod
    def _max_notional(spec: SymbolSpec, lev: int) -> str:
        # Single-bracket simplification: exsim enforces no notional cap (-2027 never raised).
        return str(int(spec.max_qty * spec.max_price))

    def change_margin_type(self, account_id: str, symbol: str, margin_type: str) -> None:
        """``POST /fapi/v1/marginType`` (CROSSED / ISOLATED). The setting is stored and
        reported; margin stays shared (cross semantics). Raises -1130 (bad value),
        -4046 (no change), -4047 (open orders on the symbol), -4048 (open position)."""
        acct = self._account(account_id)
        b = self._book(symbol)
        mt = margin_type.upper() if isinstance(margin_type, str) else margin_type
        if mt == "CROSS":
            mt = "CROSSED"
        if mt not in MARGIN_TYPES:
            raise error(-1130, "marginType")
        if acct.margin_type[b.sym] == mt:
            raise error(-4046)
        if acct.open_sym[b.sym]:
            raise error(-4047)
        if any(p.lots for p in acct.pos[b.sym]):
            raise error(-4048)
        acct.margin_type[b.sym] = mt

    def change_position_mode(self, account_id: str, dual_side_position: bool | str) -> None:
        """``POST /fapi/v1/positionSide/dual``: True = hedge mode (LONG/SHORT positions),
        False = one-way (BOTH). Raises -4059 (no change), -4068 (a position is open),
        -4067 (an order is open)."""
        acct = self._account(account_id)
        dual = _flag(dual_side_position, "dualSidePosition")
        if dual == acct.dual_side:
            raise error(-4059)
        if acct.has_exposure():
            raise error(-4068)
        if acct.open_orders:
            raise error(-4067)
        acct.dual_side = dual

    def position_mode(self, account_id: str) -> bool:
        """``GET /fapi/v1/positionSide/dual`` ``dualSidePosition``: True in hedge mode."""
        return self._account(account_id).dual_side

    def leverage(self, account_id: str, symbol: str) -> int:
        """Current leverage of the account in the symbol (default 20)."""
        return self._account(account_id).leverage[self._book(symbol).sym]

    def margin_type(self, account_id: str, symbol: str) -> str:
        """CROSSED or ISOLATED."""
        return self._account(account_id).margin_type[self._book(symbol).sym]

    # ========================================================================= market data
    @property
    def symbols(self) -> list[str]:
        """Symbols in index order (index = :meth:`symbol_index`)."""
        return [s.symbol for s in self._specs]

    def spec(self, symbol: str) -> SymbolSpec:
        """The :class:`SymbolSpec` of ``symbol`` (-1121 if unknown)."""
        return self._book(symbol).spec

    def symbol_index(self, symbol: str) -> int:
        """Integer index of ``symbol`` for the fast path (-1121 if unknown)."""
        return self._book(symbol).sym

    def exchange_info(self) -> dict:
        """``GET /fapi/v1/exchangeInfo`` body (without rateLimits' server-specific values)."""
        return {"timezone": "UTC", "serverTime": self.time_ms, "futuresType": "U_MARGINED",
                "rateLimits": [], "exchangeFilters": [],
                "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "0"}],
                "symbols": [s.exchange_info() for s in self._specs]}

    def price_to_ticks(self, symbol: str, price: Number) -> int:
        """Nearest tick (half-even) of a market price such as a kline value; recorded klines
        may carry finer prices than today's tick (e.g. SOLUSDT's tick went 0.001 → 0.01)."""
        spec = self._book(symbol).spec
        return int((_num(price, "price") / spec.tick_size).to_integral_value(ROUND_HALF_EVEN))

    def on_bar(self, symbol: str, open_time: int, open: Number, high: Number, low: Number,
               close: Number, close_time: int | None = None,
               mark_price: Number | None = None) -> None:
        """Replay one closed kline (prices in USDT, times ms UTC; ``close_time`` defaults to
        ``open_time + 59999``): fills pending next-open MARKET orders at the open, then walks
        the intra-bar path firing stops and limits, and leaves last price = close. The mark
        price follows the close unless ``mark_price`` is given (then mark-triggered orders
        are checked against it after the path). Raises ValueError on an inconsistent bar."""
        b = self._book(symbol)
        tick = b.spec.tick_size
        o, h, lo, c = (int((_num(v, n) / tick).to_integral_value(ROUND_HALF_EVEN))
                       for v, n in ((open, "open"), (high, "high"), (low, "low"), (close, "close")))
        if not (0 < lo <= min(o, c) and h >= max(o, c)):
            raise ValueError(f"{symbol} bar at {open_time}: need 0 < low <= open,close <= high, "
                             f"got O={open} H={high} L={low} C={close}")
        ct = open_time + 59999 if close_time is None else int(close_time)
        self.on_bar_ticks(b.sym, int(open_time), o, h, lo, c, ct)
        if mark_price is not None:
            self.set_mark_price(symbol, mark_price, ct)

    def on_bar_ticks(self, sym: int, open_time: int, o: int, h: int, l: int, c: int,
                     close_time: int) -> None:
        """Fast path of :meth:`on_bar`: symbol index and prices in integer ticks, no checks.

        With no resting order that the bar can reach, this is O(1) and allocates nothing.
        """
        b = self._books[sym]
        if b.pending:
            self._fill_pending(b, o, open_time)
        if b.dirty:
            b.recompute()
        self.time_ms = close_time
        b.bar_time = open_time
        if l > b.dn and h < b.up:
            # Nothing can fire inside this bar (the gap endpoint O lies within [L, H]).
            b.last = c
            if not b.mark_feed:
                b.mark = c
                self._marks[sym] = c
            return
        self._walk(b, open_time, o, h, l, c, close_time)

    def set_price(self, symbol: str, price: Number, time_ms: int | None = None) -> None:
        """Paper mode: one trade at ``price`` (a one-point path from the last price; orders
        reached fire as in a gap: stops fill at ``price``)."""
        b = self._book(symbol)
        p = self.price_to_ticks(symbol, price)
        if p <= 0:
            raise ValueError(f"price must be > 0, got {price!r}")
        t = self.time_ms if time_ms is None else int(time_ms)
        self.time_ms = t
        if b.pending:
            self._fill_pending(b, p, t)
        prev = b.last or p
        self._segment(b, prev, p, t, True)
        b.last = p
        if not b.mark_feed:
            b.mark = p
            self._marks[b.sym] = p

    def set_mark_price(self, symbol: str, mark_price: Number, time_ms: int | None = None) -> None:
        """Feed the mark price (USDT; rounded to the tick). From the first call on, the
        symbol's mark no longer follows the trade path, and MARK_PRICE-working conditional
        orders fire when the mark crosses their stop price, filling at the last trade price
        ± ``stop_slippage_bps``."""
        b = self._book(symbol)
        m = self.price_to_ticks(symbol, mark_price)
        if m <= 0:
            raise ValueError(f"mark price must be > 0, got {mark_price!r}")
        t = self.time_ms if time_ms is None else int(time_ms)
        if not b.mark_feed:
            b.mark_feed = True
            moving = [x for x in b.orders.values() if x.working_type == MARK_PRICE
                      and not x.triggered and x.type in CONDITIONAL_TYPES]
            for x in moving:
                b.remove(x)
                x.on_mark = True
                b.add(x)
        prev = b.mark or m
        b.mark = m
        self._marks[b.sym] = m
        if b.dirty:
            b.recompute()
        if (m <= prev and b.mdn >= m) or (m >= prev and b.mup <= m):
            self._fire(b, b.mark_orders, prev, m, t, True, True)

    def last_price(self, symbol: str) -> Decimal:
        """Last trade price in USDT (0 before the first bar)."""
        b = self._book(symbol)
        return b.spec.tick_size * b.last

    def mark_price(self, symbol: str) -> Decimal:
        """Mark price in USDT (0 before the first bar or mark)."""
        b = self._book(symbol)
        return b.spec.tick_size * b.mark

    def _bid_ask(self, b: _Book) -> tuple[int, int]:
        bid = b.last - self._bid_off
        return bid, bid + self._spread

    def book_ticker(self, symbol: str) -> dict:
        """``GET /fapi/v1/ticker/bookTicker`` from the synthetic top of book."""
        b = self._book(symbol)
        spec = b.spec
        bid, ask = self._bid_ask(b) if b.last else (0, 0)
        q = spec.format_qty(self.config.book_qty if b.last else Decimal(0))
        return {"symbol": spec.symbol, "bidPrice": spec.format_price(spec.tick_size * bid),
                "bidQty": q, "askPrice": spec.format_price(spec.tick_size * ask), "askQty": q,
                "time": self.time_ms}

    def depth(self, symbol: str, limit: int = 5) -> dict:
        """``GET /fapi/v1/depth``: ``limit`` synthetic levels a tick apart each side, each of
        ``config.book_qty``. Prices/quantities as [str, str] pairs."""
        b = self._book(symbol)
        spec = b.spec
        if not isinstance(limit, int) or limit not in (5, 10, 20, 50, 100, 500, 1000):
            raise ExchangeError(-4021, f"'{limit}' is not valid depth limit.")
        bids, asks = [], []
        if b.last:
            bid, ask = self._bid_ask(b)
            q = spec.format_qty(self.config.book_qty)
            bids = [[spec.format_price(spec.tick_size * (bid - i)), q]
                    for i in range(limit) if bid - i > 0]
            asks = [[spec.format_price(spec.tick_size * (ask + i)), q] for i in range(limit)]
        return {"lastUpdateId": self.time_ms, "E": self.time_ms, "T": self.time_ms,
                "bids": bids, "asks": asks}

    # ============================================================================ funding
    def apply_funding(self, symbol: str, rate: Number, mark_price: Number,
                      time_ms: int) -> list[Income]:
        """Settle one funding event on every open position of ``symbol``.

        payment (USDT, credited to the wallet) = −(signed position qty × ``mark_price`` ×
        ``rate``), rounded half-up to 1e-8 USDT: longs pay and shorts receive when the rate
        is positive (Binance "Introduction to Funding Rates"). Each payment is an income
        FUNDING_FEE and an ACCOUNT_UPDATE with reason FUNDING_FEE. ``rate`` is a fraction
        per interval (0.0001 = 0.01 %); ``mark_price`` is used for the payment only (feed
        the mark with :meth:`set_mark_price`). Returns the income records created.
        """
        b = self._book(symbol)
        r = _num(rate, "rate")
        mark = _num(mark_price, "markPrice")
        if mark <= 0:
            raise ValueError(f"funding mark price must be > 0, got {mark_price!r}")
        t = int(time_ms)
        step = b.spec.step_size
        out = []
        for acct in self._accounts.values():
            changed = []
            total = 0
            for p in acct.pos[b.sym]:
                if not p.lots:
                    continue
                amount = -(step * p.lots) * mark * r
                units = int((amount * MONEY_SCALE).to_integral_value(ROUND_HALF_UP))
                acct.wallet_units += units
                acct.funding_units += units
                total += units
                inc = Income(self._tran_id(), acct.account_id, symbol, FUNDING_FEE, units, t,
                             info="FUNDING_FEE")
                acct.incomes.append(inc)
                out.append(inc)
                changed.append(p)
            if changed:
                acct.update_time = t
                if self._listeners:
                    self._emit(acct.account_id, ev.account_update(
                        "FUNDING_FEE", t, acct.wallet_units, total,
                        [(p, p.unrealized_units(b.mark), p.cum_realized_units,
                          acct.margin_type[b.sym]) for p in changed]))
        return out

    # ============================================================================= orders
    def place_order(self, account_id: str, symbol: str, side: str, type: str,
                    quantity: Number | None = None, price: Number | None = None,
                    time_in_force: str | None = None, stop_price: Number | None = None,
                    position_side: str | None = None, reduce_only: bool | str = False,
                    close_position: bool | str = False, working_type: str | None = None,
                    price_protect: bool | str = False, new_client_order_id: str | None = None,
                    time_ms: int | None = None) -> Order:
        """``POST /fapi/v1/order``: validate, accept and (if it can) execute one order.

        Args:
            side: BUY / SELL. type: MARKET, LIMIT, STOP, STOP_MARKET, TAKE_PROFIT,
                TAKE_PROFIT_MARKET.
            quantity: base units (BTC...). price, stop_price: USDT.
            time_in_force: GTC / IOC / FOK / GTX; mandatory for LIMIT, STOP, TAKE_PROFIT.
            position_side: BOTH (one-way, default) or LONG / SHORT (hedge mode, mandatory).
            reduce_only, close_position, price_protect: bool or "true"/"false"
                (``priceProtect`` is stored and reported, not applied).
            working_type: CONTRACT_PRICE (default) or MARK_PRICE for trigger prices.
            new_client_order_id: ``^[.A-Z:/a-z0-9_-]{1,36}$``, unique among open orders of
                the symbol; generated (``exsim-<orderId>``) when omitted.
            time_ms: event time (default: engine clock).

        Returns the :class:`Order` in its state after matching (FILLED for a MARKET order
        with the immediate fill model; NEW for a resting one; EXPIRED for an IOC that did not
        cross).

        Raises:
            ExchangeError: -2015 unknown account, -1121 symbol, -1117 side, -1116 type,
            -1102 missing/malformed parameter, -1115 timeInForce, -4031 workingType, -4060 /
            -4061 positionSide, -1106 reduceOnly in hedge mode or with closePosition, -4136 /
            -4137 closePosition misuse, -4015 client id, -4116 duplicate client id, -4003
            quantity ≤ 0, -4001 / -4006 price / stopPrice ≤ 0, -1111 too many decimals,
            -4014 / -4023 not on the tick / step grid, -4013 / -4002 / -4007 PRICE_FILTER,
            -4004 / -4005 LOT_SIZE or MARKET_LOT_SIZE, -4016 / -4024 PERCENT_PRICE, -2025 /
            -4045 too many open (algo) orders, -4130 duplicate closePosition order, -4164
            notional below MIN_NOTIONAL, -2010 no market price yet, -2021 would immediately
            trigger, -2022 reduce-only cannot reduce, -5022 post-only would take, -5021 FOK
            cannot fill, -2019 margin insufficient. State is unchanged when raised.
        """
        acct = self._account(account_id)
        b = self._book(symbol)
        spec = b.spec
        s = SIDE_CODE.get(side)
        if s is None:
            raise error(-1117)
        otype = ORDER_TYPE_CODE.get(type)
        if otype is None:
            raise error(-1116)
        close_all = _flag(close_position, "closePosition")
        ro = _flag(reduce_only, "reduceOnly")
        pp = _flag(price_protect, "priceProtect")
        # Mandatory parameters per type (Binance "New Order" parameter table).
        if otype != MARKET and otype != LIMIT and stop_price is None:
            raise error(-1102, "stopPrice")
        if otype in (LIMIT, STOP, TAKE_PROFIT):
            if price is None:
                raise error(-1102, "price")
            if time_in_force is None:
                raise error(-1102, "timeInForce")
        if quantity is None and not close_all:
            raise error(-1102, "quantity")
        if otype in (LIMIT, STOP, TAKE_PROFIT):
            tif = TIF_CODE.get(time_in_force)
            if tif is None:
                raise error(-1115)
        else:
            tif = GTC
        if working_type is None:
            wt = CONTRACT_PRICE
        else:
            wt = WORKING_TYPE_CODE.get(working_type)
            if wt is None:
                raise error(-4031, working_type)
        if position_side is None:
            ps = BOTH
        else:
            ps = POSITION_SIDE_CODE.get(position_side)
            if ps is None:
                raise error(-4060)
        if close_all:
            if otype not in (STOP_MARKET, TAKE_PROFIT_MARKET):
                raise error(-4136, type, "true")
            if quantity is not None:
                raise error(-4137)
            if ro:
                raise error(-1106, "reduceOnly")
        # Numbers: parse, sign, precision, grid.
        lots = 0
        if quantity is not None:
            q = _num(quantity, "quantity")
            if q <= 0:
                raise error(-4003)
            if _places(q) > spec.quantity_precision:
                raise error(-1111)
            qi = int(q.scaleb(spec.quantity_precision))
            if qi % b.step_int:
                raise error(-4023)
            lots = qi // b.step_int
        price_ticks = 0
        if otype in (LIMIT, STOP, TAKE_PROFIT):
            price_ticks = self._parse_price(b, price, "price", -4001)
        elif price is not None and _num(price, "price") != 0:
            raise error(-1106, "price")
        stop_ticks = 0
        if otype in CONDITIONAL_TYPES:
            stop_ticks = self._parse_price(b, stop_price, "stopPrice", -4006)
        cid = new_client_order_id
        if cid is not None and (not isinstance(cid, str) or not _CID_RE.match(cid)):
            raise error(-4015)
        return self.submit(account_id, b.sym, s, otype, lots, price_ticks, stop_ticks, tif, ps, ro,
                           close_all, wt, cid, None if time_ms is None else int(time_ms), pp)

    @staticmethod
    def _parse_price(b: _Book, value: Number, name: str, nonpositive_code: int) -> int:
        d = _num(value, name)
        if d <= 0:
            raise error(nonpositive_code)
        if _places(d) > b.spec.price_precision:
            raise error(-1111)
        pi = int(d.scaleb(b.spec.price_precision))
        if pi % b.tick_int:
            raise error(-4014)
        return pi // b.tick_int

    def submit(self, account_id: str, sym: int, side: int, otype: int, lots: int,
               price_ticks: int = 0, stop_ticks: int = 0, tif: int = GTC,
               position_side: int = BOTH, reduce_only: bool = False,
               close_position: bool = False, working_type: int = CONTRACT_PRICE,
               client_order_id: str | None = None, time_ms: int | None = None,
               price_protect: bool = False) -> Order:
        """Fast path of :meth:`place_order` in ints: ``sym`` index, ``side`` +1/−1,
        ``otype``/``tif``/``position_side``/``working_type`` codes of :mod:`.enums`,
        ``lots`` (stepSize units), ``price_ticks`` / ``stop_ticks``. Same rules, same errors
        (parsing errors aside); ``client_order_id`` is not pattern-checked here. Every check
        runs before the first mutation, so a raised error leaves no trace."""
        acct = self._accounts.get(account_id)
        if acct is None:
            raise error(-2015)
        b = self._books[sym]
        # Position side vs account mode (-4061); reduceOnly is refused in hedge mode.
        if acct.dual_side:
            if position_side == BOTH:
                raise error(-4061)
            if reduce_only:
                raise error(-1106, "reduceOnly")
            closing = (position_side == LONG) == (side == SELL)
        else:
            if position_side != BOTH:
                raise error(-4061)
            closing = reduce_only
        if len(acct.open_sym[sym]) >= b.max_orders:
            raise error(-2025)
        if client_order_id is not None:
            prev = self._find_cid(acct, sym, client_order_id)
            if prev is not None and prev.status <= PARTIALLY_FILLED:
                raise error(-4116)
        t = self.time_ms if time_ms is None else time_ms
        if otype == MARKET or otype == LIMIT:
            if close_position:
                raise error(-4136, ORDER_TYPE_NAME[otype], "true")
            if lots <= 0:
                raise error(-4003)
            if otype == MARKET:
                return self._submit_market(acct, b, side, lots, position_side, reduce_only,
                                           closing, client_order_id, t, price_protect)
            return self._submit_limit(acct, b, side, lots, price_ticks, tif, position_side,
                                      reduce_only, closing, client_order_id, t, price_protect)
        if otype in CONDITIONAL_TYPES:
            return self._submit_conditional(acct, b, side, otype, lots, price_ticks, stop_ticks,
                                            tif, position_side, reduce_only, close_position,
                                            closing, working_type, client_order_id, t,
                                            price_protect)
        raise error(-1116)

    def _new_order(self, acct: Account, b: _Book, cid: str | None, side: int, ps: int,
                   otype: int, tif: int, price: int, stop: int, lots: int, ro: bool,
                   close_all: bool, wt: int, pp: bool, t: int) -> Order:
        """Accept an order: the first mutation of a submission (ids, indexes, NEW event)."""
        oid = self._next_order_id
        self._next_order_id = oid + 1
        o = Order(oid, cid, acct.account_id, b.spec, b.sym, side, ps, otype, tif, price, stop,
                  lots, ro, close_all, wt, pp, t)
        acct.orders[oid] = o
        if cid is not None:
            acct.cids[(b.sym, cid)] = o
        acct.update_time = t
        if self._listeners:
            self._emit(acct.account_id, ev.order_trade_update(o, "NEW", t))
        return o

    def _check_reduce(self, acct: Account, cur: int, side: int, lots: int) -> None:
        """-2022 unless a reduce-only (one-way) / closing (hedge) order can reduce ``cur``."""
        if acct.dual_side:
            if lots > (-cur if cur < 0 else cur):
                raise error(-2022)
        elif cur == 0 or (cur > 0) == (side == BUY):
            raise error(-2022)

    def _check_margin(self, acct: Account, b: _Book, side: int, lots: int, cur: int,
                      px: int) -> int:
        """Initial margin of the part of an order that opens exposure at ``px`` ticks; -2019
        when availableBalance < that margin + taker fee. Returns the margin (1e-8 USDT)."""
        if acct.dual_side or cur == 0 or (cur > 0) == (side == BUY):
            opening = lots
        else:
            held = -cur if cur < 0 else cur
            if lots <= held:
                return 0          # only closes (a flip's excess is the opening part)
            opening = lots - held
        notional = opening * px * b.tlu
        margin = -(-notional // acct.leverage[b.sym])
        fee = (2 * notional * self._taker_num + self._taker_den) // (2 * self._taker_den)
        if acct.available_units(self._marks) < margin + fee:
            raise error(-2019)
        return margin

    def _submit_market(self, acct: Account, b: _Book, side: int, lots: int, ps: int, ro: bool,
                       closing: bool, cid: str | None, t: int, pp: bool) -> Order:
        if lots % b.market_step_lots:
            raise error(-4023)
        if lots < b.mkt_min_lots:
            raise error(-4004)
        if lots > b.mkt_max_lots:
            raise error(-4005)
        last = b.last
        if not last:
            raise ExchangeError(-2010, f"Order rejected: no market price for {b.spec.symbol} yet "
                                       f"(replay at least one kline first).")
        if not ro and lots * last * b.tlu < b.min_notional_units:
            raise self._min_notional_error(b)
        cur = acct.pos[b.sym][ps].lots
        if closing:
            self._check_reduce(acct, cur, side, lots)
            margin = 0
        else:
            margin = self._check_margin(acct, b, side, lots, cur, last)
        o = self._new_order(acct, b, cid, side, ps, MARKET, GTC, 0, 0, lots, ro, False,
                            CONTRACT_PRICE, pp, t)
        if self._next_open:
            acct.open_orders[o.order_id] = o
            acct.open_sym[b.sym][o.order_id] = o
            o.pending_next_open = True
            o.margin_units = margin
            acct.open_order_margin += margin
            b.pending.append(o)
            return o
        px = self._slip(last, side, True) if self._mslip_num else last
        if closing:
            self._execute_taker(acct, b, o, px, t)
        else:
            self._fill(acct, b, o, px, lots, False, t)   # unlimited liquidity: complete at once
        return o

    def _check_limit_price(self, b: _Book, side: int, price: int) -> None:
        """PRICE_FILTER (-4001/-4013/-4002) and PERCENT_PRICE against the mark (-4016/-4024)."""
        if price <= 0:
            raise error(-4001)
        if price < b.min_ticks:
            raise error(-4013)
        if price > b.max_ticks:
            raise error(-4002)
        mark = b.mark
        if mark and self._check_pp:
            if side == BUY:
                if price * b.mult_den > mark * b.mult_up:
                    raise error(-4016)
            elif price * b.mult_den < mark * b.mult_down:
                raise error(-4024)

    @staticmethod
    def _min_notional_error(b: _Book) -> ExchangeError:
        return ExchangeError(-4164, f"Order's notional must be no smaller than "
                                    f"{b.spec.min_notional} (unless you choose reduce only).")

    def _submit_limit(self, acct: Account, b: _Book, side: int, lots: int, price: int, tif: int,
                      ps: int, ro: bool, closing: bool, cid: str | None, t: int,
                      pp: bool) -> Order:
        if lots < b.min_lots:
            raise error(-4004)
        if lots > b.max_lots:
            raise error(-4005)
        self._check_limit_price(b, side, price)
        if not ro and lots * price * b.tlu < b.min_notional_units:
            raise self._min_notional_error(b)
        cur = acct.pos[b.sym][ps].lots
        if closing:
            self._check_reduce(acct, cur, side, lots)
        # Crossing the synthetic book decides GTX / FOK / IOC and maker vs taker.
        last = b.last
        crosses = False
        if last:
            bid = last - self._bid_off
            crosses = price >= bid + self._spread if side == BUY else price <= bid
            if crosses and tif == GTX:
                raise error(-5022)
        if tif == FOK and not crosses:
            raise error(-5021)
        margin = 0
        if not closing and (crosses or tif != IOC):
            margin = self._check_margin(acct, b, side, lots, cur, price)
        o = self._new_order(acct, b, cid, side, ps, LIMIT, tif, price, 0, lots, ro, False,
                            CONTRACT_PRICE, pp, t)
        if crosses:
            px = self._slip(last, side, True) if self._mslip_num else last
            if (side == BUY and px > price) or (side == SELL and px < price):
                px = price
            o.maker_ok = False
            self._execute_taker(acct, b, o, px, t)
            return o
        if tif == IOC:
            self._finish(acct, o, EXPIRED, t)
            return o
        oid = o.order_id
        acct.open_orders[oid] = o
        acct.open_sym[b.sym][oid] = o
        if margin:
            o.margin_units = margin
            acct.open_order_margin += margin
        if closing:
            acct.n_reduce_only += 1
        # a resting limit: BUY fires when the price falls to it, SELL when it rises
        o.trig_thr = price
        if side == BUY:
            o.trig_dir = -1
            if price > b.dn:
                b.dn = price
        else:
            o.trig_dir = 1
            if price < b.up:
                b.up = price
        b.orders[oid] = o
        return o

    def _submit_conditional(self, acct: Account, b: _Book, side: int, otype: int, lots: int,
                            price: int, stop: int, tif: int, ps: int, ro: bool, close_all: bool,
                            closing: bool, wt: int, cid: str | None, t: int, pp: bool) -> Order:
        sym = b.sym
        is_market = otype == STOP_MARKET or otype == TAKE_PROFIT_MARKET
        if close_all:
            if not is_market:
                raise error(-4136, ORDER_TYPE_NAME[otype], "true")
            if lots:
                raise error(-4137)
            if ro:
                raise error(-1106, "reduceOnly")
        else:
            if lots <= 0:
                raise error(-4003)
            if is_market:
                if lots % b.market_step_lots:
                    raise error(-4023)
                if lots < b.mkt_min_lots:
                    raise error(-4004)
                if lots > b.mkt_max_lots:
                    raise error(-4005)
            else:
                if lots < b.min_lots:
                    raise error(-4004)
                if lots > b.max_lots:
                    raise error(-4005)
        if acct.n_algo[sym] >= b.max_algo:
            raise error(-4045)
        if stop <= 0:
            raise error(-4006)
        if stop < b.min_ticks:
            raise error(-4013)
        if stop > b.max_ticks:
            raise error(-4007)
        if not is_market:
            self._check_limit_price(b, side, price)
        if close_all:
            if acct.dual_side and not closing:
                raise error(-2022)
            for x in acct.open_sym[sym].values():
                if (x.close_position and x.side == side and x.type == otype
                        and x.position_side == ps):
                    raise error(-4130)
        elif not ro and lots * (price or stop) * b.tlu < b.min_notional_units:
            raise self._min_notional_error(b)
        # Must not trigger at once (-2021), judged on its working price.
        wp = b.mark if wt == MARK_PRICE else b.last
        if wp:
            rising = (side == BUY) == (otype == STOP or otype == STOP_MARKET)
            if (wp >= stop) if rising else (wp <= stop):
                raise error(-2021)
        o = self._new_order(acct, b, cid, side, ps, otype, tif, price, stop, lots, ro,
                            close_all, wt, pp, t)
        acct.open_orders[o.order_id] = o
        acct.open_sym[sym][o.order_id] = o
        acct.n_algo[sym] += 1
        _set_trigger(o)
        o.on_mark = wt == MARK_PRICE and b.mark_feed
        b.add(o)
        return o

    # ----------------------------------------------------------------- cancel / query
    def cancel_order(self, account_id: str, symbol: str, order_id: int | None = None,
                     orig_client_order_id: str | None = None, time_ms: int | None = None) -> Order:
        """``DELETE /fapi/v1/order`` by ``order_id`` or ``orig_client_order_id``.

        Returns the CANCELED order. Raises -1102 (neither id sent), -2011 (unknown, or no
        longer open: "Unknown order sent.").
        """
        acct = self._account(account_id)
        b = self._book(symbol)
        o = self._lookup(acct, b, order_id, orig_client_order_id)
        if o is None or o.status > PARTIALLY_FILLED:
            raise error(-2011)
        self._cancel(acct, o, self.time_ms if time_ms is None else int(time_ms))
        return o

    def cancel(self, account_id: str, order_id: int, time_ms: int | None = None) -> Order:
        """Fast path cancel by order id (-2011 when unknown or not open)."""
        acct = self._accounts.get(account_id)
        o = acct.open_orders.get(order_id) if acct is not None else None
        if o is None:
            raise error(-2011)
        self._cancel(acct, o, self.time_ms if time_ms is None else time_ms)
        return o

    def cancel_all_orders(self, account_id: str, symbol: str,
                          time_ms: int | None = None) -> list[Order]:
        """``DELETE /fapi/v1/allOpenOrders``: cancel every open order of the symbol; returns
        them (CANCELED), oldest first."""
        acct = self._account(account_id)
        b = self._book(symbol)
        t = self.time_ms if time_ms is None else int(time_ms)
        victims = list(acct.open_sym[b.sym].values())
        for o in victims:
            self._cancel(acct, o, t)
        return victims

    def get_order(self, account_id: str, symbol: str, order_id: int | None = None,
                  orig_client_order_id: str | None = None) -> Order:
        """``GET /fapi/v1/order`` (open or closed). Raises -1102, -2013 "Order does not exist."."""
        acct = self._account(account_id)
        b = self._book(symbol)
        o = self._lookup(acct, b, order_id, orig_client_order_id)
        if o is None:
            raise error(-2013)
        return o

    def _lookup(self, acct: Account, b: _Book, order_id, cid) -> Order | None:
        if order_id is None and cid is None:
            raise ExchangeError(-1102, "Param 'orderId' or 'origClientOrderId' must be sent, "
                                       "but both were empty/null!")
        if order_id is not None:
            try:
                oid = int(order_id)
            except (TypeError, ValueError):
                raise error(-1102, "orderId") from None
            o = acct.orders.get(oid)
            if o is None or o.sym != b.sym:
                return None
            if cid is not None and o.client_order_id != cid:
                return None
            return o
        return self._find_cid(acct, b.sym, cid)

    @staticmethod
    def _find_cid(acct: Account, sym: int, cid: str) -> Order | None:
        """Latest order of the symbol with client order id ``cid`` (sent or generated)."""
        o = acct.cids.get((sym, cid))
        if o is None and cid.startswith(AUTO_CID_PREFIX) and cid[len(AUTO_CID_PREFIX):].isdigit():
            o = acct.orders.get(int(cid[len(AUTO_CID_PREFIX):]))
            if o is not None and (o._cid is not None or o.sym != sym):
                o = None
        return o

    def open_orders(self, account_id: str, symbol: str | None = None) -> list[Order]:
        """``GET /fapi/v1/openOrders``: NEW / PARTIALLY_FILLED orders, oldest first."""
        acct = self._account(account_id)
        if symbol is None:
            return list(acct.open_orders.values())
        sym = self._book(symbol).sym
        return list(acct.open_sym[sym].values())

    def all_orders(self, account_id: str, symbol: str, order_id: int | None = None,
                   start_time: int | None = None, end_time: int | None = None,
                   limit: int = 500) -> list[Order]:
        """``GET /fapi/v1/allOrders``: orders of the symbol with id ≥ ``order_id`` (or created
        in [start_time, end_time]), oldest first, at most ``limit`` (≤ 1000)."""
        acct = self._account(account_id)
        sym = self._book(symbol).sym
        limit = max(1, min(int(limit), 1000))
        out = []
        for o in acct.orders.values():
            if o.sym != sym:
                continue
            if order_id is not None and o.order_id < int(order_id):
                continue
            if start_time is not None and o.time < start_time:
                continue
            if end_time is not None and o.time > end_time:
                continue
            out.append(o)
        return out[:limit] if order_id is not None or start_time is not None else out[-limit:]

    # ======================================================================= account views
    def position_lots(self, account_id: str, sym: int, position_side: int = BOTH) -> int:
        """Fast path: signed position size in lots (long > 0) for symbol index ``sym``."""
        return self._accounts[account_id].pos[sym][position_side].lots

    def open_order_ids(self, account_id: str, sym: int | None = None) -> list[int]:
        """Fast path: ids of the account's open orders (of symbol index ``sym``), oldest first."""
        acct = self._accounts[account_id]
        return list(acct.open_orders if sym is None else acct.open_sym[sym])

    def wallet_balance(self, account_id: str) -> Decimal:
        """Wallet balance in USDT."""
        return money(self._account(account_id).wallet_units)

    def position(self, account_id: str, symbol: str, position_side: str = "BOTH") -> Position:
        """The live :class:`Position` record (read it, do not mutate it)."""
        ps = POSITION_SIDE_CODE.get(position_side)
        if ps is None:
            raise error(-4060)
        return self._account(account_id).pos[self._book(symbol).sym][ps]

    def _summary(self, acct: Account) -> dict:
        upnl = acct.unrealized_units(self._marks)
        pim, mm = acct.position_margin_units(self._marks)
        oim = acct.open_order_margin
        wallet = acct.wallet_units
        avail = wallet + upnl - pim - oim
        return {"wallet": wallet, "upnl": upnl, "margin_balance": wallet + upnl,
                "pim": pim, "oim": oim, "im": pim + oim, "mm": mm, "available": avail,
                "max_withdraw": max(0, min(avail, wallet))}

    def account(self, account_id: str) -> dict:
        """``GET /fapi/v2/account``: totals (USDT strings, 8 decimals), the USDT asset and
        every symbol's positions (both sides in hedge mode)."""
        acct = self._account(account_id)
        s = self._summary(acct)
        f = fmt_money
        positions = []
        for sym, sides in enumerate(acct.pos):
            mark = self._marks[sym]
            lev = acct.leverage[sym]
            for p in self._mode_sides(acct, sides):
                notional = abs(p.lots) * mark * p.spec.tick_lot_units
                im = -(-notional // lev) if p.lots else 0
                positions.append({
                    "symbol": p.spec.symbol,
                    "initialMargin": f(im),
                    "maintMargin": f(_ceil_rate(notional, p.spec.maint_margin_rate)),
                    "unrealizedProfit": f(p.unrealized_units(mark)),
                    "positionInitialMargin": f(im),
                    "openOrderInitialMargin": f(sum(
                        o.margin_units for o in acct.open_sym[sym].values()
                        if o.position_side == p.position_side)),
                    "leverage": str(lev),
                    "isolated": acct.margin_type[sym] == "ISOLATED",
                    "entryPrice": _dstr(p.entry_price),
                    "breakEvenPrice": _dstr(p.break_even_price),
                    "maxNotional": self._max_notional(p.spec, lev),
                    "bidNotional": "0",
                    "askNotional": "0",
                    "positionSide": POSITION_SIDE_NAME[p.position_side],
                    "positionAmt": p.spec.format_qty(p.position_amt),
                    "updateTime": p.update_time,
                })
        asset = {
            "asset": "USDT", "walletBalance": f(s["wallet"]), "unrealizedProfit": f(s["upnl"]),
            "marginBalance": f(s["margin_balance"]), "maintMargin": f(s["mm"]),
            "initialMargin": f(s["im"]), "positionInitialMargin": f(s["pim"]),
            "openOrderInitialMargin": f(s["oim"]), "crossWalletBalance": f(s["wallet"]),
            "crossUnPnl": f(s["upnl"]), "availableBalance": f(s["available"]),
            "maxWithdrawAmount": f(s["max_withdraw"]), "marginAvailable": True,
            "updateTime": acct.update_time,
        }
        return {
            "feeTier": 0, "feeBurn": False, "canTrade": True, "canDeposit": True,
            "canWithdraw": True, "updateTime": acct.update_time, "multiAssetsMargin": False,
            "tradeGroupId": -1,
            "totalInitialMargin": f(s["im"]), "totalMaintMargin": f(s["mm"]),
            "totalWalletBalance": f(s["wallet"]), "totalUnrealizedProfit": f(s["upnl"]),
            "totalMarginBalance": f(s["margin_balance"]),
            "totalPositionInitialMargin": f(s["pim"]),
            "totalOpenOrderInitialMargin": f(s["oim"]),
            "totalCrossWalletBalance": f(s["wallet"]), "totalCrossUnPnl": f(s["upnl"]),
            "availableBalance": f(s["available"]), "maxWithdrawAmount": f(s["max_withdraw"]),
            "assets": [asset], "positions": positions,
        }

    def balance(self, account_id: str) -> list[dict]:
        """``GET /fapi/v2/balance``: one USDT entry."""
        acct = self._account(account_id)
        s = self._summary(acct)
        f = fmt_money
        return [{"accountAlias": "exsim", "asset": "USDT", "balance": f(s["wallet"]),
                 "crossWalletBalance": f(s["wallet"]), "crossUnPnl": f(s["upnl"]),
                 "availableBalance": f(s["available"]), "maxWithdrawAmount": f(s["max_withdraw"]),
                 "marginAvailable": True, "updateTime": acct.update_time}]

    @staticmethod
    def _mode_sides(acct: Account, sides: list[Position]) -> list[Position]:
        return sides[1:] if acct.dual_side else sides[:1]

    def position_risk(self, account_id: str, symbol: str | None = None) -> list[dict]:
        """``GET /fapi/v2/positionRisk``: one entry per symbol (BOTH) in one-way mode, two
        (LONG, SHORT) in hedge mode.

        ``liquidationPrice`` is an estimate with Binance's cross-margin formula for a single
        position ("Liquidation Price of USDⓈ-M Contracts", cumulative amount 0):
        LP = (WB − TMM₁ + UPNL₁ − side·|Q|·EP) / (|Q|·MMR − side·|Q|), where WB is the
        wallet, TMM₁ / UPNL₁ the maintenance margin and unrealized PnL of the account's
        other positions, MMR the symbol's first-bracket maintenance rate; "0" when flat or
        when the result is ≤ 0. exsim never liquidates.
        """
        acct = self._account(account_id)
        syms = range(len(self._specs)) if symbol is None else [self._book(symbol).sym]
        out = []
        total_up = acct.unrealized_units(self._marks)
        _, total_mm = acct.position_margin_units(self._marks)
        for sym in syms:
            mark = self._marks[sym]
            lev = acct.leverage[sym]
            for p in self._mode_sides(acct, acct.pos[sym]):
                spec = p.spec
                up = p.unrealized_units(mark)
                notional_units = p.lots * mark * spec.tick_lot_units
                mm = _ceil_rate(abs(notional_units), spec.maint_margin_rate)
                liq = Decimal(0)
                if p.lots:
                    qty = abs(p.position_amt)
                    sgn = 1 if p.lots > 0 else -1
                    other = money(acct.wallet_units - (total_mm - mm) + (total_up - up))
                    den = qty * spec.maint_margin_rate - sgn * qty
                    liq = (other - sgn * qty * p.entry_price) / den
                    if liq < 0:
                        liq = Decimal(0)
                out.append({
                    "symbol": spec.symbol,
                    "positionAmt": spec.format_qty(p.position_amt),
                    "entryPrice": _dstr(p.entry_price),
                    "breakEvenPrice": _dstr(p.break_even_price),
                    "markPrice": f"{spec.tick_size * mark:.8f}",
                    "unRealizedProfit": fmt_money(up),
                    "liquidationPrice": _dstr(liq.quantize(Decimal(1).scaleb(-8))) if liq else "0",
                    "leverage": str(lev),
                    "maxNotionalValue": self._max_notional(spec, lev),
                    "marginType": "isolated" if acct.margin_type[sym] == "ISOLATED" else "cross",
                    "isolatedMargin": "0.00000000",
                    "isAutoAddMargin": "false",
                    "positionSide": POSITION_SIDE_NAME[p.position_side],
                    "notional": fmt_money(notional_units),
                    "isolatedWallet": "0",
                    "updateTime": p.update_time,
                })
        return out

    def user_trades(self, account_id: str, symbol: str, start_time: int | None = None,
                    end_time: int | None = None, from_id: int | None = None,
                    limit: int = 500) -> list[Trade]:
        """``GET /fapi/v1/userTrades``: fills of the symbol, oldest first, at most ``limit``
        (≤ 1000): from trade id ``from_id`` on, else within [start_time, end_time], else the
        most recent."""
        acct = self._account(account_id)
        sym = self._book(symbol).sym
        limit = max(1, min(int(limit), 1000))
        first = None if from_id is None else int(from_id)
        # fill tuples: [0] trade id, [3] symbol index, [12] time (see _fill)
        rows = [f for f in acct.fills if f[3] == sym
                and (first is None or f[0] >= first)
                and (start_time is None or f[12] >= start_time)
                and (end_time is None or f[12] <= end_time)]
        rows = rows[:limit] if first is not None or start_time is not None else rows[-limit:]
        return [self._trade(f) for f in rows]

    def income(self, account_id: str, symbol: str | None = None, income_type: str | None = None,
               start_time: int | None = None, end_time: int | None = None,
               limit: int = 100) -> list[Income]:
        """``GET /fapi/v1/income``: TRANSFER, REALIZED_PNL, COMMISSION, FUNDING_FEE records,
        oldest first, at most ``limit`` (≤ 1000). Raises -1130 for an unknown incomeType."""
        acct = self._account(account_id)
        if income_type is not None and income_type not in INCOME_TYPES:
            raise error(-1130, "incomeType")
        if symbol is not None:
            self._book(symbol)
        limit = max(1, min(int(limit), 1000))
        records = list(acct.incomes)
        if income_type in (None, REALIZED_PNL, COMMISSION):
            sym = None if symbol is None else self._sym_index[symbol]
            for f in acct.fills:
                if sym is None or f[3] == sym:
                    records.extend(self._trade(f).incomes())
            records.sort(key=lambda i: i.tran_id)
        out = [i for i in records
               if (symbol is None or i.symbol == symbol)
               and (income_type is None or i.income_type == income_type)
               and (start_time is None or i.time >= start_time)
               and (end_time is None or i.time <= end_time)]
        return out[:limit] if start_time is not None else out[-limit:]

    def commission_rate(self, symbol: str) -> dict:
        """``GET /fapi/v1/commissionRate`` (fractions, e.g. "0.0002")."""
        b = self._book(symbol)
        return {"symbol": b.spec.symbol,
                "makerCommissionRate": _dstr(self.config.maker_fee_bps / 10000),
                "takerCommissionRate": _dstr(self.config.taker_fee_bps / 10000)}

    def totals(self, account_id: str) -> dict[str, Decimal]:
        """Running totals in USDT: ``transfer``, ``realized_pnl``, ``commission`` (charged, > 0
        for positive fees), ``funding`` and ``wallet``; wallet = transfer + realized_pnl −
        commission + funding holds exactly."""
        a = self._account(account_id)
        return {"transfer": money(a.transfer_units), "realized_pnl": money(a.realized_units),
                "commission": money(a.commission_units), "funding": money(a.funding_units),
                "wallet": money(a.wallet_units)}

    # ======================================================================= internals
    def _trade(self, f: tuple) -> Trade:
        """The :class:`Trade` of one fill tuple (see :meth:`_fill`)."""
        return Trade(f[0], f[1], f[2], self._specs[f[3]], *f[4:])

    def _tran_id(self) -> int:
        i = self._next_tran_id
        self._next_tran_id = i + 1
        return i

    def _fee(self, quote_units: int, maker: bool) -> int:
        if maker:
            num, den = self._maker_num, self._maker_den
        else:
            num, den = self._taker_num, self._taker_den
        return (2 * quote_units * num + den) // (2 * den)   # round half up

    def _slip(self, px: int, side: int, market: bool) -> int:
        """``px`` moved against a ``side`` taker by the market or stop slippage, whole ticks."""
        if market:
            num, den = self._mslip_num, self._mslip_den
        else:
            num, den = self._sslip_num, self._sslip_den
        if not num:
            return px
        adj = -(-(px * num) // den)
        return px + adj if side == BUY else max(1, px - adj)

    def _open(self, acct: Account, o: Order) -> None:
        acct.open_orders[o.order_id] = o
        acct.open_sym[o.sym][o.order_id] = o

    def _finish(self, acct: Account, o: Order, status: int, t: int) -> None:
        """Close an order with ``status`` (FILLED/CANCELED/EXPIRED) and release its margin."""
        was_open = acct.open_orders.pop(o.order_id, None) is not None
        o.status = status
        o.update_time = t
        if was_open:
            del acct.open_sym[o.sym][o.order_id]
            if o.type in CONDITIONAL_TYPES and not o.triggered:
                acct.n_algo[o.sym] -= 1
            if o.margin_units:
                acct.open_order_margin -= o.margin_units
                o.margin_units = 0
            if o.trig_dir:
                b = self._books[o.sym]
                b.remove(o)
                if (o.type == LIMIT or o.triggered) and self._is_closing(acct, o):
                    acct.n_reduce_only -= 1
            if o.pending_next_open:
                o.pending_next_open = False
                pend = self._books[o.sym].pending
                if o in pend:
                    pend.remove(o)
        if status != FILLED and self._listeners:
            self._emit(acct.account_id, ev.order_trade_update(
                o, "CANCELED" if status == CANCELED else "EXPIRED", t))

    @staticmethod
    def _is_closing(acct: Account, o: Order) -> bool:
        if acct.dual_side:
            return (o.position_side == LONG) == (o.side == SELL)
        return o.reduce_only

    def _cancel(self, acct: Account, o: Order, t: int) -> None:
        self._finish(acct, o, CANCELED, t)

    def _reducible(self, acct: Account, o: Order) -> int:
        """Lots order ``o`` may still close of its position (0 if it cannot reduce)."""
        cur = acct.pos[o.sym][o.position_side].lots
        if cur == 0 or (cur > 0) == (o.side == BUY):
            return 0
        return -cur if cur < 0 else cur

    def _execute_taker(self, acct: Account, b: _Book, o: Order, px: int, t: int) -> None:
        """Fill the rest of ``o`` at once at ``px`` as taker (reduce-only capped)."""
        lots = o.orig_lots - o.executed_lots
        if o.reduce_only or o.close_position or (acct.dual_side and self._is_closing(acct, o)):
            cap = self._reducible(acct, o)
            if lots > cap:
                lots = cap
        if lots > 0:
            self._fill(acct, b, o, px, lots, False, t)
        if o.executed_lots < o.orig_lots:
            self._finish(acct, o, EXPIRED, t)
        elif o.order_id in acct.open_orders:
            self._finish(acct, o, FILLED, t)
        # else: an order that never rested is complete (_fill set FILLED and updateTime)

    def _fill(self, acct: Account, b: _Book, o: Order, px: int, lots: int, maker: bool,
              t: int) -> None:
        """Book one fill: position, realized PnL, commission, wallet, trade (its income
        records REALIZED_PNL / COMMISSION derive from the trade, see :meth:`Trade.incomes`)."""
        sym = b.sym
        pos = acct.pos[sym][o.position_side]
        side = o.side
        tlu = b.tlu
        quote = px * lots * tlu
        if maker:
            num, den = self._maker_num, self._maker_den
        else:
            num, den = self._taker_num, self._taker_den
        fee = (2 * quote * num + den) // (2 * den)      # commission, rounded half up
        cur = pos.lots
        realized = 0
        if cur == 0 or (cur > 0) == (side > 0):
            closing = False
            pos.lots = cur + side * lots
            pos.cost_units += quote
            pos.fee_units += fee
            if cur == 0:
                acct.active.append(pos)
        else:
            closing = True
            a = -cur if cur < 0 else cur
            close = lots if lots <= a else a
            if close == a:
                cost_part = pos.cost_units
                fee_part = pos.fee_units
            else:
                cost_part = pos.cost_units * close // a
                fee_part = pos.fee_units * close // a
            close_value = px * close * tlu
            realized = close_value - cost_part if cur > 0 else cost_part - close_value
            pos.cost_units -= cost_part
            pos.fee_units -= fee_part
            rest = lots - close
            if rest:   # one-way flip: the remainder opens the other side at px
                pos.lots = side * rest
                pos.cost_units = px * rest * tlu
                pos.fee_units = fee * rest // lots
            else:
                pos.lots = cur + side * close
                if close == a:
                    acct.active.remove(pos)
            pos.cum_realized_units += realized
        pos.update_time = t
        acct.wallet_units += realized - fee
        acct.realized_units += realized
        acct.commission_units += fee
        acct.update_time = t
        tid = self._next_trade_id
        self._next_trade_id = tid + 1
        seq = self._next_tran_id
        self._next_tran_id = seq + 2
        # Kept as a tuple of ints/str/bool in Trade's argument order, symbol index in place of
        # the spec: the garbage collector stops tracking such tuples, which keeps long
        # backtests fast. Trade objects are built on query (_trade).
        acct.fills.append((tid, o.order_id, acct.account_id, sym, side, o.position_side,
                           px, lots, quote, fee, realized, maker, t, seq, closing))
        o.executed_lots += lots
        o.cum_quote_units += quote
        o.status = FILLED if o.executed_lots >= o.orig_lots else PARTIALLY_FILLED
        o.update_time = t
        if self._listeners:
            self._emit(acct.account_id, ev.order_trade_update(o, "TRADE", t, lots, px, fee, tid,
                                                              maker, realized))
            self._emit(acct.account_id, ev.account_update(
                "ORDER", t, acct.wallet_units, realized - fee,
                [(pos, pos.unrealized_units(b.mark), pos.cum_realized_units,
                  acct.margin_type[sym])]))
        if closing and acct.n_reduce_only:
            # only a fill that reduced or flipped the position can leave reduce-only orders
            # with more quantity than the position
            self._trim_reduce_only(acct, sym, o.position_side, o, t)

    def _trim_reduce_only(self, acct: Account, sym: int, ps: int, skip: Order, t: int) -> None:
        """Keep resting reduce-only / hedge-closing LIMIT orders within the position
        (oldest first); an order with nothing left to reduce EXPIRES."""
        cur = acct.pos[sym][ps].lots
        room = -cur if cur < 0 else cur
        victims = []
        dual = acct.dual_side
        closing_side = SELL if ps == LONG else BUY   # hedge mode: the side that closes ps
        for o in acct.open_sym[sym].values():
            if o.position_side != ps or o is skip:
                continue
            if not (o.type == LIMIT or o.triggered):
                continue   # conditional orders are sized when they trigger
            if not (o.side == closing_side if dual else o.reduce_only):
                continue
            if cur == 0 or (cur > 0) == (o.side == BUY):
                victims.append(o)
                continue
            remaining = o.orig_lots - o.executed_lots
            if remaining <= room:
                room -= remaining
            elif room > 0:
                o.orig_lots = o.executed_lots + room   # trimmed to what is left to reduce
                o.update_time = t
                room = 0
            else:
                victims.append(o)
        for o in victims:
            self._finish(acct, o, EXPIRED, t)

    def _fill_pending(self, b: _Book, open_px: int, t: int) -> None:
        """next_open fill model: MARKET orders waiting for this bar's open."""
        pending = b.pending
        b.pending = []
        for o in pending:
            if o.status > PARTIALLY_FILLED:
                continue
            acct = self._accounts[o.account_id]
            o.pending_next_open = False
            if o.margin_units:
                acct.open_order_margin -= o.margin_units
                o.margin_units = 0
            self._execute_taker(acct, b, o, self._slip(open_px, o.side, True), t)

    # ----------------------------------------------------------------- path walking
    def _walk(self, b: _Book, open_time: int, o: int, h: int, l: int, c: int,
              close_time: int) -> None:
        """Walk O → L → H → C (C ≥ O) or O → H → L → C, firing what each segment reaches."""
        if c >= o:
            x1, x2 = l, h
        else:
            x1, x2 = h, l
        d = close_time - open_time
        seg = self._segment
        seg(b, b.last or o, o, open_time, True)          # the gap from the previous price
        seg(b, o, x1, open_time + d // 3, False)
        seg(b, x1, x2, open_time + 2 * d // 3, False)
        seg(b, x2, c, close_time, False)

    def _segment(self, b: _Book, a: int, z: int, t: int, gap: bool) -> None:
        """Price moves a → z: fire what it reaches, then z is the last (and, without a mark
        feed, the mark) price."""
        if b.dirty:
            b.recompute()
        if (z <= a and b.dn >= z) or (z >= a and b.up <= z):
            self._fire(b, b.orders, a, z, t, gap, False)
        b.last = z
        if not b.mark_feed:
            b.mark = z
            self._marks[b.sym] = z

    def _fire(self, b: _Book, orders: dict[int, Order], a: int, z: int, t: int, gap: bool,
              mark_trigger: bool) -> None:
        """Fire, in path order, the orders of ``orders`` reached when the price moves a → z."""
        if z <= a:
            falling = [o for o in orders.values() if o.trig_dir < 0 and o.trig_thr >= z]
            falling.sort(key=lambda o: (-o.trig_thr, o.order_id))
        else:
            falling = []
        if z >= a:
            rising = [o for o in orders.values() if o.trig_dir > 0 and o.trig_thr <= z]
            rising.sort(key=lambda o: (o.trig_thr, o.order_id))
        else:
            rising = []
        for o in falling + rising:
            if o.order_id not in orders or o.status > PARTIALLY_FILLED:
                continue   # cancelled, expired or re-filed while earlier orders fired
            acct = self._accounts[o.account_id]
            if o.type == LIMIT or o.triggered:
                self._fill_resting_limit(acct, b, o, t)
            else:
                if mark_trigger:
                    base = b.last or z
                elif gap:
                    base = z
                else:
                    base = o.trig_thr
                self._trigger(acct, b, o, base, t)

    def _fill_resting_limit(self, acct: Account, b: _Book, o: Order, t: int) -> None:
        b.remove(o)
        if o.margin_units:
            acct.open_order_margin -= o.margin_units
            o.margin_units = 0
        closing = self._is_closing(acct, o)
        if closing:
            acct.n_reduce_only -= 1
            o.trig_dir = 0   # already counted down; keep _finish from counting again
        lots = o.orig_lots - o.executed_lots
        if closing:
            cap = self._reducible(acct, o)
            if lots > cap:
                lots = cap
        if lots > 0:
            self._fill(acct, b, o, o.price_ticks, lots, o.maker_ok, t)
        self._finish(acct, o, FILLED if o.executed_lots >= o.orig_lots else EXPIRED, t)

    def _trigger(self, acct: Account, b: _Book, o: Order, base: int, t: int) -> None:
        """A conditional order's stop price was reached: size it, margin-check it, execute."""
        b.remove(o)
        o.triggered = True
        acct.n_algo[o.sym] -= 1
        closing = (o.close_position or o.reduce_only
                   or (acct.dual_side and self._is_closing(acct, o)))
        if o.close_position:
            o.orig_lots = self._reducible(acct, o)
        elif closing:
            cap = self._reducible(acct, o)
            if o.orig_lots > cap:
                o.orig_lots = cap
        if o.orig_lots <= 0:
            o.trig_dir = 0
            self._finish(acct, o, EXPIRED, t)
            return
        if not closing:
            # Opening exposure at trigger time: the margin must be there now.
            pos = acct.pos[o.sym][o.position_side].lots
            lots = o.orig_lots
            if not acct.dual_side and pos and (pos > 0) != (o.side == BUY):
                lots = max(0, lots - abs(pos))
            if lots:
                px = o.price_ticks if o.type in (STOP, TAKE_PROFIT) else base
                notional = lots * px * b.spec.tick_lot_units
                need = -(-notional // acct.leverage[o.sym]) + self._fee(notional, False)
                if acct.available_units(self._marks) < need:
                    o.trig_dir = 0
                    self._finish(acct, o, EXPIRED, t)
                    return
        if self._listeners:
            self._emit(acct.account_id, ev.order_trade_update(o, "NEW", t))
        if o.type == STOP_MARKET or o.type == TAKE_PROFIT_MARKET:
            o.trig_dir = 0
            self._execute_taker(acct, b, o, self._slip(base, o.side, False), t)
            return
        # STOP / TAKE_PROFIT: now a LIMIT order at its price.
        p = o.price_ticks
        if (o.side == BUY and p >= base) or (o.side == SELL and p <= base):
            o.maker_ok = False
            o.trig_dir = 0
            self._execute_taker(acct, b, o, base, t)
            return
        _set_trigger(o)
        o.on_mark = False
        if self._is_closing(acct, o):
            acct.n_reduce_only += 1
        b.add(o)


def _ceil_rate(units: int, rate: Decimal) -> int:
    num, den = rate.as_integer_ratio()
    return -(-(units * num) // den)


def _dstr(d: Decimal) -> str:
    """Plain decimal string without exponent or trailing zeros ("0" for zero)."""
    if d == 0:
        return "0"
    s = f"{d.normalize():f}"
    return s
