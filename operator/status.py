"""A TradingBot's ``status`` from its worker's last heartbeat: pure functions, no I/O.

The phase machine (``status.phase``)::

    (created) ──> Pending ──first heartbeat──> Starting ──> Running <──> Paused
                     │                            │            │  ╲
                     │                            ╰────────────┼──> Halted (guard, kill)
                     ╰─ bad spec ─> Failed                     ╰──> Draining ─> Paused/Halted
    (deleted, onDelete flatten) ──> Draining (finalizer) ──flat──> object removed

Once a worker heartbeats, the phase is the one it reports (it knows whether it is paused,
halted or draining); the operator owns only ``Pending`` (no heartbeat yet), ``Failed`` for a
spec it refuses, and ``Draining`` while its finalizer waits for a flat report. A worker that
goes silent keeps its last phase, and the ``Degraded`` condition says it is silent.

Conditions (tradefleet.api.status): ``Ready`` (heartbeating, not failed), ``Trading``
(Running), ``RiskHalted`` (Halted), ``Degraded`` (silent beyond ``heartbeat_timeouts`` ×
``spec.heartbeatIntervalS``, or Failed), ``ConfigDrift`` (the worker's config hash is not the
spec's: a rollout in progress or stuck).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from tradefleet.api import status as st
from tradefleet.bus.fleet_messages import Phase, StatusMsg


def rfc3339(ms: int) -> str:
    """UTC milliseconds -> ``2026-01-02T03:04:05Z`` (metav1.Time has second precision)."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(conditions: Iterable[Mapping[str, Any]], type_: str, status: str, reason: str,
                  message: str, *, generation: int | None, now_ms: int) -> list[dict[str, Any]]:
    """``conditions`` with ``type_`` set; lastTransitionTime moves only when status changes
    (metav1.Condition semantics, as ``meta.SetStatusCondition`` does)."""
    out, found = [], False
    for cond in conditions:
        cond = dict(cond)
        if cond.get("type") == type_:
            found = True
            if cond.get("status") != status:
                cond["lastTransitionTime"] = rfc3339(now_ms)
            cond.update(status=status, reason=reason, message=message[:32768])
            if generation is not None:
                cond["observedGeneration"] = generation
        out.append(cond)
    if not found:
        new = {"type": type_, "status": status, "reason": reason, "message": message[:32768],
               "lastTransitionTime": rfc3339(now_ms)}
        if generation is not None:
            new["observedGeneration"] = generation
        out.append(new)
    return out


def condition(conditions: Iterable[Mapping[str, Any]], type_: str) -> Mapping[str, Any] | None:
    """The condition of ``type_`` or None."""
    return next((c for c in conditions if c.get("type") == type_), None)


def _dec(value: Decimal) -> str:
    text = format(value.normalize(), "f") if value == value else "0"
    return "0" if text in ("-0", "") else text


def position_summary(positions: list[Mapping[str, Any]]) -> str:
    """``flat``, ``BTCUSDT long 0.01`` or ``3 positions`` (kubectl get's Position column)."""
    if not positions:
        return "flat"
    if len(positions) == 1:
        p = positions[0]
        return f"{p['symbol']} {p['side']} {p['qty']}"
    return f"{len(positions)} positions"


def _positions(msg: StatusMsg) -> list[dict[str, Any]]:
    out = []
    for p in msg.positions:
        if p.side == "flat" or p.qty == 0:
            continue
        item = {"symbol": p.symbol, "side": p.side, "qty": _dec(p.qty),
                "unrealizedPnl": _dec(p.unrealized_pnl)}
        for key, value in (("entryPrice", p.entry_price), ("markPrice", p.mark_price),
                           ("stopPrice", p.stop_price)):
            if value is not None:
                item[key] = _dec(value)
        out.append(item)
    return out


def is_flat(msg: StatusMsg) -> bool:
    """The worker reports no position and no open order, and is not mid-drain."""
    return (not _positions(msg) and msg.open_orders == 0
            and msg.phase is not Phase.DRAINING)


