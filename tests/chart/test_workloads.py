"""What the chart's pods run: hardened, wired to each other, and started with arguments the
real ``tradefleet`` CLI accepts."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import typer
from tradefleet.operator.config import RUN_AS_USER, OperatorConfig
from tradefleet.operator.rbac import CLUSTER_ROLE_RULES

from tests.chart._helm import env_of, find, one, pod_specs
from tests.chart.conftest import VALUE_SETS
from tradefleet.cli import app

TRADEFLEET_CONTAINERS = {"operator", "risk", "recorder", "exsim"}
RESTRICTED_VOLUMES = {"configMap", "emptyDir", "persistentVolumeClaim", "secret", "projected",
                      "downwardAPI", "ephemeral", "csi"}


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return spec.get("initContainers", []) + spec["containers"]


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_every_pod_runs_hardened(rendered, name) -> None:
    """Pod Security Standard "restricted" and more: no host namespaces, only ephemeral or
    claimed volumes, non-root, seccomp RuntimeDefault, no capabilities, no escalation, and
    a read-only root filesystem."""
    problems = []
    for where, spec in pod_specs(rendered(name)):
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(host):
                problems.append(f"{where}: {host} is not allowed")
        for volume in spec.get("volumes", []):
            kinds = set(volume) - {"name"}
            if not kinds <= RESTRICTED_VOLUMES:
                problems.append(f"{where}: volume {volume['name']} is {kinds}")
        pod = spec.get("securityContext", {})
        if pod.get("runAsNonRoot") is not True or not pod.get("runAsUser"):
            problems.append(f"{where}: pod must run as a non-root UID")
        if pod.get("seccompProfile") != {"type": "RuntimeDefault"}:
            problems.append(f"{where}: seccompProfile must be RuntimeDefault")
        for c in _containers(spec):
            sc = c.get("securityContext", {})
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}/{c['name']}: root filesystem must be read-only")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}/{c['name']}: privilege escalation must be off")
            if sc.get("capabilities") != {"drop": ["ALL"]}:
                problems.append(f"{where}/{c['name']}: must drop ALL capabilities, add none")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_only_the_operator_gets_a_service_account_token(rendered, name) -> None:
    with_token = [where for where, spec in pod_specs(rendered(name))
                  if spec.get("automountServiceAccountToken") is not False]
    assert with_token == ["Deployment/tradefleet-operator"]


def test_tradefleet_pods_run_as_the_uid_of_the_bot_pods(rendered) -> None:
    """The chart's tradefleet pods and the operator's bot pods share the image's UID."""
    for where, spec in pod_specs(rendered("default")):
        if spec["containers"][0]["name"] in TRADEFLEET_CONTAINERS:
            assert spec["securityContext"]["runAsUser"] == RUN_AS_USER, where


def test_operator_cluster_role_has_exactly_the_operator_packages_rules(rendered) -> None:
    role = one(rendered("default"), "ClusterRole", "tradefleet-operator")
    assert role["rules"] == CLUSTER_ROLE_RULES
    binding = one(rendered("default"), "ClusterRoleBinding", "tradefleet-operator")
    assert binding["roleRef"]["name"] == "tradefleet-operator"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "tradefleet-operator",
                                    "namespace": "trading"}]
    deployment = one(rendered("default"), "Deployment", "tradefleet-operator")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "tradefleet-operator"


def test_no_role_grants_secrets_or_wildcards(rendered) -> None:
    for role in find(rendered("all-optional"), "ClusterRole") + find(rendered("all-optional"),
                                                                      "Role"):
        for rule in role["rules"]:
            assert "secrets" not in rule["resources"], role["metadata"]["name"]
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]


