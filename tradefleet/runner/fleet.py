"""``tradefleet run``: the whole fleet on one machine, on real data, end to end.

Order of events (each component is its own process, the same entrypoint a pod runs):

1. load every manifest first: a bad TradingBot or RiskPolicy stops the run before anything
   starts (ManifestError names the file, the field and the reason);
2. NATS with JetStream and PostgreSQL: embedded on free ports, unless ``NATS_URL`` /
   ``DATABASE_URL`` point at running servers; streams and KV buckets are created;
3. exsim replaying the data paused, one paper account (API key) per bot; the recorder, the
   risk service with the RiskPolicy, one marketdata feed for the union of the bots'
   symbols, and one ``tradefleet bot`` per manifest pointed at exsim;
4. the replay: in **lockstep** (default) the runner steps exsim one bar at a time and waits
   until marketdata has published it and every bot's durable consumer has acked it, so the
   bots always keep up and a run is reproducible; with ``--speed N`` exsim free-runs at N
   bars/s instead;
5. at the end (data exhausted or ``--until``) it waits for the recorder to drain, writes
   the fleet report (JSON + HTML) from the database and exsim's accounts, reconciles them,
   records the run in the ``runs`` table and stops every process it started — also on
   Ctrl-C — leaving the database (embedded: its data folder) in the output folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import pathlib
import secrets
import signal
import tempfile
import time
from dataclasses import dataclass, field

import httpx
import yaml
from nats.js.api import DeliverPolicy

from tradefleet.api import RiskPolicy, TradingBot, load_manifests
from tradefleet.bus import subjects
from tradefleet.bus.connect import connect
from tradefleet.bus.streams import MARKET, ensure_kv, ensure_streams
from tradefleet.embedded import free_port, nats_server, postgres_server
from tradefleet.runner.supervisor import ComponentSpec, Supervisor, tradefleet_argv

log = logging.getLogger("tradefleet.runner")

VENUE = "exsim"


@dataclass
class RunOptions:
    """What ``tradefleet run`` was asked to do.

    paths: manifest files or folders; data: exsim data folder; speed: None = lockstep, else
    free-running bars/s; until_ms: stop the replay when its clock reaches this UTC ms (None:
    run the data to its end); initial_balance: USDT per bot account; out: output folder.
    """

    paths: list[pathlib.Path]
    data: pathlib.Path = pathlib.Path("data/binance-um")
    speed: float | None = None
    until_ms: int | None = None
    initial_balance: str = "10000"
    out: pathlib.Path | None = None
    live: bool = True
    settle_timeout_s: float = 60.0


@dataclass
class BotRuntime:
    """One bot of the run: its manifest, exsim account and where its metrics are."""

    bot: TradingBot
    api_key: str
    api_secret: str
    metrics_port: int
    manifest_path: pathlib.Path | None = None

    @property
    def key(self) -> str:
        return self.bot.key

    @property
    def durable(self) -> str:
        from tradefleet.workers.bot.market import durable_name

        return durable_name(self.bot.metadata.namespace, self.bot.metadata.name)


@dataclass
class Fleet:
    """Everything started for a run (so it can be stopped and reported)."""

    options: RunOptions
    out: pathlib.Path
    bots: list[BotRuntime]
    policy: RiskPolicy | None
    run_id: str
    nats: object | None = None
    postgres: object | None = None
    nats_url: str = ""
    database_url: str = ""
    exsim_url: str = ""
    supervisor: Supervisor | None = None
    symbols: list[str] = field(default_factory=list)
    intervals: list[str] = field(default_factory=list)


def load_fleet(paths: list[pathlib.Path]) -> tuple[list[TradingBot], RiskPolicy | None]:
    """Load and validate every TradingBot and the (at most one) RiskPolicy under ``paths``.

    Raises ManifestError (file, field, reason) or ValueError (no bot, several policies, a
    bot that is not paper trading on exsim).
    """
    bots = load_manifests(paths)
    policies = load_manifests(paths, kind="RiskPolicy")
    if not bots:
        raise ValueError(f"no TradingBot manifest found in {', '.join(map(str, paths))}")
    if len(policies) > 1:
        raise ValueError("more than one RiskPolicy: "
                         + ", ".join(p.metadata.name for p in policies) + "; keep one")
    for b in bots:
        if b.spec.venue != VENUE or b.spec.mode.value != "paper":
            raise ValueError(f"{b.key}: tradefleet run trades paper on exsim only "
                             f"(spec.venue={b.spec.venue}, spec.mode={b.spec.mode.value}); "
                             "deploy testnet/live bots with the operator")
    return bots, (policies[0] if policies else None)


def _pg_data_dir(fleet: Fleet) -> pathlib.Path:
    """Where the embedded cluster lives: in the output folder, so the rows stay inspectable.

    As root, PostgreSQL runs as an unprivileged system user that must be able to traverse
    every parent folder; when one is private (e.g. pytest's tmp), it goes to a kept folder
    under the system temp directory instead (the report names it).
    """
    wanted = fleet.out / "postgres"
    if os.geteuid() != 0 or all(d.stat().st_mode & 0o001 for d in wanted.parents if d.exists()):
        return wanted
    return pathlib.Path(tempfile.gettempdir()) / f"tradefleet-{fleet.run_id}-postgres"


def _parse_until(text: str | None) -> int | None:
    if not text:
        return None
    ts = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.timezone.utc)
    return int(ts.timestamp() * 1000)


class FleetRunner:
    """Start, drive and stop a local fleet; ``run()`` returns the report dict."""

    def __init__(self, options: RunOptions):
        self.options = options
        self._nc = None
        self._js = None
        self._http: httpx.AsyncClient | None = None
        self.fleet: Fleet | None = None
        self.view = None
        # Where lockstep time goes (s): exsim's step; marketdata publishing + bots acking.
        self.timings = {"step_s": 0.0, "pipeline_s": 0.0, "marketdata_s": 0.0, "steps": 0}

    # -- start ----------------------------------------------------------------------------
    def _prepare(self) -> Fleet:
        bots, policy = load_fleet(self.options.paths)
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        out = (self.options.out or pathlib.Path("out") / f"run-{stamp}").resolve()
        (out / "manifests").mkdir(parents=True, exist_ok=True)
        runtimes = [BotRuntime(b, f"tf-{b.metadata.namespace}-{b.metadata.name}",
                               secrets.token_hex(24), free_port()) for b in bots]
        fleet = Fleet(self.options, out, runtimes, policy, run_id=f"run-{stamp}")
        fleet.symbols = sorted({s for b in bots for s in b.spec.symbols})
        fleet.intervals = sorted({b.spec.interval for b in bots})
        return fleet

    async def _start_servers(self, fleet: Fleet) -> None:
        fleet.nats = nats_server()
        fleet.postgres = postgres_server(data_dir=_pg_data_dir(fleet))
        await asyncio.to_thread(fleet.nats.start)
        await asyncio.to_thread(fleet.postgres.start)
        fleet.nats_url, fleet.database_url = fleet.nats.url, fleet.postgres.url
        self._nc = await connect(fleet.nats_url, name="tradefleet-run", connect_deadline_s=30)
        self._js = self._nc.jetstream(timeout=10)
        await ensure_streams(self._js)
        await ensure_kv(self._js)

    def _write_bot_manifest(self, fleet: Fleet, rt: BotRuntime) -> pathlib.Path:
        # The same manifest the user wrote, pointed at this run's exsim (the operator does
        # the same with the cluster's exsim Service).
        doc = rt.bot.model_dump(by_alias=True, mode="json", exclude_none=True)
        doc["spec"]["endpoints"] = {"restUrl": fleet.exsim_url,
                                    "wsUrl": fleet.exsim_url.replace("http", "ws", 1)}
        path = fleet.out / "manifests" / f"{rt.bot.metadata.namespace}-{rt.bot.metadata.name}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    async def _start_components(self, fleet: Fleet) -> None:
        sup = fleet.supervisor = Supervisor(fleet.out / "logs", on_event=self._on_component)
        base_env = {"NATS_URL": fleet.nats_url, "LOG_LEVEL": "INFO"}
        exsim_port = free_port()
        fleet.exsim_url = f"http://127.0.0.1:{exsim_port}"
        keys = {"EXSIM_API_KEY": ",".join(rt.api_key for rt in fleet.bots),
                "EXSIM_API_SECRET": ",".join(rt.api_secret for rt in fleet.bots)}
        await sup.start(ComponentSpec(
            "exsim", tradefleet_argv("exsim", "--data", str(self.options.data.resolve()),
                                     "--port", str(exsim_port), "--paused",
                                     "--initial-balance", self.options.initial_balance,
                                     "--symbols", ",".join(fleet.symbols),
                                     *(["--speed", str(self.options.speed)]
                                       if self.options.speed else [])),
            env={**base_env, **keys}, ready_url=f"{fleet.exsim_url}/fapi/v1/ping"))

        port = free_port()
        await sup.start(ComponentSpec(
            "recorder", tradefleet_argv("recorder", "--metrics-port", str(port)),
            env={**base_env, "DATABASE_URL": fleet.database_url},
            ready_url=f"http://127.0.0.1:{port}/readyz"))

        policy_args: list[str] = []
        if fleet.policy is not None:
            policy_path = fleet.out / "manifests" / "riskpolicy.yaml"
            policy_path.write_text(yaml.safe_dump(
                fleet.policy.model_dump(by_alias=True, mode="json", exclude_none=True),
                sort_keys=False))
            policy_args = ["--policy", str(policy_path)]
        port = free_port()
        await sup.start(ComponentSpec(
            "risk", tradefleet_argv("risk", *policy_args, "--metrics-port", str(port)),
            env=base_env, ready_url=f"http://127.0.0.1:{port}/readyz"))

        port = free_port()
        await sup.start(ComponentSpec(
            "marketdata", tradefleet_argv(
                "marketdata", "--venue", VENUE, "--ws-url", fleet.exsim_url.replace("http", "ws", 1),
                "--rest-url", fleet.exsim_url, "--symbols", ",".join(fleet.symbols),
                "--interval", ",".join(fleet.intervals), "--metrics-port", str(port),
                "--streams", "kline,mark,funding",  # no strategy reads the book here
                "--idle-timeout", "0"),
            env=base_env, ready_url=f"http://127.0.0.1:{port}/readyz"))

        for rt in fleet.bots:
            rt.manifest_path = self._write_bot_manifest(fleet, rt)
            await sup.start(ComponentSpec(
                f"bot-{rt.bot.metadata.namespace}-{rt.bot.metadata.name}",
                tradefleet_argv("bot", "--config", str(rt.manifest_path), "--risk-service",
                                "--metrics-port", str(rt.metrics_port)),
                env={**base_env, "TRADEFLEET_API_KEY": rt.api_key,
                     "TRADEFLEET_API_SECRET": rt.api_secret},
                ready_url=f"http://127.0.0.1:{rt.metrics_port}/readyz", ready_timeout_s=120))

    def _on_component(self, what: str, state) -> None:
        if self.view is not None:
            self.view.component_event(what, state.spec.name, state.restarts)
        if what in ("restarting", "failed"):
            log.warning("component %s: %s (restarts %d, log %s)", state.spec.name, what,
                        state.restarts, state.log_path)

    # -- replay ---------------------------------------------------------------------------
    async def _admin(self, method: str, path: str, **kw) -> dict:
        resp = await self._http.request(method, f"{self.fleet.exsim_url}/admin{path}", **kw)
        if resp.status_code == 409:
            return {"finished": True}
        resp.raise_for_status()
        return resp.json()

    async def _watch_progress(self) -> None:
        """Event-driven lockstep: see each kline land on MARKET and each bot ack it.

        An ordered consumer on the kline subjects yields every kline's stream sequence; a
        core subscription on ``$JS.ACK.MARKET.>`` sees the bots' acks (JetStream ack
        subjects carry consumer name and stream sequence), so no polling is needed.
        """
        self._kline_seq: dict[tuple[str, int], int] = {}
        self._acked: dict[str, int] = {}
        self._progress = asyncio.Event()

        async def on_kline(msg) -> None:
            body = json.loads(msg.data)
            self._kline_seq[(body["symbol"], body["open_time"])] = msg.metadata.sequence.stream
            self._progress.set()

        async def on_ack(msg) -> None:
            t = msg.subject.split(".")
            # v1: $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
            # v2: $JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>...<token>
            consumer, sseq = (t[3], int(t[5])) if len(t) == 9 else (t[5], int(t[7]))
            if sseq > self._acked.get(consumer, 0):
                self._acked[consumer] = sseq
                self._progress.set()

        self._subs = [
            await self._js.subscribe(subjects.md_filter(venue=VENUE, kind="kline"),
                                     cb=on_kline, ordered_consumer=True,
                                     deliver_policy=DeliverPolicy.NEW),
            await self._nc.subscribe(f"$JS.ACK.{MARKET}.>", cb=on_ack),
        ]

    async def _consumer_idle(self, stream: str, durable: str) -> bool:
        try:
            info = await self._js.consumer_info(stream, durable)
        except Exception:  # noqa: BLE001 - not created yet
            return False
        return info.num_pending == 0 and info.num_ack_pending == 0

    def _step_done(self, open_time: int) -> tuple[bool, str]:
        seqs = {}
        for symbol in self.fleet.symbols:
            seq = self._kline_seq.get((symbol, open_time))
            if seq is None:
                return False, f"marketdata has not published {symbol} {open_time}"
            seqs[symbol] = seq
        for rt in self.fleet.bots:
            need = max(seqs[s] for s in rt.bot.spec.symbols)
            if self._acked.get(rt.durable, 0) < need:
                return False, f"{rt.key} has not acked the bar opening at {open_time}"
        return True, ""

    async def _wait_step_processed(self, open_time: int, timeout_s: float = 60.0) -> None:
        """Until every symbol's kline of ``open_time`` is on MARKET and every bot acked it."""
        t0 = time.monotonic()
        md_seen = False
        while True:
            self._progress.clear()
            done, why = self._step_done(open_time)
            if not md_seen and not why.startswith("marketdata"):
                md_seen = True
                self.timings["marketdata_s"] += time.monotonic() - t0
            if done:
                break
            try:
                await asyncio.wait_for(self._progress.wait(), max(0.0, t0 + timeout_s - time.monotonic()))
            except asyncio.TimeoutError:
                raise TimeoutError(f"lockstep stalled: {why} after {timeout_s:.0f} s; see "
                                   f"{self.fleet.out}/logs/") from None
        self.timings["pipeline_s"] += time.monotonic() - t0
        for key in [k for k in self._kline_seq if k[1] < open_time]:
            del self._kline_seq[key]

    async def _replay(self) -> dict:
        """Drive the replay to the end (or --until); returns exsim's final status."""
        until = self.options.until_ms
        status = await self._admin("GET", "/status")
        if self.options.speed:
            await self._admin("POST", "/replay/start")
            while True:
                status = await self._admin("GET", "/status")
                self._update_view(status)
                if status.get("finished") or (until and status["replay_clock"] >= until):
                    await self._admin("POST", "/replay/pause")
                    return await self._admin("GET", "/status")
                await asyncio.sleep(0.25)
        while not status.get("finished"):
            if until and status["replay_clock"] >= until:
                break
            t_step = time.monotonic()
            step = await self._admin("POST", "/replay/step", json={"bars": 1})
            self.timings["step_s"] += time.monotonic() - t_step
            self.timings["steps"] += 1
            if step.get("finished") and "replay_clock" not in step:
                break
            status = step
            await self._wait_step_processed(status["replay_clock"] - 60_000)
            self._update_view(status)
        return await self._admin("GET", "/status")

    def _update_view(self, status: dict) -> None:
        if self.view is not None:
            self.view.replay_status(status)

    async def _settle(self) -> None:
        """Wait until the bots and the recorder have consumed everything published."""
        from tradefleet.workers.recorder.consumer import consumer_specs

        deadline = time.monotonic() + self.options.settle_timeout_s
        targets = [(MARKET, rt.durable) for rt in self.fleet.bots]
        targets += [(spec.stream, spec.durable) for spec in consumer_specs()]
        while time.monotonic() < deadline:
            idle = [await self._consumer_idle(s, d) for s, d in targets]
            if all(idle):
                await asyncio.sleep(1.0)  # last heartbeats/positions in flight
                if all([await self._consumer_idle(s, d) for s, d in targets]):
                    return
            await asyncio.sleep(0.2)
        log.warning("consumers still busy after %.0f s; the report may miss the last rows",
                    self.options.settle_timeout_s)

    # -- lifecycle ------------------------------------------------------------------------
    async def run(self) -> dict:
        """Start everything, replay, report, stop everything. Returns the report dict."""
        from tradefleet.runner.live import LiveView
        from tradefleet.runner.report import build_report, write_report

        fleet = self.fleet = self._prepare()
        log.info("run starting", extra={"run_id": fleet.run_id, "out": str(fleet.out),
                                        "bots": [rt.key for rt in fleet.bots]})
        self._http = httpx.AsyncClient(timeout=60)
        started_ms = int(time.time() * 1000)
        try:
            await self._start_servers(fleet)
            await self._start_components(fleet)
            await self._record_run_start(started_ms)
            await self._watch_progress()
            self.view = LiveView(fleet, self._nc, enabled=self.options.live)
            async with self.view:
                final = await self._replay()
                self.view.note("replay done; waiting for bots and recorder to drain")
                await self._settle()
            report = await build_report(fleet, final, started_ms)
            report["replay"]["lockstep_timings"] = {k: round(v, 3) for k, v in self.timings.items()}
            report["database"] = ("DATABASE_URL" if "DATABASE_URL" in os.environ
                                  else str(_pg_data_dir(fleet)))
            write_report(fleet.out, report)
            await self._record_run_end(report)
            return report
        finally:
            await self._shutdown()

    async def _record_run_start(self, started_ms: int) -> None:
        import psycopg

        from tradefleet.workers.recorder.runs import record_run_start

        config = {"bots": [rt.bot.model_dump(by_alias=True, mode="json") for rt in self.fleet.bots],
                  "policy": self.fleet.policy.model_dump(by_alias=True, mode="json")
                  if self.fleet.policy else None,
                  "data": str(self.options.data), "speed": self.options.speed,
                  "until_ms": self.options.until_ms}
        async with await psycopg.AsyncConnection.connect(self.fleet.database_url,
                                                         autocommit=True) as conn:
            await record_run_start(conn, self.fleet.run_id, config, started_ms=started_ms)

    async def _record_run_end(self, report: dict) -> None:
        import psycopg

        from tradefleet.workers.recorder.runs import record_run_end

        async with await psycopg.AsyncConnection.connect(self.fleet.database_url,
                                                         autocommit=True) as conn:
            await record_run_end(conn, self.fleet.run_id, report)

    async def _shutdown(self) -> None:
        fleet = self.fleet
        if fleet is None:
            return
        if fleet.supervisor is not None:
            await fleet.supervisor.stop()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
        if self._http is not None:
            await self._http.aclose()
        for server in (fleet.nats, fleet.postgres):
            if server is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(server.stop)


