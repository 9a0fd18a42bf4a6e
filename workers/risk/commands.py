"""Commands the risk service sends to bots on ``fleet.cmd.{namespace}.{bot}`` (stream FLEET).

Bodies (JSON, ``v`` added by the codec; times UTC ms; notionals USDT as decimal strings)::

    {"command": "kill", "reason": str, "time_ms": int, "source": "risk"}
        kill switch: cancel entry orders, flatten every position, open nothing new.
    {"command": "flatten", "reason": str, "time_ms": int, "source": "risk"}
        DailyGuard ``onHalt: close_all``: flatten this bot's positions (it is halted too).
    {"command": "auto_close", "symbol": "BTCUSDT", "notional_usdt": "100.5",
     "target_notional_usdt": "899.5", "reason": str, "time_ms": int, "source": "risk"}
        PortfolioGuard auto-close: reduce-only, bring the position's absolute notional on the
        symbol down to at most ``target_notional_usdt`` (``notional_usdt`` is the cut as
        computed); acting on the target makes a repeated instruction harmless.

Commands are stored in FLEET, so a bot that was down reads the last one for its subject at
start. Each carries a ``Nats-Msg-Id`` derived from what caused it (policy revision, halt,
cut), so two risk replicas reacting to the same change store it once.

The bots a fleet-wide command goes to are every bot the risk state knows (any bot that
ever checked or reported) plus every bot with a heartbeat or status in stream FLEET.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from tradefleet.bus import subjects
from tradefleet.bus.codec import msg_id
from tradefleet.bus.publish import publish
from tradefleet.bus.streams import FLEET
from tradefleet.workers.risk.protocol import split_bot
from tradefleet.workers.risk.state import FleetState

log = logging.getLogger(__name__)

KILL = "kill"
FLATTEN = "flatten"
AUTO_CLOSE = "auto_close"


def kill_command(reason: str, now_ms: int) -> dict:
    return {"command": KILL, "reason": reason, "time_ms": now_ms, "source": "risk"}


def flatten_command(reason: str, now_ms: int) -> dict:
    return {"command": FLATTEN, "reason": reason, "time_ms": now_ms, "source": "risk"}


def auto_close_command(symbol: str, notional_usdt: Decimal, target_notional_usdt: Decimal,
                       reason: str, now_ms: int) -> dict:
    return {"command": AUTO_CLOSE, "symbol": symbol, "notional_usdt": notional_usdt,
            "target_notional_usdt": target_notional_usdt, "reason": reason, "time_ms": now_ms,
            "source": "risk"}


def id_part(text: str) -> str:
    """A msg-id part: no ':' or whitespace (codec.msg_id rule)."""
    return "".join("_" if c == ":" or c.isspace() else c for c in text) or "_"


async def send(js: Any, bot: str, body: dict, *dedupe: str | int, timeout: float = 2.0) -> bool:
    """Publish command ``body`` to ``bot``'s command subject; True when stored.

    ``dedupe`` parts make the ``Nats-Msg-Id`` (with the bot). Errors are logged, not
    raised: one unreachable subject must not stop the others.
    """
    try:
        ns, name = split_bot(bot)
        mid = msg_id("risk", *(id_part(str(p)) for p in dedupe), ns, name)
        await publish(js, subjects.command(ns, name), body, msg_id=mid, timeout=timeout)
        return True
    except Exception as exc:  # noqa: BLE001 - logged with the bot; the caller counts failures
        log.error("cannot send %s command to %s: %s", body.get("command"), bot, exc,
                  extra={"bot": bot, "command": body.get("command"), "error_type": type(exc).__name__})
        return False


async def send_many(js: Any, bots: Iterable[str], body: dict, *dedupe: str | int) -> list[str]:
    """Send ``body`` to every bot concurrently; returns the bots it reached."""
    ordered = sorted(set(bots))
    done = await asyncio.gather(*(send(js, b, body, *dedupe) for b in ordered))
    return [b for b, ok in zip(ordered, done) if ok]


async def known_bots(js: Any, state: FleetState | None) -> set[str]:
    """Every ``namespace/bot`` the risk state or stream FLEET (heartbeat, status) knows."""
    bots: set[str] = set()
    if state is not None:
        bots |= set(state.bots) | set(state.halts) | set(state.bot_days)
        bots |= {b for b, _ in state.positions} | {r.bot for r in state.reservations.values()}
    bots.discard("*")
    for kind in ("heartbeat", "status"):
        try:
            info = await js.stream_info(FLEET, subjects_filter=subjects.fleet_filter(kind=kind))
        except Exception as exc:  # noqa: BLE001 - FLEET may not exist in a risk-only setup
            log.warning("cannot list bots from stream FLEET: %s", exc)
            continue
        for subject in (info.state.subjects or {}):
            parts = subject.split(".")
            if len(parts) == 4:
                bots.add(f"{parts[1]}/{parts[2]}")
    valid = set()
    for bot in bots:
        try:
            split_bot(bot)
            valid.add(bot)
        except ValueError:
            log.warning("skipping bot %r: not namespace/name", bot)
    return valid
