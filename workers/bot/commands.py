"""Commands to one bot on ``fleet.cmd.{namespace}.{bot}``: listen, and send.

Commands are stored in stream FLEET (tradefleet.bus.streams: why), so the listener is an
ordered consumer with ``DeliverPolicy.LAST_PER_SUBJECT``: it first delivers the last command
sent while the bot was down, then every new one. Commands are desired states (pause,
resume, drain, kill), so applying the last one again after a restart is harmless.

A body that is not a :class:`~tradefleet.bus.fleet_messages.CommandMsg` goes to the dead
letter stream (``dlq.fleet.cmd...``) with the reason, and is otherwise ignored: a typo in a
command must not stop a bot.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from nats.js import api

from tradefleet.bus import codec, publish, subjects
from tradefleet.bus.fleet_messages import Command, CommandMsg, command_msg_id
from tradefleet.bus.streams import FLEET

log = logging.getLogger("tradefleet.workers.bot.commands")


class CommandListener:
    """Delivers the bot's commands, oldest first, into :attr:`queue` (CommandMsg items).

    ``start()`` subscribes; ``stop()`` unsubscribes. The callback only decodes and enqueues,
    so a long drain never stalls the ordered consumer's heartbeats.
    """

    def __init__(self, js: Any, namespace: str, bot: str) -> None:
        self.js = js
        self.subject = subjects.command(namespace, bot)
        self.queue: asyncio.Queue[CommandMsg] = asyncio.Queue()
        self.dead_letters = 0
        self._sub: Any = None

    async def start(self) -> None:
        """Subscribe (ordered consumer, last command per subject first)."""
        self._sub = await self.js.subscribe(
            self.subject, stream=FLEET, cb=self._on_msg, ordered_consumer=True,
            deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT,
        )

    async def _on_msg(self, msg: Any) -> None:
        try:
            cmd = codec.decode(msg.data, subject=msg.subject, model=CommandMsg)
        except codec.DecodeError as exc:
            self.dead_letters += 1
            log.error("command refused: %s", exc.reason, extra={"subject": msg.subject})
            try:
                await codec.dead_letter(self.js, msg.subject, msg.data, exc, msg.headers)
            except Exception as dlq_exc:  # noqa: BLE001 - logged; the command is ignored anyway
                log.error("cannot dead-letter a bad command",
                          extra={"error": f"{type(dlq_exc).__name__}: {dlq_exc}"})
            return
        await self.queue.put(cmd)

    async def stop(self) -> None:
        """Unsubscribe (the ordered consumer is ephemeral and goes with it)."""
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception as exc:  # noqa: BLE001 - connection already closed
                log.debug("command unsubscribe failed", extra={"error": repr(exc)})
            self._sub = None


async def send_command(js: Any, namespace: str, bot: str, command: Command | str, *,
                       reason: str = "", issued_by: str = "", command_id: str | None = None,
                       timeout: float | None = 5.0) -> CommandMsg:
    """Send ``command`` to bot ``namespace/bot``; return the CommandMsg stored in FLEET.

    ``command_id`` defaults to a new UUID; sending the same id twice stores it once
    (``Nats-Msg-Id``). Raises ValueError for an unknown command (naming it) or bad names.
    """
    try:
        command = Command(command)
    except ValueError:
        raise ValueError(f"command {command!r} is not one of "
                         f"{', '.join(c.value for c in Command)}") from None
    msg = CommandMsg(command=command, command_id=command_id or uuid.uuid4().hex, reason=reason,
                     issued_by=issued_by, ts_ms=time.time_ns() // 1_000_000)
    await publish(js, subjects.command(namespace, bot), msg.to_wire(),
                  msg_id=command_msg_id(namespace, bot, msg), timeout=timeout)
    return msg


__all__ = ["CommandListener", "send_command"]
