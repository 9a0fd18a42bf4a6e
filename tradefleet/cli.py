"""The ``tradefleet`` console script: one entrypoint per component (the pods run the same).

Each command is a thin shim that imports its component lazily, so ``tradefleet --help``
stays fast and a component's dependencies load only when it runs.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="tradefleet",
    help="Kubernetes-native fleet of crypto trading bots for perpetual futures.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _main() -> None:
    """tradefleet components and tools."""


@app.command()
def exsim(
    data: str = typer.Option(..., "--data", help="data folder laid out like data/binance-um"),
    speed: float = typer.Option(20.0, "--speed", help="replay speed in 1m bars per second"),
    port: int = typer.Option(9010, "--port", help="TCP port (0 = any free port)"),
    host: str = typer.Option("127.0.0.1", "--host", help="bind address (0.0.0.0 in a pod)"),
    api_key: list[str] = typer.Option(None, "--api-key", help="API key (repeatable; "
                                      "default EXSIM_API_KEY, else exsim-key)"),
    api_secret: list[str] = typer.Option(None, "--api-secret", help="secret of the "
                                         "--api-key at the same position (repeatable)"),
    initial_balance: str = typer.Option("10000", "--initial-balance",
                                        help="USDT deposited in every account"),
    symbols: list[str] = typer.Option(None, "--symbols", help="symbols to replay "
                                      "(repeatable or comma-separated; default all)"),
    paused: bool = typer.Option(False, "--paused", help="start paused; step via /admin"),
    log_level: str = typer.Option("info", "--log-level"),
) -> None:
    """Run exsim, the Binance USDⓈ-M futures simulator, replaying recorded klines."""
    from decimal import Decimal, InvalidOperation

    from tradefleet.exsim.server import ServerConfig
    from tradefleet.exsim.server.main import run

    keys, secrets = api_key or [], api_secret or []
    if len(keys) != len(secrets):
        raise typer.BadParameter(f"{len(keys)} --api-key but {len(secrets)} --api-secret; "
                                 "give one secret per key", param_hint="--api-secret")
    try:
        balance = Decimal(initial_balance)
    except InvalidOperation:
        raise typer.BadParameter(f"not a number: {initial_balance!r}",
                                 param_hint="--initial-balance") from None
    syms = [s.strip().upper() for item in (symbols or []) for s in item.split(",") if s.strip()]
    try:
        config = ServerConfig(data_dir=data, speed=speed, host=host, port=port,
                              api_keys=list(zip(keys, secrets)), initial_balance=balance,
                              symbols=syms or None, paused=paused)
        config.resolved_keys()
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    run(config, log_level=log_level)


@app.command()
def risk(
    policy: str = typer.Option(None, "--policy", help="RiskPolicy YAML file, used while KV "
                               "risk-policy/policy is absent"),
    nats_url: str = typer.Option(None, "--nats-url", envvar="NATS_URL", help="nats://host:port"),
    metrics_port: int = typer.Option(9108, "--metrics-port", help="/metrics, /healthz and "
                                     "/readyz port (0 = any free port)"),
    replica: str = typer.Option(None, "--replica", help="name in events and logs "
                                "(default hostname-pid)"),
    log_level: str = typer.Option(None, "--log-level", help="DEBUG/INFO/WARNING/ERROR "
                                  "(default LOG_LEVEL or INFO)"),
) -> None:
    """Run the shared risk service: risk.check and reports over NATS, state in JetStream KV."""
    from tradefleet.workers.risk.main import load_file_policy, run

    try:
        file_policy = load_file_policy(policy)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--policy") from None
    run(file_policy, nats_url, metrics_port, replica, log_level)


@app.command("risk-lock")
def risk_lock(
    action: str = typer.Argument(..., help="grant, release or show"),
    pool: str = typer.Argument(..., help="capital pool name (RiskPolicy capitalPools)"),
    bot: str = typer.Option(None, "--bot", help="namespace/name of the bot (grant; release "
                            "only if it holds the lock)"),
    nats_url: str = typer.Option(None, "--nats-url", envvar="NATS_URL", help="nats://host:port"),
) -> None:
    """Grant, release or show a capital-pool lock (KV bucket locks)."""
    from tradefleet.workers.risk.main import run_lock

    try:
        typer.echo(run_lock(action, pool, bot, nats_url))
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None



@app.command()
def marketdata(
    venue: str = typer.Option(..., "--venue", help="venue id in subjects: exsim, binanceusdm"),
    ws_url: str = typer.Option(..., "--ws-url", help="WebSocket base, e.g. "
                               "wss://fstream.binance.com or ws://127.0.0.1:9010"),
    rest_url: str = typer.Option(..., "--rest-url", help="REST base, e.g. "
                                 "https://fapi.binance.com or http://127.0.0.1:9010"),
    ws_routing: str = typer.Option("split", "--ws-routing", help="split: /market/stream + "
                                   "/public/stream (Binance since 2026-04); single: one /stream"),
    symbols: str = typer.Option(..., "--symbols", help="comma-separated, e.g. BTCUSDT,ETHUSDT"),
    interval: list[str] = typer.Option(["1m"], "--interval", help="kline interval (repeatable "
                                       "or comma-separated)"),
    streams: str = typer.Option("kline,mark,funding,book", "--streams",
                                help="what to publish: kline, mark, funding, book"),
    nats_url: str = typer.Option(None, "--nats-url", envvar="NATS_URL", help="nats://host:port"),
    metrics_port: int = typer.Option(9002, "--metrics-port", help="/metrics, /healthz and "
                                     "/readyz port (0 = any free port)"),
    idle_timeout: float = typer.Option(60.0, "--idle-timeout", help="reconnect after this "
                                       "many seconds without a message (0 = never)"),
    backoff_min: float = typer.Option(0.5, "--backoff-min", help="first reconnect delay, s"),
    backoff_max: float = typer.Option(30.0, "--backoff-max", help="longest reconnect delay, s"),
    book_interval_ms: int = typer.Option(100, "--book-interval-ms", help="at most one best "
                                         "bid/ask per symbol per this many ms (0 = all)"),
    initial_backfill: int = typer.Option(0, "--initial-backfill", help="closed klines to "
                                         "back-fill when a subject has none stored"),
    bus_config: str = typer.Option(None, "--bus-config", help="YAML/JSON of stream limits "
                                   "(tradefleet.bus.streams.BusConfig), e.g. market: "
                                   "{max_age_s: 86400}"),
    log_level: str = typer.Option(None, "--log-level", help="DEBUG/INFO/WARNING/ERROR "
                                  "(default LOG_LEVEL or INFO)"),
) -> None:
    """Run a market-data feed: one WebSocket per venue, klines/mark/funding/book to JetStream."""
    import pathlib

    import yaml
    from pydantic import ValidationError

    from tradefleet.workers.marketdata import FeedConfig
    from tradefleet.workers.marketdata.main import run

    def items(text: str) -> list[str]:
        return [t.strip() for t in text.split(",") if t.strip()]

    try:
        bus = yaml.safe_load(pathlib.Path(bus_config).read_text()) if bus_config else None
    except (OSError, yaml.YAMLError) as e:
        raise typer.BadParameter(f"cannot read {bus_config}: {e}",
                                 param_hint="--bus-config") from None
    try:
        config = FeedConfig.model_validate({
            "venue": venue, "ws_url": ws_url, "ws_routing": ws_routing, "rest_url": rest_url,
            "symbols": items(symbols),
            "intervals": [i for item in interval for i in items(item)],
            "streams": items(streams), "nats_url": nats_url, "metrics_port": metrics_port,
            "idle_timeout_s": idle_timeout or None,
            "backoff": {"min_s": backoff_min, "max_s": backoff_max},
            "book_min_interval_ms": book_interval_ms, "initial_backfill_bars": initial_backfill,
            **({"bus": bus} if bus is not None else {}),
        })
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
                             for err in e.errors())
        raise typer.BadParameter(problems) from None
    run(config, log_level)

@app.command()
def bot(
    config: str = typer.Option(..., "--config", help="TradingBot manifest (bot.yaml)"),
    nats_url: str = typer.Option(None, "--nats-url", envvar="NATS_URL", help="nats://host:port"),
    metrics_port: int = typer.Option(9001, "--metrics-port", help="/metrics, /healthz and "
                                     "/readyz port (0 = any free port)"),
    risk_policy: str = typer.Option(None, "--risk-policy", help="RiskPolicy YAML for the "
                                    "bot's local risk checker (default: RiskPolicy defaults)"),
    risk_service: bool = typer.Option(False, "--risk-service", help="ask the shared risk "
                                      "service over NATS instead of the local checker"),
    otlp_endpoint: str = typer.Option(None, "--otlp-endpoint", help="OTLP/HTTP collector for "
                                      "traces, e.g. http://otel-collector:4318"),
    ack_wait: float = typer.Option(30.0, "--ack-wait", help="seconds before an unacked bar "
                                   "is redelivered to the next instance after a crash"),
    log_level: str = typer.Option(None, "--log-level", help="DEBUG/INFO/WARNING/ERROR "
                                  "(default LOG_LEVEL or INFO)"),
) -> None:
    """Run one trading bot: bars from JetStream, strategy, risk, orders via ccxt.

    Exchange keys come from TRADEFLEET_API_KEY / TRADEFLEET_API_SECRET (exsim: also
    EXSIM_API_KEY / EXSIM_API_SECRET, else its default paper account). Exit code 2 on a bad
    configuration, naming each bad field.
    """
    from tradefleet.workers.bot.main import main

    raise typer.Exit(main(config, nats_url=nats_url, metrics_port=metrics_port,
                          risk_policy=risk_policy, otlp_endpoint=otlp_endpoint,
                          risk_service=risk_service, ack_wait_s=ack_wait, log_level=log_level))


@app.command()
def recorder(
    nats_url: str = typer.Option(None, "--nats-url", envvar="NATS_URL", help="nats://host:port"),
    database_url: str = typer.Option(None, "--database-url", envvar="DATABASE_URL",
                                     show_default=False, show_envvar=True,
                                     help="PostgreSQL/TimescaleDB URL (default DATABASE_URL)"),
    metrics_port: int = typer.Option(9109, "--metrics-port", help="/metrics, /healthz and "
                                     "/readyz port (0 = any free port)"),
    batch_size: int = typer.Option(5000, "--batch-size", help="most messages per database "
                                   "transaction"),
    flush_ms: int = typer.Option(100, "--flush-ms", help="how long a partial batch waits "
                                 "for more messages, ms"),
    queue_capacity: int = typer.Option(None, "--queue-capacity", help="most messages held "
                                       "unacked (default 4 x batch size)"),
    ack_wait: float = typer.Option(60.0, "--ack-wait", help="seconds before JetStream "
                                   "redelivers a message a crashed recorder held"),
    bus_config: str = typer.Option(None, "--bus-config", help="YAML/JSON of stream limits "
                                   "(tradefleet.bus.streams.BusConfig)"),
    log_level: str = typer.Option(None, "--log-level", help="DEBUG/INFO/WARNING/ERROR "
                                  "(default LOG_LEVEL or INFO)"),
) -> None:
    """Record md.>, fleet.> and risk.events into PostgreSQL/TimescaleDB (acked after commit)."""
    from tradefleet.workers.recorder.cli import build_config
    from tradefleet.workers.recorder.main import run

    try:
        config = build_config(nats_url=nats_url, database_url=database_url,
                              metrics_port=metrics_port, batch_size=batch_size,
                              flush_ms=flush_ms, queue_capacity=queue_capacity,
                              ack_wait_s=ack_wait, bus_config=bus_config)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    run(config, log_level)


@app.command()
def run(
    paths: list[str] = typer.Argument(..., help="TradingBot / RiskPolicy manifests: files or "
                                      "folders (e.g. examples/)"),
    data: str = typer.Option("data/binance-um", "--data", help="exsim data folder"),
    speed: float = typer.Option(None, "--speed", help="free-running replay in bars/s "
                                "(default: lockstep, every bar processed by every bot)"),
    until: str = typer.Option(None, "--until", help="stop the replay at this UTC time, "
                              "e.g. 2025-05-06T00:00Z (default: end of the data)"),
    out: str = typer.Option(None, "--out", help="output folder (default out/run-<time>)"),
    initial_balance: str = typer.Option("10000", "--initial-balance",
                                        help="USDT in each bot's exsim account"),
    live: bool = typer.Option(True, "--live/--no-live", help="live terminal view"),
) -> None:
    """Run the fleet locally: embedded NATS + PostgreSQL, exsim on real data, every bot.

    Exit code 2 when a manifest is invalid (nothing is started); the report lands in the
    output folder as report.json and report.html.
    """
    import json
    import logging

    from tradefleet.api import ManifestError
    from tradefleet.runner.fleet import Interrupted, run_fleet
    from tradefleet.telemetry.logging import setup_logging

    setup_logging("run", level="WARNING")
    logging.getLogger("tradefleet.runner").setLevel(logging.INFO)
    try:
        report = run_fleet(paths, data, speed, until, out, initial_balance, live)
    except (ManifestError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    except Interrupted as e:
        typer.echo(f"interrupted ({e}): every component was stopped", err=True)
        raise typer.Exit(128 + e.signum) from None
    from tradefleet.runner.summary import print_summary

    print_summary(report)
    typer.echo(json.dumps({"report": report["out"] + "/report.html",
                           "reconciled": report["total"]["reconciled"]}))


@app.command("operator")
def operator_(
    namespace: list[str] = typer.Option(None, "--namespace", help="watch only these "
                                        "namespaces (repeatable; default: cluster-wide)"),
    liveness_port: int = typer.Option(8080, "--liveness-port", help="kopf's /healthz port "
                                      "(0 = none)"),
    log_level: str = typer.Option(None, "--log-level", help="DEBUG/INFO/WARNING/ERROR "
                                  "(default LOG_LEVEL or INFO)"),
) -> None:
    """Run the operator: TradingBot -> worker pod, RiskPolicy -> KV, market-data feeds.

    Settings (image, NATS_URL, exsim URL, timings) come from the environment; see
    tradefleet.operator.config.
    """
    from tradefleet.operator.config import OperatorConfig
    from tradefleet.operator.main import run

    try:
        config = OperatorConfig.from_env()
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    run(config, namespaces=namespace or (), liveness_port=liveness_port or None,
        log_level=log_level)


if __name__ == "__main__":  # pragma: no cover
    app()
