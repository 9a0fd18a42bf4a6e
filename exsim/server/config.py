"""Server configuration: data, replay speed, bind address, API keys, starting balance."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from ..engine import EngineConfig, SymbolSpec
from .auth import ApiKey

__all__ = ["ServerConfig", "DEFAULT_API_KEY", "DEFAULT_API_SECRET", "DEFAULT_PORT",
           "keys_from_env"]

#: Used when no key is given by flag or env (paper trading only; documented in the README).
DEFAULT_API_KEY = "exsim-key"
DEFAULT_API_SECRET = "exsim-secret"
#: The port the earlier ExSim gateway used (seed 000), so old client settings keep working.
DEFAULT_PORT = 9010


def keys_from_env(env: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """Key/secret pairs from ``EXSIM_API_KEY`` / ``EXSIM_API_SECRET`` (comma-separated lists
    of equal length for several accounts). Raises ValueError when only one is set or the
    counts differ."""
    env = os.environ if env is None else env
    raw_keys, raw_secrets = env.get("EXSIM_API_KEY", ""), env.get("EXSIM_API_SECRET", "")
    if not raw_keys and not raw_secrets:
        return []
    keys = [k.strip() for k in raw_keys.split(",") if k.strip()]
    secrets = [s.strip() for s in raw_secrets.split(",") if s.strip()]
    if len(keys) != len(secrets) or not keys:
        raise ValueError(f"EXSIM_API_KEY has {len(keys)} key(s) but EXSIM_API_SECRET has "
                         f"{len(secrets)} secret(s); give one secret per key")
    return list(zip(keys, secrets))


@dataclass
class ServerConfig:
    """Everything :func:`~tradefleet.exsim.server.create_app` needs.

    Attributes:
        data_dir: folder laid out like ``data/binance-um`` (klines/, funding/, markprice/).
        speed: replay speed in bars (1m steps) per second when running.
        host, port: bind address of :func:`~tradefleet.exsim.server.serve` (port 0 = any
            free port).
        api_keys: ``(key, secret)`` pairs; each gets its own engine account. Empty means
            ``EXSIM_API_KEY``/``EXSIM_API_SECRET`` from the environment, else the default
            pair ``exsim-key``/``exsim-secret``.
        initial_balance: USDT deposited in every account at start and on reset.
        symbols: symbols to replay (default: every symbol with a klines file).
        paused: start with the replay paused (step it from the admin API).
        engine_config: fees, slippage, fill model (default :class:`EngineConfig`).
        specs: symbol filters (default: the engine's published Binance specs).
    """

    data_dir: Path | str
    speed: float = 20.0
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    api_keys: list[tuple[str, str]] = field(default_factory=list)
    initial_balance: Decimal = Decimal("10000")
    symbols: list[str] | None = None
    paused: bool = False
    engine_config: EngineConfig | None = None
    specs: dict[str, SymbolSpec] | None = None

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.initial_balance = Decimal(str(self.initial_balance))
        if self.initial_balance < 0:
            raise ValueError(f"initial_balance must be >= 0 USDT, got {self.initial_balance}")
        if not self.speed > 0:
            raise ValueError(f"speed must be > 0 bars per second, got {self.speed}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")

    def resolved_keys(self) -> list[ApiKey]:
        """The API keys in effect, each with its account id (``account-1``, ``account-2``...)."""
        pairs = self.api_keys or keys_from_env() or [(DEFAULT_API_KEY, DEFAULT_API_SECRET)]
        seen: set[str] = set()
        out = []
        for n, (key, secret) in enumerate(pairs, start=1):
            if key in seen:
                raise ValueError(f"API key {key!r} given twice")
            if not key or not secret:
                raise ValueError(f"API key pair #{n}: key and secret must be non-empty")
            seen.add(key)
            out.append(ApiKey(key, secret, f"account-{n}"))
        return out
