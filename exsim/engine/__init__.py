"""exsim matching core: a Binance USDⓈ-M futures exchange as a plain Python library.

No web code here: the FastAPI server (``tradefleet.exsim.server``) and the in-process
backtester both drive :class:`Engine`.

Units. At the boundary prices are USDT and quantities base units, as ``Decimal`` (exact
decimal strings and ints accepted); times are integer ms UTC. Inside, prices are integer
**ticks**, quantities integer **lots** (stepSize units) and money integer **1e-8 USDT**, so
accounting is exact: wallet = initial + Σ realized PnL − Σ commission + Σ funding, always.

See :mod:`.engine` for the intra-bar price path, fill model and fee rules.
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