def build_status(*, current: Mapping[str, Any], generation: int | None,
                 last: StatusMsg | None, received_ms: int | None, waiting_since_ms: int,
                 now_ms: int, heartbeat_timeout_ms: int, config_hash: str,
                 accepted_hashes: set[str], draining: bool = False) -> dict[str, Any]:
    """The whole ``status`` a TradingBot should have now.

    ``current`` is the status stored now (its conditions keep their transition times);
    ``last`` the worker's last StatusMsg (``received_ms`` when the operator got it, wall
    clock); ``waiting_since_ms`` when the operator started waiting for a first heartbeat
    (a worker that never reports within the timeout is Degraded too); ``config_hash`` the
    rolled-out hash and ``accepted_hashes`` the worker hashes that match it.
    """
    conds = list(current.get("conditions") or [])
    status: dict[str, Any] = {"configHash": config_hash}
    if generation is not None:
        status["observedGeneration"] = generation

    def put(type_: str, value: str, reason: str, message: str) -> None:
        nonlocal conds
        conds = set_condition(conds, type_, value, reason, message, generation=generation,
                              now_ms=now_ms)

    timeout_s = heartbeat_timeout_ms / 1000
    if last is None:
        silent_ms = now_ms - waiting_since_ms
        status.update(phase="Draining" if draining else "Pending",
                      reason="waiting for the worker's first heartbeat",
                      position="", positions=[])
        put(st.READY, "False", st.REASON_NO_HEARTBEAT, "no heartbeat from the worker yet")
        put(st.TRADING, "False", st.REASON_NO_HEARTBEAT, "no heartbeat from the worker yet")
        put(st.RISK_HALTED, "Unknown", st.REASON_NO_HEARTBEAT, "no heartbeat from the worker yet")
        if silent_ms > heartbeat_timeout_ms:
            put(st.DEGRADED, "True", st.REASON_NO_HEARTBEAT,
                f"no heartbeat within {timeout_s:g} s of the worker's rollout; check the "
                "pod's events and logs")
        else:
            put(st.DEGRADED, "False", st.REASON_STARTING, "waiting for the first heartbeat")
        put(st.CONFIG_DRIFT, "Unknown", st.REASON_NO_HEARTBEAT, "no heartbeat yet")
        status["conditions"] = conds
        return status

    phase = last.phase.value
    positions = _positions(last)
    total = last.realized_pnl + last.unrealized_pnl
    status.update(
        phase="Draining" if draining and phase != "Failed" else phase,
        reason=last.reason[:1024],
        position=position_summary(positions), positions=positions,
        openOrders=last.open_orders, realizedPnl=_dec(last.realized_pnl),
        unrealizedPnl=_dec(last.unrealized_pnl), pnl=_dec(total), pnlDay=_dec(last.pnl_day),
        lossStreak=last.loss_streak, lastHeartbeat=rfc3339(received_ms or last.ts_ms),
        runningConfigHash=last.config_hash,
    )
    silent_ms = now_ms - (received_ms or last.ts_ms)
    silent = silent_ms > heartbeat_timeout_ms
    if silent:
        why = (f"no heartbeat for {silent_ms / 1000:.0f} s (timeout {timeout_s:g} s)"
               + ("; the worker reported it stopped" if last.stopped else ""))
        put(st.READY, "False", st.REASON_HEARTBEAT_TIMEOUT, why)
        put(st.TRADING, "Unknown", st.REASON_HEARTBEAT_TIMEOUT, why)
        put(st.RISK_HALTED, "Unknown", st.REASON_HEARTBEAT_TIMEOUT, why)
        put(st.DEGRADED, "True", st.REASON_HEARTBEAT_TIMEOUT, why)
    else:
        failed = last.phase is Phase.FAILED
        if failed:
            put(st.READY, "False", st.REASON_WORKER_FAILED, last.reason or "worker failed")
            put(st.DEGRADED, "True", st.REASON_WORKER_FAILED, last.reason or "worker failed")
        else:
            put(st.READY, "True", st.REASON_HEARTBEAT, f"worker heartbeating, phase {phase}")
            put(st.DEGRADED, "False", st.REASON_HEARTBEAT, "worker heartbeating")
        trading = last.phase is Phase.RUNNING
        put(st.TRADING, "True" if trading else "False",
            st.REASON_RUNNING if trading else _phase_reason(last.phase),
            "opening new positions" if trading else (last.reason or f"phase {phase}"))
        halted = last.phase is Phase.HALTED
        put(st.RISK_HALTED, "True" if halted else "False",
            st.REASON_HALTED if halted else st.REASON_NOT_HALTED,
            last.reason if halted else "no guard tripped")
    if last.config_hash in accepted_hashes:
        put(st.CONFIG_DRIFT, "False", st.REASON_CONFIG_MATCHES,
            "the worker runs the spec's configuration")
    else:
        put(st.CONFIG_DRIFT, "True", st.REASON_ROLLOUT_PENDING,
            f"the worker runs configuration {last.config_hash or '(unknown)'}, the spec is "
            f"{config_hash}: the new pod has not reported yet")
    status["conditions"] = conds
    return status


def _phase_reason(phase: Phase) -> str:
    return {Phase.PAUSED: st.REASON_PAUSED, Phase.HALTED: st.REASON_HALTED,
            Phase.DRAINING: st.REASON_DRAINING, Phase.STARTING: st.REASON_STARTING,
            Phase.PENDING: st.REASON_STARTING, Phase.FAILED: st.REASON_WORKER_FAILED}.get(
                phase, st.REASON_RUNNING)


def status_changes(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The top-level status keys whose value differs (the merge patch to send)."""
    return {k: v for k, v in desired.items() if current.get(k) != v}


__all__ = ["build_status", "condition", "is_flat", "position_summary", "rfc3339",
           "set_condition", "status_changes"]
