"""The operator's NATS side: the bots' heartbeats in, commands and the risk policy out.

- :class:`HeartbeatBook` subscribes to ``fleet.*.*.status`` and ``fleet.*.*.heartbeat`` and
  keeps the newest :class:`~tradefleet.bus.fleet_messages.StatusMsg` per bot with the wall
  time it arrived. Status writes read from it on their own schedule, so a bot heartbeating
  every second costs one Kubernetes write per status interval, not one per heartbeat.
  ``prime()`` reads a bot's last stored status from stream FLEET, so a restarted operator
  knows the fleet before the next heartbeats.
- :func:`send` publishes a pause / resume / drain command on ``fleet.cmd.{ns}.{bot}``
  (tradefleet.workers.bot.commands, the format the worker obeys).
- :func:`put_policy` / :func:`delete_policy` write KV ``risk-policy/policy``, which the risk
  service watches (tradefleet.workers.risk.policy): a kill switch set here reaches it within
  milliseconds.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from tradefleet.api.riskpolicy import RiskPolicySpec
from tradefleet.bus import codec, subjects
from tradefleet.bus.fleet_messages import Command, CommandMsg, StatusMsg
from tradefleet.bus.streams import FLEET, KV_RISK_POLICY
from tradefleet.workers.bot.commands import send_command
from tradefleet.workers.risk.policy import POLICY_KEY, encode_policy

log = logging.getLogger("tradefleet.operator.fleet")

ISSUER = "tradefleet-operator"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class HeartbeatBook:
    """Newest StatusMsg per bot ``(namespace, name)`` with its arrival time (UTC ms)."""

    def __init__(self, js: Any, nc: Any) -> None:
        self.js, self.nc = js, nc
        self.latest: dict[tuple[str, str], tuple[StatusMsg, int]] = {}
        self.received = 0
        self.refused = 0
        self._subs: list[Any] = []

    async def start(self) -> None:
        """Subscribe to every bot's status and heartbeat subjects (core NATS: no consumer
        state to keep; what was missed is re-read with :meth:`prime`)."""
        for kind in ("status", "heartbeat"):
            self._subs.append(await self.nc.subscribe(f"fleet.*.*.{kind}", cb=self._on_msg))

    async def stop(self) -> None:
        """Unsubscribe."""
        for sub in self._subs:
            try:
                await sub.unsubscribe()
            except Exception:  # noqa: BLE001 - connection already closed
                pass
        self._subs.clear()

    async def _on_msg(self, msg: Any) -> None:
        if msg.subject.split(".")[1] == subjects.CMD:
            return
        try:
            status = codec.decode(msg.data, subject=msg.subject, model=StatusMsg)
        except codec.DecodeError as exc:
            self.refused += 1
            log.warning("status refused: %s", exc.reason, extra={"subject": msg.subject})
            return
        self.record(status, _now_ms())

    def record(self, status: StatusMsg, received_ms: int) -> None:
        """Keep ``status`` unless a newer one (by the bot's ``ts_ms``) is already kept."""
        key = (status.namespace, status.bot)
        held = self.latest.get(key)
        if held is None or status.ts_ms >= held[0].ts_ms:
            self.latest[key] = (status, received_ms)
            self.received += 1

    def get(self, namespace: str, name: str) -> tuple[StatusMsg | None, int | None]:
        """(last StatusMsg, when it arrived) or (None, None)."""
        held = self.latest.get((namespace, name))
        return held if held is not None else (None, None)

    def forget(self, namespace: str, name: str) -> None:
        """Drop a deleted bot."""
        self.latest.pop((namespace, name), None)

    async def prime(self, namespace: str, name: str) -> None:
        """Load the bot's last stored status/heartbeat from stream FLEET (if any).

        The arrival time is the message's own ``ts_ms``: a bot that went quiet while the
        operator was down is then correctly seen as silent."""
        for kind in ("status", "heartbeat"):
            try:
                raw = await self.js.get_last_msg(FLEET, subjects.fleet(namespace, name, kind))
            except Exception:  # noqa: BLE001 - nothing stored (NotFound) or stream missing
                continue
            try:
                status = codec.decode(raw.data, subject=raw.subject, model=StatusMsg)
            except codec.DecodeError:
                continue
            self.record(status, status.ts_ms)


async def send(js: Any, namespace: str, name: str, command: Command, *, command_id: str,
               reason: str) -> CommandMsg:
    """Publish ``command`` to bot ``namespace/name`` (deduplicated by ``command_id``)."""
    return await send_command(js, namespace, name, command, reason=reason, issued_by=ISSUER,
                              command_id=command_id)


async def put_policy(js: Any, spec: RiskPolicySpec) -> int:
    """Write ``spec`` to KV ``risk-policy/policy``; returns the KV revision."""
    kv = await js.key_value(KV_RISK_POLICY)
    return await kv.put(POLICY_KEY, encode_policy(spec))


async def delete_policy(js: Any) -> None:
    """Delete KV ``risk-policy/policy`` (the risk service falls back to its --policy file)."""
    kv = await js.key_value(KV_RISK_POLICY)
    await kv.delete(POLICY_KEY)


__all__ = ["HeartbeatBook", "ISSUER", "delete_policy", "put_policy", "send"]
