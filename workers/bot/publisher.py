"""Publish one bot's events on ``fleet.{namespace}.{bot}.*`` (stream FLEET).

Every body goes through :func:`tradefleet.bus.publish` (codec + ``Nats-Msg-Id`` + the current
span's ``traceparent``), with the message ids of :mod:`tradefleet.bus.fleet_messages`, so a
bot that republishes after a restart (a redelivered bar, a re-synced fill) stores nothing
twice inside FLEET's duplicate window.

A publish failure is logged and counted, never raised into the trading path: an order
that was placed must still get its protective stop even when NATS is briefly away (nats-py
buffers publishes while reconnecting; the JetStream ack may time out meanwhile).
"""

from __future__ import annotations

import logging
from typing import Any

from tradefleet.bus import publish, subjects
from tradefleet.bus.fleet_messages import (
    FillMsg,
    OrderMsg,
    PositionMsg,
    SignalMsg,
    StatusMsg,
    fill_msg_id,
    order_msg_id,
    position_msg_id,
    signal_msg_id,
)

log = logging.getLogger("tradefleet.workers.bot.publisher")


class FleetPublisher:
    """Typed publishers for one bot. ``js`` is a nats-py JetStreamContext."""

    def __init__(self, js: Any, namespace: str, bot: str, *, timeout_s: float = 5.0) -> None:
        self.js = js
        self.namespace = namespace
        self.bot = bot
        self.timeout_s = timeout_s
        self.failures = 0
        self._subject = {kind: subjects.fleet(namespace, bot, kind) for kind in subjects.FLEET_KINDS}

    def subject(self, kind: str) -> str:
        """``fleet.{namespace}.{bot}.{kind}``."""
        return self._subject[kind]

    async def _send(self, kind: str, body: Any, msg_id: str | None) -> bool:
        try:
            await publish(self.js, self._subject[kind], body.to_wire(), msg_id=msg_id,
                          timeout=self.timeout_s)
            return True
        except Exception as exc:  # noqa: BLE001 - never break trading on a lost event
            self.failures += 1
            log.error("cannot publish %s event; it is missing from FLEET (the recorder and "
                      "operator will not see it)", kind,
                      extra={"subject": self._subject[kind], "msg_id": msg_id,
                             "error": f"{type(exc).__name__}: {exc}"})
            return False

    async def signal(self, msg: SignalMsg) -> bool:
        """Publish a signal (msg id from ``signal_id``)."""
        return await self._send("signal", msg, signal_msg_id(msg))

    async def order(self, msg: OrderMsg) -> bool:
        """Publish an order state (msg id from client order id + status)."""
        return await self._send("order", msg, order_msg_id(msg))

    async def fill(self, msg: FillMsg) -> bool:
        """Publish a fill (msg id from the exchange trade id)."""
        return await self._send("fill", msg, fill_msg_id(msg))

    async def position(self, msg: PositionMsg) -> bool:
        """Publish a position snapshot."""
        return await self._send("position", msg, position_msg_id(msg))

    async def status(self, msg: StatusMsg) -> bool:
        """Publish a status (``kind == "status"``) or heartbeat (``"heartbeat"``)."""
        return await self._send(msg.kind, msg, None)


__all__ = ["FleetPublisher"]
