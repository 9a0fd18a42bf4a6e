"""The exsim matching engine (public API; see the package docstring for conventions)."""

from __future__ import annotations

from decimal import Decimal
from typing import Callable, Iterable

from .config import EngineConfig
from .models import Event, Income, Order, Trade
from .specs import SymbolSpec

Number = Decimal | str | int

__all__ = ["Engine", "Listener"]

Listener = Callable[[Event], None]


class Engine:
    """Binance USDⓈ-M futures matching engine over replayed klines (no web code).

    Boundary methods take ``Decimal`` (or exact decimal strings / ints) for prices in USDT and
    quantities in base units, and Binance's enum strings; they raise
    :class:`~tradefleet.exsim.engine.errors.ExchangeError` with Binance's code and message,
    leaving state unchanged. Records come back as :class:`Order`, :class:`Trade`,
    :class:`Income` (``to_binance()`` renders Binance's JSON) or plain Binance-shaped dicts.
    """

    def __init__(self, specs: Iterable[SymbolSpec] | dict[str, SymbolSpec] | None = None,
                 config: EngineConfig | None = None) -> None:
        raise NotImplementedError

    # -- lifecycle / events ---------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every user-data event; returns an unsubscribe function."""
        raise NotImplementedError

    def reset(self) -> None:
        """Back to the state right after construction: accounts re-created with their initial
        deposit, no orders/trades/positions, prices unknown, clock 0, id counters restarted."""
        raise NotImplementedError

    # -- accounts -----------------------------------------------------------------------------
    def create_account(self, account_id: str, balance: Number, time_ms: int | None = None) -> None:
        """Open an account with ``balance`` USDT deposited (income TRANSFER)."""
        raise NotImplementedError

    def change_leverage(self, account_id: str, symbol: str, leverage: int) -> dict:
        """``POST /fapi/v1/leverage``."""
        raise NotImplementedError

    def change_margin_type(self, account_id: str, symbol: str, margin_type: str) -> None:
        """``POST /fapi/v1/marginType``."""
        raise NotImplementedError

    def change_position_mode(self, account_id: str, dual_side_position: bool) -> None:
        """``POST /fapi/v1/positionSide/dual``."""
        raise NotImplementedError

    def position_mode(self, account_id: str) -> bool:
        """``GET /fapi/v1/positionSide/dual``: True in hedge mode."""
        raise NotImplementedError

    # -- market data --------------------------------------------------------------------------
    def on_bar(self, symbol: str, open_time: int, open: Number, high: Number, low: Number,
               close: Number, close_time: int | None = None, mark_price: Number | None = None) -> None:
        """Replay one closed kline."""
        raise NotImplementedError

    def on_bar_ticks(self, sym: int, open_time: int, o: int, h: int, l: int, c: int,
                     close_time: int) -> None:
        """Fast path of :meth:`on_bar` with prices in integer ticks."""
        raise NotImplementedError

    def set_mark_price(self, symbol: str, mark_price: Number, time_ms: int | None = None) -> None:
        """Update the mark price."""
        raise NotImplementedError

    def apply_funding(self, symbol: str, rate: Number, mark_price: Number, time_ms: int) -> None:
        """Settle one funding event."""
        raise NotImplementedError

    # -- orders -------------------------------------------------------------------------------
    def place_order(self, account_id: str, symbol: str, side: str, type: str,
                    quantity: Number | None = None, price: Number | None = None,
                    time_in_force: str | None = None, stop_price: Number | None = None,
                    position_side: str | None = None, reduce_only: bool = False,
                    close_position: bool = False, working_type: str = "CONTRACT_PRICE",
                    price_protect: bool = False, new_client_order_id: str | None = None,
                    time_ms: int | None = None) -> Order:
        """``POST /fapi/v1/order``."""
        raise NotImplementedError

    def cancel_order(self, account_id: str, symbol: str, order_id: int | None = None,
                     orig_client_order_id: str | None = None, time_ms: int | None = None) -> Order:
        """``DELETE /fapi/v1/order``."""
        raise NotImplementedError

    def cancel_all_orders(self, account_id: str, symbol: str, time_ms: int | None = None) -> list[Order]:
        """``DELETE /fapi/v1/allOpenOrders``."""
        raise NotImplementedError

    def get_order(self, account_id: str, symbol: str, order_id: int | None = None,
                  orig_client_order_id: str | None = None) -> Order:
        """``GET /fapi/v1/order``."""
        raise NotImplementedError

    def open_orders(self, account_id: str, symbol: str | None = None) -> list[Order]:
        """``GET /fapi/v1/openOrders``."""
        raise NotImplementedError

    def all_orders(self, account_id: str, symbol: str, order_id: int | None = None,
                   start_time: int | None = None, end_time: int | None = None,
                   limit: int = 500) -> list[Order]:
        """``GET /fapi/v1/allOrders``."""
        raise NotImplementedError

    # -- account views ------------------------------------------------------------------------
    def account(self, account_id: str) -> dict:
        """``GET /fapi/v2/account``."""
        raise NotImplementedError

    def balance(self, account_id: str) -> list[dict]:
        """``GET /fapi/v2/balance``."""
        raise NotImplementedError

    def position_risk(self, account_id: str, symbol: str | None = None) -> list[dict]:
        """``GET /fapi/v2/positionRisk``."""
        raise NotImplementedError

    def user_trades(self, account_id: str, symbol: str, start_time: int | None = None,
                    end_time: int | None = None, from_id: int | None = None,
                    limit: int = 500) -> list[Trade]:
        """``GET /fapi/v1/userTrades``."""
        raise NotImplementedError

    def income(self, account_id: str, symbol: str | None = None, income_type: str | None = None,
               start_time: int | None = None, end_time: int | None = None,
               limit: int = 100) -> list[Income]:
        """``GET /fapi/v1/income``."""
        raise NotImplementedError

    def book_ticker(self, symbol: str) -> dict:
        """``GET /fapi/v1/ticker/bookTicker``."""
        raise NotImplementedError

    def depth(self, symbol: str, limit: int = 5) -> dict:
        """``GET /fapi/v1/depth``."""
        raise NotImplementedError
