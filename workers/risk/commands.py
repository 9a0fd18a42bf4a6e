"""Commands the risk service sends to bots on ``fleet.cmd.{namespace}.{bot}`` (stream FLEET).

Bodies are the bot protocol's :class:`~tradefleet.bus.fleet_messages.CommandMsg`
(``command``, ``command_id``, ``reason``, ``issued_by: "risk"``, ``ts_ms``; JSON with ``v``),
with ``Nats-Msg-Id`` ``{ns}:{bot}:cmd:{command_id}`` as every command sender uses:

- ``kill``: the RiskPolicy kill switch; the bot cancels entries, flattens and halts.
- ``drain``: DailyGuard ``onHalt: close_all``; the bot cancels orders and flattens, then
  stays paused (the risk service keeps it halted until 00:00 UTC anyway).
- ``auto_close`` (PortfolioGuard): reduce-only, bring the position's absolute notional on
  ``symbol`` down to at most ``target_notional_usdt`` (extra fields ``symbol``,
  ``notional_usdt`` = the cut, ``target_notional_usdt``; acting on the target makes a
  repeat harmless). Sent only once the bot protocol's ``Command`` has an ``auto_close``
  member (:data:`AUTO_CLOSE_SUPPORTED`); until then the instruction is the ``auto_close``
  event on ``risk.events`` alone, because a bot dead-letters a command it does not know,
  and a restarting bot applies the *last* command of its subject, which must stay a
  state (pause/resume/drain/kill), not a one-off instruction.

``command_id`` is derived from what caused the command (policy revision, halt day, cut), so
two risk replicas reacting to the same change store it once.

The bots a fleet-wide command goes to are every bot the risk state knows (any bot that
ever checked or reported) plus every bot with a heartbeat or status in stream FLEET.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from tradefleet.bus import subjects
from tradefleet.bus.codec import msg_id
from tradefleet.bus.fleet_messages import Command, CommandMsg
from tradefleet.bus.publish import publish
from tradefleet.bus.streams import FLEET
from tradefleet.workers.risk.protocol import split_bot
from tradefleet.workers.risk.state import FleetState

log = logging.getLogger(__name__)

ISSUED_BY = "risk"
AUTO_CLOSE_SUPPORTED = "auto_close" in {c.value for c in Command}
"""True once the bot protocol (tradefleet.bus.fleet_messages.Command) knows ``auto_close``."""
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def command_id(*parts: str | int) -> str:
    """A CommandMsg ``command_id`` (``[A-Za-z0-9_.-]``, at most 128) from its cause."""
    return _ID_UNSAFE.sub("_", "-".join(str(p) for p in ("risk", *parts)))[:128]


def kill_command(reason: str, now_ms: int, cid: str) -> dict:
    """The kill-switch command body."""
    return CommandMsg(command=Command.KILL, command_id=cid, reason=reason, issued_by=ISSUED_BY,
                      ts_ms=now_ms).to_wire()


def drain_command(reason: str, now_ms: int, cid: str) -> dict:
    """DailyGuard close_all: flatten the halted bot."""
    return CommandMsg(command=Command.DRAIN, command_id=cid, reason=reason, issued_by=ISSUED_BY,
                      ts_ms=now_ms).to_wire()


def auto_close_command(symbol: str, notional_usdt: Decimal, target_notional_usdt: Decimal,
                       reason: str, now_ms: int, cid: str) -> dict:
    """The auto-close command body (only sendable when :data:`AUTO_CLOSE_SUPPORTED`)."""
    return {"command": "auto_close", "command_id": cid, "reason": reason, "issued_by": ISSUED_BY,
            "ts_ms": now_ms, "symbol": symbol, "notional_usdt": notional_usdt,
            "target_notional_usdt": target_notional_usdt}


async def send(js: Any, bot: str, body: dict, timeout: float = 2.0) -> bool:
    """Publish command ``body`` to ``bot``'s command subject; True when stored.

    Errors are logged, not raised: one unreachable subject must not stop the others.
    """
    try:
        ns, name = split_bot(bot)
        await publish(js, subjects.command(ns, name), body,
                      msg_id=msg_id(ns, name, "cmd", body["command_id"]), timeout=timeout)
        return True
    except Exception as exc:  # noqa: BLE001 - logged with the bot; the caller counts failures
        log.error("cannot send %s command to %s: %s", body.get("command"), bot, exc,
                  extra={"bot": bot, "command": str(body.get("command")),
                         "error_type": type(exc).__name__})
        return False


async def send_many(js: Any, bots: Iterable[str], body: dict) -> list[str]:
    """Send ``body`` to every bot concurrently; returns the bots it reached."""
    ordered = sorted(set(bots))
    done = await asyncio.gather(*(send(js, b, body) for b in ordered))
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
