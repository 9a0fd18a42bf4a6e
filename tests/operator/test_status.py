"""The status builder: phase and conditions from heartbeats (pure, no API server)."""

from __future__ import annotations

from decimal import Decimal

from tradefleet.bus.fleet_messages import Phase, StatusMsg
from tradefleet.operator.status import build_status, set_condition

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _msg(phase=Phase.RUNNING, **kw) -> StatusMsg:
    return StatusMsg(namespace="default", bot="b", phase=phase, config_hash="h1", ts_ms=T0, **kw)


def _status(last, now, current=None, **kw):
    args = dict(current=current or {}, generation=2, last=last, received_ms=T0 if last else None,
                waiting_since_ms=T0, now_ms=now, heartbeat_timeout_ms=15_000, config_hash="r1",
                accepted_hashes={"h1"})
    args.update(kw)
    return build_status(**args)


def _cond(status, type_):
    return next(c for c in status["conditions"] if c["type"] == type_)


def test_condition_keeps_its_transition_time_while_status_is_unchanged():
    first = set_condition([], "Ready", "True", "Heartbeat", "ok", generation=1, now_ms=T0)
    again = set_condition(first, "Ready", "True", "Heartbeat", "still ok", generation=1,
                          now_ms=T0 + 60_000)
    flipped = set_condition(again, "Ready", "False", "HeartbeatTimeout", "silent",
                            generation=1, now_ms=T0 + 120_000)
    assert again[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert flipped[0]["lastTransitionTime"] == "2026-01-01T00:02:00Z"


def test_no_heartbeat_is_pending_then_degraded_after_the_timeout():
    early = _status(None, T0 + 5_000)
    late = _status(None, T0 + 20_000, current=early)
    assert early["phase"] == "Pending" and _cond(early, "Degraded")["status"] == "False"
    assert _cond(late, "Degraded")["status"] == "True"


def test_running_heartbeat_is_ready_and_trading():
    s = _status(_msg(realized_pnl=Decimal("-2.50"), unrealized_pnl=Decimal("1")), T0 + 1_000)
    assert (s["phase"], s["pnl"], s["realizedPnl"]) == ("Running", "-1.5", "-2.5")
    assert _cond(s, "Ready")["status"] == "True" and _cond(s, "Trading")["status"] == "True"
    assert _cond(s, "ConfigDrift")["status"] == "False"


def test_silent_worker_keeps_its_phase_and_is_degraded():
    s = _status(_msg(), T0 + 16_000)
    assert s["phase"] == "Running"
    assert _cond(s, "Degraded")["reason"] == "HeartbeatTimeout"
    assert _cond(s, "Ready")["status"] == "False" and _cond(s, "Trading")["status"] == "Unknown"


def test_failed_worker_is_not_ready_and_degraded():
    s = _status(_msg(Phase.FAILED, reason="exchange refused the keys"), T0 + 1_000)
    assert _cond(s, "Ready")["reason"] == "WorkerFailed"
    assert _cond(s, "Degraded")["status"] == "True"


def test_unknown_worker_hash_is_config_drift():
    s = _status(_msg(), T0 + 1_000, accepted_hashes={"other"})
    assert _cond(s, "ConfigDrift")["status"] == "True"
