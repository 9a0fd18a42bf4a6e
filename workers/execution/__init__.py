"""Execution: how a sized signal becomes orders on a Binance USDⓈ-M exchange, via ccxt.

Same code against exsim (paper), Binance testnet and live; only the TradingBot spec's
``venue``/``mode``/``endpoints`` differ (:func:`build_exchange`). The bot worker uses
:class:`Executor`; every call returns a typed result (:mod:`.results`) it publishes on
``fleet.{namespace}.{bot}.order|fill|position``.

Modules, top to bottom along the data path:

- :mod:`.client` — the ccxt client from the spec; position mode and leverage;
- :mod:`.filters` — tick/step/min-notional of each symbol and the rounding rules;
- :mod:`.client_ids` — deterministic client order ids (idempotent retries);
- :mod:`.retry` / :mod:`.errors` — backoff with jitter, which errors are transient;
- :mod:`.orders` — one order placed, cancelled or looked up, idempotently;
- :mod:`.executor` — entries, stops, take-profit tiers, trailing, exits, drain, sync,
  rehydration;
- :mod:`.results` / :mod:`.hooks` — what comes back, and the metrics callbacks;
- :mod:`.userdata` — the user-data stream watcher that says which symbol to ``sync`` now.
"""

from .client import AccountSetup, build_exchange, exsim_urls, prepare_account
from .client_ids import CLIENT_ID_PATTERN, ClientIds, client_order_id
from .errors import AccountSetupError, ExchangeRequestError, ExecutionError, ExecutionInputError
from .executor import EntryRequest, Executor, StopFallback, pct_stop_fallback
from .filters import SymbolRules, rules_from_market
from .hooks import ExecutionHooks, NullHooks
from .results import (CloseResult, DrainResult, EntryResult, Fill, OrderResult, PositionView,
                      RehydrateResult, StopMoveResult, SyncResult, TakeProfitView)
from .retry import RetriesExhausted, RetryPolicy
from .userdata import UserDataWatcher, user_stream_base

__all__ = [
    "AccountSetup", "AccountSetupError", "CLIENT_ID_PATTERN", "ClientIds", "CloseResult",
    "DrainResult", "EntryRequest", "EntryResult", "ExchangeRequestError", "ExecutionError",
    "ExecutionHooks", "ExecutionInputError", "Executor", "Fill", "NullHooks", "OrderResult",
    "PositionView", "RehydrateResult", "RetriesExhausted", "RetryPolicy", "StopFallback",
    "StopMoveResult", "SymbolRules", "SyncResult", "TakeProfitView", "UserDataWatcher",
    "build_exchange", "client_order_id", "exsim_urls", "pct_stop_fallback", "prepare_account",
    "rules_from_market", "user_stream_base",
]
