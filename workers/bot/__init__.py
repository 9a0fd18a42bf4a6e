"""The bot worker: one process per TradingBot (``tradefleet bot --config bot.yaml``).

Data path, top to bottom (DESIGN.md, "bot worker")::

    md.{venue}.{symbol}.kline.{interval}   (+ .funding, .mark)       stream MARKET
        │  durable pull consumer bot_{namespace}_{name}, one message in flight,
        │  acked only after the bar was fully processed              (market.py)
        ▼
    strategy.on_bar → Signal                                          (trader.py)
        │  exit → executor.close_position            (never asks risk, any phase)
        │  entry → size_position → RiskChecker.check (fail closed) → executor.open_position
        │  trailing → strategy.trail_stop → executor.move_stop (only tightens)
        │  every bar → executor.sync (stop / take-profit fills, loss streak, PnL)
        ▼
    fleet.{namespace}.{name}.signal|order|fill|position|status|heartbeat   stream FLEET
                                                     (publisher.py, tradefleet.bus.fleet_messages)

Modules: :mod:`.config` (manifest, options, credentials from env, config hash),
:mod:`.market` (consumer and warm-up history), :mod:`.trader` (per-bar logic, phases,
commands), :mod:`.ledger` (PnL and loss streak), :mod:`.events` (execution results →
messages), :mod:`.publisher`, :mod:`.commands` (``fleet.cmd.{namespace}.{name}``),
:mod:`.metrics` (Prometheus), :mod:`.worker` (start-up order, loops, shutdown),
:mod:`.main` (the CLI command: exit codes 0 / 1 / 2).

In-process use (tests, benchmarks)::

    worker = BotWorker(bot, BotOptions(nats_url=url, metrics_port=0))
    task = asyncio.create_task(worker.run())
    await worker.started.wait()
    ...
    worker.request_stop("done"); exit_code = await task
"""

from .commands import CommandListener, send_command
from .config import (
    BotOptions,
    ConfigError,
    Credentials,
    config_hash,
    credentials_from_env,
    load_bot,
)
from .worker import BotWorker, run_bot

__all__ = [
    "BotOptions", "BotWorker", "CommandListener", "ConfigError", "Credentials", "config_hash",
    "credentials_from_env", "load_bot", "run_bot", "send_command",
]
