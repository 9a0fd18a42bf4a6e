"""The operator end to end: kopf against the Kubernetes emulator over HTTP, real NATS."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import orjson
import pytest

from tradefleet.bus import codec, subjects
from tradefleet.bus.fleet_messages import CommandMsg, Phase, PositionMsg
from tradefleet.bus.streams import FLEET, KV_RISK_POLICY
from tradefleet.operator.builders import CONFIG_HASH_ANNOTATION
from tradefleet.workers.bot.config import load_bot
from tradefleet.workers.risk.policy import POLICY_KEY, parse_policy

from tests.operator.conftest import (
    CONFIGMAPS,
    DEPLOYMENTS,
    RP,
    SERVICES,
    TB,
    bot_manifest,
    running_operator,
)

NS = "default"


def _template_hash(cluster, name: str) -> str:
    dep = cluster.get(DEPLOYMENTS, NS, name)
    return dep["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]


def _cond(cluster, name: str, type_: str) -> dict:
    return next((c for c in cluster.status(NS, name).get("conditions", [])
                 if c["type"] == type_), {})


async def _last_command(js, name: str) -> CommandMsg | None:
    try:
        raw = await js.get_last_msg(FLEET, subjects.command(NS, name))
    except Exception:  # noqa: BLE001 - none sent
        return None
    return codec.decode(raw.data, subject=raw.subject, model=CommandMsg)


async def _wait_command(cluster, name: str, command: str, timeout: float = 10) -> CommandMsg:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = await _last_command(cluster.js, name)
        if msg is not None and msg.command.value == command:
            return msg
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {command} command for {name}")


async def _created(cluster, name: str, **spec) -> dict:
    await cluster.apply(bot_manifest(name, **spec))
    await cluster.wait(lambda: cluster.get(SERVICES, NS, name), 10, f"{name} children")
    await cluster.wait(lambda: cluster.status(NS, name).get("configHash"), 10, "configHash")
    return cluster.get(TB, NS, name)


def _position(name: str, qty: str = "0.01") -> PositionMsg:
    return PositionMsg(namespace=NS, bot=name, symbol="BTCUSDT", side="long", qty=Decimal(qty),
                       entry_price=Decimal("97000"), mark_price=Decimal("97100"),
                       unrealized_pnl=Decimal("1"), stop_price=Decimal("95000"), time_ms=1)


async def test_create_makes_configmap_deployment_and_service_owned_by_the_bot(cluster, op_config,
                                                                            tmp_path):
    bot = await _created(cluster, "alpha")
    uid = bot["metadata"]["uid"]
    for resource in (CONFIGMAPS, DEPLOYMENTS, SERVICES):
        (owner,) = cluster.get(resource, NS, "alpha")["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
            "TradingBot", "alpha", uid, True)
    dep = cluster.get(DEPLOYMENTS, NS, "alpha")["spec"]
    assert dep["replicas"] == 1 and dep["strategy"] == {"type": "Recreate"}
    pod = dep["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["args"][:3] == ["bot", "--config", "/etc/tradefleet/bot.yaml"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "NATS_URL", "value": op_config.nats_url} in container["env"]
    # The ConfigMap holds a bot.yaml the worker's own loader accepts, with the bot's spec.
    path = tmp_path / "bot.yaml"
    path.write_text(cluster.get(CONFIGMAPS, NS, "alpha")["data"]["bot.yaml"])
    loaded = load_bot(path)
    assert loaded.spec.symbols == ["BTCUSDT"] and loaded.spec.strategy.name == "ema_cross"
    assert loaded.spec.endpoints.rest_url == "http://exsim:9010"
    await cluster.wait(lambda: "Created" in cluster.event_reasons("alpha"), 5, "Created event")
    assert cluster.status(NS, "alpha")["phase"] == "Pending"


async def test_spec_change_rolls_out_a_new_config_hash(cluster):
    await _created(cluster, "beta")
    before = _template_hash(cluster, "beta")
    await cluster.patch(TB, NS, "beta", {"spec": {"sizing": {"leverage": 5}}})
    after = await cluster.wait(lambda: _template_hash(cluster, "beta") != before
                               and _template_hash(cluster, "beta"), 10, "new hash")
    assert after != before
    cm = cluster.get(CONFIGMAPS, NS, "beta")["data"]["bot.yaml"]
    assert "leverage: 5" in cm
    await cluster.wait(lambda: "RolloutStarted" in cluster.event_reasons("beta"), 5, "event")


async def test_pause_sends_a_command_and_leaves_the_deployment_alone(cluster):
    await _created(cluster, "gamma")
    before_hash = _template_hash(cluster, "gamma")
    writes = cluster.writes(DEPLOYMENTS, NS, "gamma")
    await cluster.patch(TB, NS, "gamma", {"spec": {"paused": True}})
    cmd = await _wait_command(cluster, "gamma", "pause")
    assert cmd.issued_by == "tradefleet-operator"
    await cluster.wait(lambda: "paused: true" in cluster.get(CONFIGMAPS, NS, "gamma")["data"][
        "bot.yaml"], 5, "ConfigMap paused")
    await asyncio.sleep(0.5)
    assert _template_hash(cluster, "gamma") == before_hash
    assert cluster.writes(DEPLOYMENTS, NS, "gamma") == writes
    await cluster.patch(TB, NS, "gamma", {"spec": {"paused": False}})
    await _wait_command(cluster, "gamma", "resume")
    await cluster.wait(lambda: {"Paused", "Resumed"} <= set(cluster.event_reasons("gamma")), 5,
                       "events")


async def test_heartbeat_sets_phase_conditions_position_and_pnl(cluster):
    await _created(cluster, "delta")
    await cluster.heartbeat(NS, "delta", phase=Phase.RUNNING, positions=[_position("delta")],
                            realized_pnl=Decimal("12.5"), unrealized_pnl=Decimal("1"),
                            open_orders=1)
    await cluster.wait(lambda: cluster.status(NS, "delta").get("phase") == "Running", 5, "Running")
    status = cluster.status(NS, "delta")
    assert status["position"] == "BTCUSDT long 0.01"
    assert (status["realizedPnl"], status["unrealizedPnl"], status["pnl"]) == ("12.5", "1", "13.5")
    assert status["positions"][0]["stopPrice"] == "95000"
    assert _cond(cluster, "delta", "Ready")["status"] == "True"
    assert _cond(cluster, "delta", "Trading")["status"] == "True"
    assert _cond(cluster, "delta", "RiskHalted")["status"] == "False"
    assert _cond(cluster, "delta", "ConfigDrift")["status"] == "False"
    assert all({"type", "status", "reason", "message", "lastTransitionTime"} <= set(c)
               for c in status["conditions"])
    await cluster.heartbeat(NS, "delta", phase=Phase.HALTED, reason="loss streak 4")
    await cluster.wait(lambda: _cond(cluster, "delta", "RiskHalted").get("status") == "True", 5,
                       "halted")
    await cluster.wait(lambda: "PhaseChanged" in cluster.event_reasons("delta"), 5, "event")


async def test_worker_on_another_config_shows_config_drift(cluster):
    await _created(cluster, "drift")
    await cluster.heartbeat(NS, "drift", config_hash="0123456789abcdef")
    await cluster.wait(lambda: _cond(cluster, "drift", "ConfigDrift").get("status") == "True",
                       5, "ConfigDrift")


async def test_silent_bot_turns_degraded(cluster):
    await _created(cluster, "quiet", heartbeatIntervalS=1)  # timeout 2 x 1 s
    await cluster.heartbeat(NS, "quiet")
    await cluster.wait(lambda: _cond(cluster, "quiet", "Ready").get("status") == "True", 5, "ready")
    degraded = await cluster.wait(
        lambda: _cond(cluster, "quiet", "Degraded").get("status") == "True"
        and _cond(cluster, "quiet", "Degraded"), 6, "Degraded")
    assert degraded["reason"] == "HeartbeatTimeout"
    assert _cond(cluster, "quiet", "Ready")["status"] == "False"
    await cluster.wait(lambda: "Degraded" in cluster.event_reasons("quiet"), 5, "event")


async def test_delete_with_flatten_drains_then_removes_the_finalizer(cluster):
    await _created(cluster, "flat")
    await cluster.heartbeat(NS, "flat", positions=[_position("flat")], open_orders=1)
    await cluster.wait(lambda: cluster.status(NS, "flat").get("position", "").startswith(
        "BTCUSDT"), 5, "position")
    await cluster.delete(TB, NS, "flat")
    drain = await _wait_command(cluster, "flat", "drain")
    await cluster.wait(lambda: cluster.status(NS, "flat").get("phase") == "Draining", 5, "Draining")
    await asyncio.sleep(0.5)
    assert cluster.get(TB, NS, "flat") is not None  # still waiting: no flat report yet
    await cluster.heartbeat(NS, "flat", phase=Phase.PAUSED, kind="status",
                            last_command=drain.command_id, reason="drained: flat")
    await cluster.wait(lambda: cluster.get(TB, NS, "flat") is None, 10, "finalizer removed")
    await cluster.wait(lambda: {"DrainRequested", "Drained"} <= set(
        cluster.event_reasons("flat")), 5, "events")


async def test_delete_with_flatten_gives_up_after_the_timeout_with_a_warning(k8s, op_config, js):
    emu, url = k8s
    async with running_operator(emu, url, op_config.with_(drain_timeout_s=1.0), js) as cluster:
        await _created(cluster, "stuck")
        await cluster.delete(TB, NS, "stuck")
        await cluster.wait(lambda: cluster.get(TB, NS, "stuck") is None, 10, "gave up")
        timeout = await cluster.wait(lambda: [e for e in cluster.events("stuck")
                                              if e["reason"] == "DrainTimeout"], 5, "event")
        assert timeout[0]["type"] == "Warning"


async def test_delete_with_leave_keeps_positions_and_sends_no_drain(cluster):
    await _created(cluster, "keep", onDelete="leave")
    await cluster.delete(TB, NS, "keep")
    await cluster.wait(lambda: cluster.get(TB, NS, "keep") is None, 10, "deleted")
    assert await _last_command(cluster.js, "keep") is None
    await cluster.wait(lambda: "LeavingPositions" in cluster.event_reasons("keep"), 5, "event")


async def test_bad_spec_fails_with_a_warning_event_and_no_worker(cluster):
    bad = bot_manifest("broken")
    bad["spec"]["strategy"]["params"] = {"ema_fast": 50, "ema_slow": 20}
    await cluster.apply(bad)
    await cluster.wait(lambda: cluster.status(NS, "broken").get("phase") == "Failed", 10, "Failed")
    (event,) = await cluster.wait(lambda: [e for e in cluster.events("broken")
                                           if e["reason"] == "InvalidSpec"], 5, "event")
    assert event["type"] == "Warning" and "params.ema_slow" in event["message"]
    ready = _cond(cluster, "broken", "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    await asyncio.sleep(0.5)
    assert cluster.get(DEPLOYMENTS, NS, "broken") is None
    await cluster.patch(TB, NS, "broken", {"spec": {"strategy": {"params": {"ema_slow": 80}}}})
    await cluster.wait(lambda: cluster.get(DEPLOYMENTS, NS, "broken"), 10, "fixed spec deploys")


async def _kv_policy(js):
    kv = await js.key_value(KV_RISK_POLICY)
    try:
        return parse_policy((await kv.get(POLICY_KEY)).value)
    except Exception:  # noqa: BLE001 - not written yet
        return None


def _policy(name="default", namespace="tradefleet", **spec) -> dict:
    return {"apiVersion": "tradefleet.io/v1alpha1", "kind": "RiskPolicy",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"totalCapUsdt": 10000, **spec}}


async def test_riskpolicy_is_written_to_kv_and_the_kill_switch_follows_within_a_second(cluster):
    await cluster.apply(_policy())
    deadline = time.monotonic() + 10
    while (policy := await _kv_policy(cluster.js)) is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert policy is not None and policy.total_cap_usdt == 10000 and not policy.kill_switch
    kv = await cluster.js.key_value(KV_RISK_POLICY)
    watcher = await kv.watch(POLICY_KEY)
    await watcher.updates(timeout=2)  # the current value
    t0 = time.monotonic()
    await cluster.patch(RP, "tradefleet", "default", {"spec": {"killSwitch": True}})
    while True:
        entry = await watcher.updates(timeout=2)
        if entry is not None and orjson.loads(entry.value).get("killSwitch"):
            break
    assert time.monotonic() - t0 < 1.0
    await watcher.stop()
    await cluster.wait(lambda: "KillSwitchOn" in cluster.event_reasons("default"), 5, "event")
    rp = cluster.get(RP, "tradefleet", "default")
    assert rp["status"]["phase"] == "Applied" and rp["status"]["kvRevision"] >= 2


async def test_a_riskpolicy_other_than_the_active_one_is_ignored(cluster):
    await cluster.apply(_policy(name="experiment", namespace=NS, killSwitch=True))
    await cluster.wait(lambda: (cluster.get(RP, NS, "experiment") or {}).get("status", {}).get(
        "phase") == "Inactive", 10, "Inactive")
    assert await _kv_policy(cluster.js) is None
    await cluster.wait(lambda: "Ignored" in cluster.event_reasons("experiment"), 5, "event")


def _feed_symbols(cluster) -> list[str] | None:
    dep = cluster.get(DEPLOYMENTS, "tradefleet", "marketdata-exsim")
    if dep is None:
        return None
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    return args[args.index("--symbols") + 1].split(",")


async def test_marketdata_feed_symbols_are_the_union_of_the_bots(cluster):
    await _created(cluster, "one", symbols=["BTCUSDT"], onDelete="leave")
    await _created(cluster, "two", symbols=["ETHUSDT", "BTCUSDT"], onDelete="leave",
                   interval="5m")
    await cluster.wait(lambda: _feed_symbols(cluster) == ["BTCUSDT", "ETHUSDT"], 20, "union")
    args = cluster.get(DEPLOYMENTS, "tradefleet", "marketdata-exsim")["spec"]["template"][
        "spec"]["containers"][0]["args"]
    assert args[args.index("--interval") + 1] == "1m,5m"
    await cluster.delete(TB, NS, "two")
    await cluster.wait(lambda: _feed_symbols(cluster) == ["BTCUSDT"], 20, "shrunk")
    await cluster.delete(TB, NS, "one")
    await cluster.wait(lambda: cluster.get(DEPLOYMENTS, "tradefleet", "marketdata-exsim") is None,
                       20, "feed removed")


@pytest.mark.parametrize("namespace", ["cmd"])
async def test_bot_in_the_reserved_cmd_namespace_is_refused(cluster, namespace):
    await cluster.apply(bot_manifest("odd", namespace=namespace))
    await cluster.wait(lambda: (cluster.get(TB, namespace, "odd") or {}).get("status", {}).get(
        "phase") == "Failed", 10, "Failed")
    assert cluster.get(DEPLOYMENTS, namespace, "odd") is None