def _operator_config(objects: list[dict[str, Any]]) -> OperatorConfig:
    """The OperatorConfig the operator pod would build from its rendered environment."""
    container = one(objects, "Deployment", "tradefleet-operator")["spec"]["template"]["spec"][
        "containers"][0]
    env = {k: v for k, v in env_of(container).items() if isinstance(v, str)}
    env["POD_NAMESPACE"] = "trading"  # the downward API's metadata.namespace
    assert env_of(container)["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    return OperatorConfig.from_env(env)


def test_operator_points_bots_at_the_bundled_nats_and_exsim(rendered) -> None:
    config = _operator_config(rendered("default"))
    assert config.nats_url == "nats://tradefleet-nats.trading.svc:4222"
    assert config.urls("exsim") == ("http://tradefleet-exsim.trading.svc:9010",
                                    "ws://tradefleet-exsim.trading.svc:9010")
    assert config.image == "tradefleet:0.1.0"
    assert config.namespace == "trading" and config.risk_policy_name == "default"
    assert config.bot_risk_service is True


def test_operator_points_bots_at_external_nats_and_exsim(rendered) -> None:
    config = _operator_config(rendered("all-optional"))
    assert config.nats_url == "nats://nats.messaging.svc:4222"
    assert config.urls("exsim")[0] == "http://exsim.paper.svc:9010"
    assert config.image == "registry.example.com/trading/tradefleet:1.2.3"
    assert config.image_pull_policy == "Always"
    assert config.otlp_endpoint == "http://otel-collector.monitoring.svc:4318"
    assert config.risk_policy_name == "fleet"


def test_bots_ask_their_own_risk_checker_when_the_risk_service_is_off(helm) -> None:
    config = _operator_config(helm.template(sets=("risk.enabled=false",)))
    assert config.bot_risk_service is False


def test_nats_services_and_the_active_risk_policy_share_the_operators_names(rendered) -> None:
    objects = rendered("default")
    config = _operator_config(objects)
    service = one(objects, "Service", "tradefleet-nats")
    assert config.nats_url.startswith(f"nats://{service['metadata']['name']}.trading.svc:")
    assert one(objects, "RiskPolicy", config.risk_policy_name)


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_every_service_selects_a_pod_with_the_ports_it_targets(rendered, name) -> None:
    objects = rendered(name)
    workloads = [(o["spec"]["template"]["metadata"]["labels"], o["spec"]["template"]["spec"])
                 for o in objects if o["kind"] in ("Deployment", "StatefulSet")]
    for service in find(objects, "Service"):
        selector = service["spec"]["selector"]
        matches = [spec for labels, spec in workloads
                   if all(labels.get(k) == v for k, v in selector.items())]
        assert len(matches) == 1, f"Service {service['metadata']['name']} selects {len(matches)}"
        ports = {p["name"] for c in matches[0]["containers"] for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, (service["metadata"]["name"], port)


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_probes_use_ports_the_container_declares(rendered, name) -> None:
    for where, spec in pod_specs(rendered(name)):
        for c in spec["containers"]:
            ports = {p["name"] for p in c.get("ports", [])}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                port = c.get(probe, {}).get("httpGet", {}).get("port")
                assert port is None or port in ports, f"{where}/{c['name']} {probe} -> {port}"


def _cli_command(name: str) -> Any:
    """The click command behind ``tradefleet NAME`` (typer may vendor its own click)."""
    group = typer.main.get_command(app)
    command = group.commands.get(name)  # type: ignore[attr-defined]
    assert command is not None, f"`tradefleet {name}` is not a command of the CLI"
    return command


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_every_component_command_line_is_accepted_by_the_cli(rendered, name) -> None:
    """Each tradefleet container's args parse with the real click command (unknown options,
    bad types and missing required options fail here, not in a crash-looping pod)."""
    seen = set()
    for where, spec in pod_specs(rendered(name)):
        for c in spec["containers"]:
            if c["name"] not in TRADEFLEET_CONTAINERS:
                continue
            assert "command" not in c, f"{where}: the image's entrypoint must stay `tradefleet`"
            command, *args = c["args"]
            seen.add(command)
            cli = _cli_command(command)
            try:
                cli.make_context(command, list(args), resilient_parsing=False)
            except Exception as exc:  # noqa: BLE001 - UsageError of whichever click typer uses
                pytest.fail(f"{where}: tradefleet {' '.join(c['args'])}: {exc}")
    assert "operator" in seen


def test_cli_check_refuses_an_unknown_option() -> None:
    with pytest.raises(Exception, match="No such option: --metrics-prot"):
        _cli_command("risk").make_context("risk", ["--metrics-prot", "9108"])


def test_exsim_serves_the_bundled_data_on_all_interfaces(rendered) -> None:
    exsim = one(rendered("default"), "Deployment", "tradefleet-exsim")
    args = exsim["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:3] == ["exsim", "--host", "0.0.0.0"]
    assert args[args.index("--data") + 1] == "/data/binance-um"


def test_recorder_database_password_comes_only_from_the_secret(rendered) -> None:
    objects = rendered("default")
    recorder = one(objects, "Deployment", "tradefleet-recorder")
    env = env_of(recorder["spec"]["template"]["spec"]["containers"][0])
    assert env["DATABASE_URL"] == ("postgresql://tradefleet@tradefleet-timescaledb.trading.svc"
                                   ":5432/tradefleet")
    assert env["PGPASSWORD"] == {"secretKeyRef": {"name": "tradefleet-timescaledb",
                                                  "key": "password"}}
    db = one(objects, "StatefulSet", "tradefleet-timescaledb")
    db_env = env_of(db["spec"]["template"]["spec"]["containers"][0])
    assert db_env["POSTGRES_PASSWORD"] == env["PGPASSWORD"]
    secret = one(objects, "Secret", "tradefleet-timescaledb")
    assert len(base64.b64decode(secret["data"]["password"])) == 32


def test_existing_password_secret_replaces_the_generated_one(rendered) -> None:
    objects = rendered("bundled-options")
    assert not find(objects, "Secret")
    recorder = one(objects, "Deployment", "tradefleet-recorder")
    env = env_of(recorder["spec"]["template"]["spec"]["containers"][0])
    assert env["PGPASSWORD"]["secretKeyRef"]["name"] == "timescaledb-password"


def test_external_database_url_lives_in_a_secret_not_in_the_pod_spec(rendered) -> None:
    objects = rendered("external-database-url")
    assert not find(objects, "StatefulSet", "tradefleet-timescaledb")
    secret = one(objects, "Secret", "tradefleet-database")
    assert secret["stringData"]["DATABASE_URL"].startswith("postgresql://recorder:")
    recorder = one(objects, "Deployment", "tradefleet-recorder")
    env = env_of(recorder["spec"]["template"]["spec"]["containers"][0])
    assert env["DATABASE_URL"] == {"secretKeyRef": {"name": "tradefleet-database",
                                                    "key": "DATABASE_URL"}}
    for where, spec in pod_specs(objects):
        for c in spec["containers"]:
            assert "s3cret" not in str(c.get("env")) + str(c.get("args")), where


def test_external_services_replace_the_bundled_ones(rendered) -> None:
    objects = rendered("all-optional")
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for bundled in ("nats", "timescaledb", "exsim"):
        assert not any(n.startswith(f"tradefleet-{bundled}") for _, n in names), bundled
    assert not find(objects, "RiskPolicy")
    recorder = one(objects, "Deployment", "tradefleet-recorder")
    env = env_of(recorder["spec"]["template"]["spec"]["containers"][0])
    assert env["DATABASE_URL"] == {"secretKeyRef": {"name": "fleet-database", "key": "url"}}
    assert env["NATS_URL"] == "nats://nats.messaging.svc:4222"


def test_exsim_accounts_and_own_data_come_from_a_secret_and_a_claim(rendered) -> None:
    exsim = one(rendered("bundled-options"), "Deployment", "tradefleet-exsim")
    spec = exsim["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "exsim-accounts"}}]
    assert {"name": "data", "mountPath": "/data", "readOnly": True} in container["volumeMounts"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "market-data",
                                                      "readOnly": True}} in spec["volumes"]
    args = container["args"]
    assert args[args.index("--symbols") + 1] == "BTCUSDT,ETHUSDT"
    assert "--paused" in args


PORT_FLAGS = ("--metrics-port", "--port", "--liveness-port")


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_each_process_listens_on_the_port_its_probes_and_services_use(rendered, name) -> None:
    for where, spec in pod_specs(rendered(name)):
        for c in spec["containers"]:
            if c["name"] not in TRADEFLEET_CONTAINERS:
                continue
            args = c["args"]
            flags = [f for f in PORT_FLAGS if f in args]
            assert len(flags) == 1, f"{where}: expected one of {PORT_FLAGS} in {args}"
            listening = int(args[args.index(flags[0]) + 1])
            ports = {p["name"]: p["containerPort"] for p in c["ports"]}
            probed = {c[p]["httpGet"]["port"] for p in ("startupProbe", "livenessProbe",
                                                          "readinessProbe") if p in c}
            assert probed and {ports[p] for p in probed} == {listening}, where


def test_operator_liveness_port_follows_the_value(helm) -> None:
    objects = helm.template(sets=("operator.healthPort=8181",))
    container = one(objects, "Deployment", "tradefleet-operator")["spec"]["template"]["spec"][
        "containers"][0]
    assert container["args"][1:3] == ["--liveness-port", "8181"]
    assert container["ports"] == [{"name": "health", "containerPort": 8181, "protocol": "TCP"}]
