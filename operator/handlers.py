"""kopf handlers: thin, idempotent, and all in one registry built from the settings.

:func:`build_registry` returns a ``kopf.OperatorRegistry`` with every handler bound to an
:class:`~tradefleet.operator.config.OperatorConfig` (timer intervals are fixed at
registration, so tests build one with short intervals). Handlers only validate, call the
pure builders (tradefleet.operator.builders, .status) and apply the result:

TradingBot
    create / update / resume -> ConfigMap + Deployment + Service (owned by the bot), events
    for creation and for rollouts (the pod-template config hash changed). A spec the models
    refuse -> ``status.phase`` Failed, a Warning event and ``kopf.PermanentError``.
    ``spec.paused`` changed -> pause / resume command over NATS; no Deployment change.
    timer (every ``status_interval_s``) -> status from the last heartbeat (coalesced: one
    write per interval at most, none when nothing changed), phase-change and Degraded events.
    delete (finalizer) -> ``onDelete: flatten``: drain command, wait for a flat report, give
    up after ``drain_timeout_s`` with a Warning event; ``leave``: positions stay with their
    protective stops.
    index ``bot_markets`` -> market-data feeds (tradefleet.operator.marketdata).
RiskPolicy
    create / update / resume -> KV ``risk-policy/policy`` (only the active one:
    ``{config.namespace}/{config.risk_policy_name}``); delete -> KV key deleted.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import kopf
from pydantic import ValidationError

from tradefleet.api import API_GROUP, API_VERSION, RiskPolicySpec, TradingBotSpec
from tradefleet.api import status as st
from tradefleet.api.errors import describe_validation_error
from tradefleet.bus import connect, ensure_kv, ensure_streams, subjects
from tradefleet.bus.fleet_messages import Command, Phase

from . import fleet
from .builders import (
    CONFIG_HASH_ANNOTATION,
    InvalidBot,
    accepted_worker_hashes,
    build_configmap,
    build_deployment,
    build_service,
    render_bot,
    rollout_hash,
    validate_bot,
)
from .config import OperatorConfig
from .kube import KubeClient, NotOwned
from .marketdata import MarketDataReconciler
from .status import build_status, condition, is_flat, position_summary, set_condition, \
    status_changes

log = logging.getLogger("tradefleet.operator")

TRADINGBOTS = {"group": API_GROUP, "version": API_VERSION, "plural": "tradingbots"}
RISKPOLICIES = {"group": API_GROUP, "version": API_VERSION, "plural": "riskpolicies"}
FINALIZER = f"{API_GROUP}/finalizer"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _invalid(status: Any) -> bool:
    """The bot was refused (InvalidSpec): no worker runs, nothing to watch or drain."""
    ready = condition((status or {}).get("conditions") or [], st.READY)
    return (status or {}).get("phase") == "Failed" and ready is not None \
        and ready.get("reason") == st.REASON_INVALID_SPEC


def _fail(body: Any, patch: Any, status: Any, generation: int | None, problems: list[str],
          reason: str = st.REASON_INVALID_SPEC) -> str:
    message = "; ".join(problems)
    conds = set_condition((status or {}).get("conditions") or [], st.READY, "False", reason,
                          message, generation=generation, now_ms=_now_ms())
    patch.status["phase"] = "Failed"
    patch.status["reason"] = message[:1024]
    patch.status["observedGeneration"] = generation
    patch.status["conditions"] = conds
    kopf.event(body, type="Warning", reason=reason, message=message[:1024])
    return message


def build_registry(config: OperatorConfig) -> kopf.OperatorRegistry:
    """A kopf registry with every tradefleet handler, bound to ``config``."""
    registry = kopf.OperatorRegistry()

    # ----------------------------------------------------------------------- activities
    @kopf.on.login(registry=registry)
    def login(memo: kopf.Memo, **kwargs: Any) -> kopf.ConnectionInfo | None:
        """In-cluster service account, else kubeconfig; tests put ``fixed_connection``."""
        info = memo.get("fixed_connection") or kopf.login_with_service_account(**kwargs) \
            or kopf.login_with_kubeconfig(**kwargs)
        memo["connection"] = info
        return info

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        """Timeouts, storage names, then NATS (streams, KV, heartbeats) and the feeds loop."""
        settings.watching.server_timeout = config.watch_server_timeout_s
        settings.watching.client_timeout = config.watch_client_timeout_s
        settings.watching.connect_timeout = config.connect_timeout_s
        settings.networking.request_timeout = config.request_timeout_s
        settings.networking.connect_timeout = config.connect_timeout_s
        settings.persistence.finalizer = FINALIZER
        # The CRD schemas are structural: kopf's default status.kopf field would be pruned.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
            prefix=f"operator.{API_GROUP}")
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=f"operator.{API_GROUP}", key="last-handled-configuration")
        settings.posting.level = logging.WARNING  # our own events say what happened
        nc = await connect(config.nats_url, name="tradefleet-operator",
                           connect_deadline_s=config.nats_connect_deadline_s)
        js = nc.jetstream(timeout=10)
        await ensure_streams(js)
        await ensure_kv(js)
        book = fleet.HeartbeatBook(js, nc)
        await book.start()
        kube = KubeClient(lambda: memo["connection"], timeout_s=config.request_timeout_s)
        feeds = MarketDataReconciler(kube, config)
        feeds.start()
        memo.update(nc=nc, js=js, book=book, kube=kube, feeds=feeds, waiting_since={},
                    hashes={}, drains={})

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        """Stop the feeds loop and the subscriptions, close HTTP and NATS."""
        if "feeds" in memo:
            await memo["feeds"].stop()
            await memo["book"].stop()
            await memo["kube"].close()
            nc = memo["nc"]
            if nc.is_connected:
                await nc.drain()

    # ------------------------------------------------------------------------ TradingBot
    @kopf.index(**TRADINGBOTS, id="bot_markets", registry=registry)
    def bot_markets(meta: Any, spec: Any, **_: Any) -> dict[str, tuple[tuple[str, ...], str]] | None:
        """``{venue: (symbols, interval)}`` of a live, valid bot (deleting ones drop out)."""
        if meta.get("deletionTimestamp"):
            return None
        try:
            bot = TradingBotSpec.model_validate(dict(spec))
        except ValidationError:
            return None
        return {bot.venue: (tuple(bot.symbols), bot.interval)}

    def _hashes(memo: kopf.Memo, meta: Any, manifest: dict[str, Any]) -> tuple[str, set[str]]:
        key = (meta["uid"], meta.get("generation"))
        cached = memo["hashes"].get(meta["uid"])
        if cached is None or cached[0] != key:
            cached = (key, rollout_hash(manifest), accepted_worker_hashes(manifest))
            memo["hashes"][meta["uid"]] = cached
        return cached[1], cached[2]

    @kopf.on.resume(**TRADINGBOTS, registry=registry)
    @kopf.on.create(**TRADINGBOTS, registry=registry)
    @kopf.on.update(**TRADINGBOTS, registry=registry)
    async def reconcile_bot(body: Any, meta: Any, status: Any, patch: kopf.Patch,
                            memo: kopf.Memo, reason: str, bot_markets: kopf.Index,
                            **_: Any) -> None:
        """Apply the bot's ConfigMap, Deployment and Service; events for what changed."""
        ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
        generation = meta.get("generation")
        memo["feeds"].trigger(bot_markets)
        try:
            manifest = render_bot(validate_bot(body), config)
        except (InvalidBot, ValueError) as exc:
            problems = exc.problems if isinstance(exc, InvalidBot) else [str(exc)]
            raise kopf.PermanentError("invalid TradingBot: " + _fail(
                body, patch, status, generation, problems))
        kube: KubeClient = memo["kube"]
        outcomes: dict[str, tuple[str, Any]] = {}
        for child in (build_configmap(manifest, body), build_deployment(manifest, body, config),
                      build_service(manifest, body)):
            try:
                outcomes[child["kind"]] = await kube.apply(child, owner_uid=uid)
            except NotOwned as exc:
                raise kopf.PermanentError(_fail(body, patch, status, generation, [str(exc)],
                                                reason="ChildConflict")) from None
        new_hash, _ = _hashes(memo, meta, manifest)
        outcome, previous = outcomes["Deployment"]
        if outcome == "created":
            kopf.event(body, type="Normal", reason="Created",
                       message=f"worker Deployment, ConfigMap and Service {ns}/{name} created "
                       f"(config hash {new_hash})")
        elif outcome == "updated":
            old_hash = ((((previous or {}).get("spec") or {}).get("template") or {})
                        .get("metadata", {}).get("annotations", {}) or {}).get(
                            CONFIG_HASH_ANNOTATION)
            if old_hash != new_hash:
                kopf.event(body, type="Normal", reason="RolloutStarted",
                           message=f"configuration changed ({old_hash} -> {new_hash}): the "
                           "worker restarts (Recreate); open positions keep their protective "
                           "stops and are rehydrated by the new pod")
        if reason == "resume":
            await memo["book"].prime(ns, name)
        memo["waiting_since"].setdefault(uid, _now_ms())
        current = status or {}
        patch.status["observedGeneration"] = generation
        patch.status["configHash"] = new_hash
        if not current.get("phase") or _invalid(current):
            patch.status["phase"] = "Pending"
            patch.status["reason"] = "worker rolled out; waiting for its first heartbeat"
            patch.status["conditions"] = set_condition(
                current.get("conditions") or [], st.READY, "False", st.REASON_NO_HEARTBEAT,
                "waiting for the worker's first heartbeat", generation=generation,
                now_ms=_now_ms())

    @kopf.on.field(**TRADINGBOTS, field="spec.paused", registry=registry)
    async def paused_changed(body: Any, meta: Any, old: Any, new: Any, reason: str,
                             memo: kopf.Memo, **_: Any) -> None:
        """Pause / resume over NATS; the pod keeps running (nothing restarts)."""
        if reason == "create" or bool(old) == bool(new):
            return  # at creation the worker reads spec.paused from its bot.yaml
        try:
            validate_bot(body)
        except InvalidBot:
            return  # no worker runs an invalid spec
        ns, name = meta["namespace"], meta["name"]
        command = Command.PAUSE if new else Command.RESUME
        command_id = f"op-{meta['uid'][:8]}-g{meta.get('generation')}-{command.value}"
        try:
            await fleet.send(memo["js"], ns, name, command, command_id=command_id,
                             reason=f"spec.paused set to {bool(new)}".lower())
        except Exception as exc:  # noqa: BLE001 - NATS down: kopf retries the handler
            raise kopf.TemporaryError(f"cannot send {command.value}: {exc}", delay=2) from None
        kopf.event(body, type="Normal", reason="Paused" if new else "Resumed",
                   message=f"{command.value} sent on {subjects.command(ns, name)} (command "
                   f"{command_id}); " + ("no new entries, exits and protective stops keep "
                                        "running" if new else "entries allowed again"))

    @kopf.timer(**TRADINGBOTS, interval=config.status_interval_s, registry=registry)
    async def bot_status(body: Any, meta: Any, status: Any, patch: kopf.Patch,
                         memo: kopf.Memo, **_: Any) -> None:
        """Status from the last heartbeat: at most one write per interval, none if equal."""
        current = dict(status or {})
        if meta.get("deletionTimestamp") or _invalid(current):
            return
        try:
            manifest = render_bot(validate_bot(body), config)
        except (InvalidBot, ValueError):
            return
        config_hash, accepted = _hashes(memo, meta, manifest)
        ns, name = meta["namespace"], meta["name"]
        last, received = memo["book"].get(ns, name)
        now = _now_ms()
        interval_s = manifest["spec"]["heartbeatIntervalS"]
        desired = build_status(
            current=current, generation=meta.get("generation"), last=last,
            received_ms=received, waiting_since_ms=memo["waiting_since"].setdefault(
                meta["uid"], now), now_ms=now,
            heartbeat_timeout_ms=int(config.heartbeat_timeouts * interval_s * 1000),
            config_hash=config_hash, accepted_hashes=accepted)
        changes = status_changes(current, desired)
        for key, value in changes.items():
            patch.status[key] = value
        if "phase" in changes and current.get("phase"):
            bad = desired["phase"] in ("Failed", "Halted")
            kopf.event(body, type="Warning" if bad else "Normal", reason="PhaseChanged",
                       message=f"{current['phase']} -> {desired['phase']}"
                       + (f": {desired.get('reason')}" if desired.get("reason") else ""))
        before = condition(current.get("conditions") or [], st.DEGRADED) or {}
        after = condition(desired["conditions"], st.DEGRADED) or {}
        if after.get("status") == "True" and before.get("status") != "True":
            kopf.event(body, type="Warning", reason="Degraded", message=after["message"])
        elif after.get("status") == "False" and before.get("status") == "True":
            kopf.event(body, type="Normal", reason="Recovered", message=after["message"])

    @kopf.on.delete(**TRADINGBOTS, registry=registry)
    async def finalize_bot(body: Any, meta: Any, spec: Any, status: Any, patch: kopf.Patch,
                           memo: kopf.Memo, runtime: Any, retry: int,
                           bot_markets: kopf.Index, **_: Any) -> None:
        """onDelete flatten: drain, wait for flat (bounded); leave: keep positions."""
        ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
        memo["feeds"].trigger(bot_markets)

        def done() -> None:
            memo["book"].forget(ns, name)
            for key in ("waiting_since", "hashes", "drains"):
                memo[key].pop(uid, None)

        if _invalid(status):
            done()
            return
        if spec.get("onDelete", "flatten") == "leave":
            kopf.event(body, type="Normal", reason="LeavingPositions",
                       message="onDelete: leave: open positions stay on the exchange with "
                       "their protective stops")
            done()
            return
        js, book = memo["js"], memo["book"]
        drain_id = memo["drains"].get(uid) or (status or {}).get("drainCommandId")
        last, _ = book.get(ns, name)
        resend = (drain_id is not None and last is not None and last.last_command == drain_id
                  and last.phase is not Phase.DRAINING and not is_flat(last))
        if drain_id is None or resend:
            drain_id = f"op-{uid[:8]}-drain-{retry}"
            try:
                await fleet.send(js, ns, name, Command.DRAIN, command_id=drain_id,
                                 reason="TradingBot deleted with onDelete: flatten")
            except Exception as exc:  # noqa: BLE001 - NATS down: retry (bounded below)
                if runtime.total_seconds() < config.drain_timeout_s:
                    raise kopf.TemporaryError(f"cannot send drain: {exc}",
                                              delay=config.drain_poll_s) from None
            else:
                memo["drains"][uid] = drain_id
                patch.status["drainCommandId"] = drain_id
                patch.status["phase"] = "Draining"
                kopf.event(body, type="Normal", reason="DrainRequested",
                           message=("drain re-sent: the last one left positions open"
                                    if resend else "onDelete: flatten: drain sent")
                           + f" (command {drain_id}); waiting up to "
                           f"{config.drain_timeout_s:g} s for a flat report")
                raise kopf.TemporaryError("waiting for the worker to report flat",
                                          delay=config.drain_poll_s)
        if last is not None and last.last_command == drain_id and is_flat(last):
            kopf.event(body, type="Normal", reason="Drained",
                       message="the worker reported flat (no position, no open order); "
                       "removing the finalizer")
            done()
            return
        if runtime.total_seconds() >= config.drain_timeout_s:
            left = position_summary((status or {}).get("positions") or [])
            kopf.event(body, type="Warning", reason="DrainTimeout",
                       message=f"no flat report within {config.drain_timeout_s:g} s; removing "
                       f"the finalizer anyway. Last known position: {left}; anything left "
                       "open keeps its protective stop: check the exchange")
            done()
            return
        raise kopf.TemporaryError("waiting for the worker to report flat",
                                  delay=config.drain_poll_s)

    # ------------------------------------------------------------------------ RiskPolicy
    def _policy_status(patch: kopf.Patch, status: Any, generation: int | None, phase: str,
                       value: str, reason: str, message: str) -> None:
        patch.status["phase"] = phase
        patch.status["observedGeneration"] = generation
        patch.status["conditions"] = set_condition(
            (status or {}).get("conditions") or [], st.APPLIED, value, reason, message,
            generation=generation, now_ms=_now_ms())

    @kopf.on.resume(**RISKPOLICIES, registry=registry)
    @kopf.on.create(**RISKPOLICIES, registry=registry)
    @kopf.on.update(**RISKPOLICIES, registry=registry)
    async def apply_policy(body: Any, meta: Any, spec: Any, status: Any, patch: kopf.Patch,
                           memo: kopf.Memo, **_: Any) -> None:
        """Write the active RiskPolicy to KV risk-policy/policy (the risk service watches)."""
        ns, name, generation = meta["namespace"], meta["name"], meta.get("generation")
        if (ns, name) != (config.namespace, config.risk_policy_name):
            message = (f"not applied: the fleet's policy is RiskPolicy {config.namespace}/"
                       f"{config.risk_policy_name}")
            _policy_status(patch, status, generation, "Inactive", "False", st.REASON_NOT_ACTIVE,
                           message)
            kopf.event(body, type="Warning", reason="Ignored", message=message)
            return
        try:
            policy = RiskPolicySpec.model_validate(dict(spec))
        except ValidationError as exc:
            message = "; ".join(describe_validation_error(exc, "spec"))
            _policy_status(patch, status, generation, "Failed", "False", st.REASON_INVALID_SPEC,
                           message)
            kopf.event(body, type="Warning", reason=st.REASON_INVALID_SPEC, message=message)
            raise kopf.PermanentError(f"invalid RiskPolicy: {message}") from None
        try:
            revision = await fleet.put_policy(memo["js"], policy)
        except Exception as exc:  # noqa: BLE001 - NATS down: kopf retries
            _policy_status(patch, status, generation, "Failed", "False",
                           st.REASON_KV_UNAVAILABLE, f"cannot write KV: {exc}")
            raise kopf.TemporaryError(f"cannot write KV risk-policy/policy: {exc}",
                                      delay=2) from None
        _policy_status(patch, status, generation, "Applied", "True", st.REASON_POLICY_WRITTEN,
                       f"written to KV risk-policy/policy at revision {revision}")
        patch.status["kvRevision"] = revision
        from .status import rfc3339
        patch.status["appliedAt"] = rfc3339(_now_ms())
        if policy.kill_switch:
            kopf.event(body, type="Warning", reason="KillSwitchOn",
                       message="kill switch on: every bot cancels its entries and flattens; "
                       f"nothing new opens (KV revision {revision})")
        else:
            kopf.event(body, type="Normal", reason="PolicyApplied",
                       message=f"policy written to KV risk-policy/policy revision {revision}; "
                       f"killSwitch off, allowLive {str(policy.allow_live).lower()}")

    @kopf.on.delete(**RISKPOLICIES, registry=registry)
    async def remove_policy(body: Any, meta: Any, memo: kopf.Memo, **_: Any) -> None:
        """Deleting the active RiskPolicy deletes KV risk-policy/policy."""
        if (meta["namespace"], meta["name"]) != (config.namespace, config.risk_policy_name):
            return
        await fleet.delete_policy(memo["js"])
        kopf.event(body, type="Warning", reason="PolicyRemoved",
                   message="KV risk-policy/policy deleted: the risk service falls back to its "
                   "--policy file, and blocks every entry without one")

    return registry


__all__ = ["FINALIZER", "RISKPOLICIES", "TRADINGBOTS", "build_registry"]