class Interrupted(Exception):
    """The run was stopped by SIGINT (Ctrl-C) or SIGTERM after every process was stopped."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"stopped by signal {signum}")


async def _run_until_signalled(options: RunOptions) -> dict:
    """Run the fleet; SIGINT/SIGTERM cancel it, and the runner's cleanup stops everything."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    received: list[int] = []

    def stop(signum: int) -> None:
        if received:  # already stopping: a second Ctrl-C must not cut the cleanup short
            log.warning("still stopping components; please wait")
            return
        received.append(signum)
        log.warning("stopping every component (signal %d)", signum)
        task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    try:
        return await FleetRunner(options).run()
    except asyncio.CancelledError:
        if received:
            raise Interrupted(received[0]) from None
        raise


def run_fleet(paths: list[str], data: str, speed: float | None, until: str | None,
              out: str | None, initial_balance: str, live: bool) -> dict:
    """Entry of ``tradefleet run``: validate, run, return the report.

    Raises ManifestError / ValueError on bad input (before anything starts) and
    :class:`Interrupted` after a Ctrl-C / SIGTERM (once every process has been stopped).
    """
    options = RunOptions(paths=[pathlib.Path(p) for p in paths], data=pathlib.Path(data),
                         speed=speed, until_ms=_parse_until(until),
                         initial_balance=initial_balance,
                         out=pathlib.Path(out) if out else None, live=live)
    if not options.data.is_dir():
        raise ValueError(f"--data {data}: no such folder (expected klines/, funding/, markprice/)")
    load_fleet(options.paths)  # fail before anything starts
    return asyncio.run(_run_until_signalled(options))


__all__ = ["FleetRunner", "Interrupted", "RunOptions", "load_fleet", "run_fleet"]
