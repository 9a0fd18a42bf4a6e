"""exsim matching core: a Binance USDⓈ-M futures exchange as a plain Python library.

No web code here: the FastAPI server (``tradefleet.exsim.server``) and the in-process
backtester both drive :class:`Engine`.

Units. At the boundary prices are USDT and quantities base units, as ``Decimal`` (exact
decimal strings and ints accepted); times are integer ms UTC. Inside, prices are integer
**ticks**, quantities integer **lots** (stepSize units) and money integer **1e-8 USDT**, so
accounting is exact: wallet = initial + Σ realized PnL − Σ commission + Σ funding, always.

See :mod:`.engine` for the intra-bar price path, fill model and fee rules.

Public API (all on :class:`Engine`; errors are :class:`ExchangeError` with Binance codes):

* setup: ``Engine(specs=None, config=EngineConfig())``, ``create_account(id, balance)``,
  ``deposit``, ``reset()``, ``subscribe(listener) -> unsubscribe``, ``set_time(ms)``;
* market data: ``on_bar(symbol, open_time, o, h, l, c, close_time=None, mark_price=None)``,
  ``set_price`` (paper mode), ``set_mark_price``, ``apply_funding(symbol, rate, mark, ms)``,
  ``book_ticker``, ``depth``, ``last_price``, ``mark_price``, ``exchange_info``, ``spec``;
* orders: ``place_order(...) -> Order``, ``cancel_order``, ``cancel_all_orders``,
  ``get_order``, ``open_orders``, ``all_orders``;
* settings: ``change_leverage``, ``change_margin_type``, ``change_position_mode``,
  ``leverage``, ``margin_type``, ``position_mode``;
* views (Binance JSON shapes): ``account``, ``balance``, ``position_risk``, ``user_trades``,
  ``income``, ``commission_rate``; Python views ``position``, ``wallet_balance``, ``totals``;
* fast path (ints, for the backtester): ``symbol_index``, ``price_to_ticks``,
  ``on_bar_ticks``, ``submit``, ``cancel``, ``position_lots``, ``open_order_ids``.
"""

from .config import FILL_IMMEDIATE, FILL_MODELS, FILL_NEXT_OPEN, EngineConfig
from .engine import Engine, Listener
from .errors import ERRORS, ExchangeError, error
from .models import Event, Income, Order, Position, Trade, fmt_money, money
from .specs import BTCUSDT, ETHUSDT, MONEY_SCALE, SOLUSDT, SymbolSpec, default_specs

__all__ = [
    "Engine", "Listener", "EngineConfig", "FILL_IMMEDIATE", "FILL_NEXT_OPEN", "FILL_MODELS",
    "ExchangeError", "ERRORS", "error", "Order", "Trade", "Income", "Position", "Event",
    "SymbolSpec", "default_specs", "BTCUSDT", "ETHUSDT", "SOLUSDT", "MONEY_SCALE",
    "money", "fmt_money",
]
