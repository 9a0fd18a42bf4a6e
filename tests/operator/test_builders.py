"""The pure builders: every manifest is a valid Kubernetes object; hashes and args behave."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml

from tradefleet.api import TradingBot
from tradefleet.operator import builders as b
from tradefleet.operator.config import OperatorConfig
from tradefleet.operator.rbac import cluster_role
from tradefleet.workers.bot.config import config_hash

K8S = "1.33"
CONFIG = OperatorConfig(image="ghcr.io/tradefleet/tradefleet:0.1.0", nats_url="nats://nats:4222",
                        otlp_endpoint="http://otel:4318")


def _body(name="momentum-btc", **spec) -> dict:
    base = {"symbols": ["BTCUSDT"], "strategy": {"name": "momentum", "params": {}}}
    base.update(spec)
    return {"apiVersion": "tradefleet.io/v1alpha1", "kind": "TradingBot",
            "metadata": {"name": name, "namespace": "trading", "uid": "1234-5678",
                         "generation": 3}, "spec": base}


LIVE = dict(venue="binanceusdm", mode="live",
            credentialsSecretRef={"name": "binance-keys", "apiKeyKey": "key"})


@pytest.mark.parametrize("spec", [{}, LIVE], ids=["exsim", "binanceusdm"])
def test_every_bot_child_is_a_valid_kubernetes_object(spec):
    for manifest in b.build_bot_children(_body(**spec), CONFIG):
        kubernetes_validate.validate(manifest, K8S, strict=True)


def test_marketdata_deployment_and_cluster_role_are_valid_kubernetes_objects():
    feed = b.build_marketdata_deployment("binanceusdm", ["ETHUSDT", "BTCUSDT"], ["5m", "1m"],
                                         CONFIG)
    kubernetes_validate.validate(feed, K8S, strict=True)
    kubernetes_validate.validate(cluster_role(), K8S, strict=True)


def test_live_bot_gets_its_keys_from_the_secret_never_inline():
    dep = b.build_bot_children(_body(**LIVE), CONFIG)[1]
    env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["TRADEFLEET_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "binance-keys",
                                                                      "key": "key"}
    assert env["TRADEFLEET_API_SECRET"]["valueFrom"]["secretKeyRef"]["key"] == "apiSecret"
    assert all("value" not in env[k] for k in ("TRADEFLEET_API_KEY", "TRADEFLEET_API_SECRET"))


def test_pod_runs_non_root_read_only_without_a_token():
    pod = b.build_bot_children(_body(), CONFIG)[1]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"] == {"allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                                    "capabilities": {"drop": ["ALL"]}}


def test_paused_and_on_delete_do_not_change_the_rollout_hash():
    base = b.render_bot(b.validate_bot(_body()), CONFIG)
    paused = b.render_bot(b.validate_bot(_body(paused=True, onDelete="leave")), CONFIG)
    other = b.render_bot(b.validate_bot(_body(interval="5m")), CONFIG)
    assert b.rollout_hash(base) == b.rollout_hash(paused) != b.rollout_hash(other)


def test_the_worker_hash_of_the_configmap_is_accepted_after_a_pause():
    body = _body()
    cm = b.build_bot_children(body, CONFIG)[0]
    running = config_hash(TradingBot.model_validate(yaml.safe_load(cm["data"]["bot.yaml"])))
    paused = b.render_bot(b.validate_bot(_body(paused=True)), CONFIG)
    assert running in b.accepted_worker_hashes(paused)
    changed = b.render_bot(b.validate_bot(_body(interval="5m")), CONFIG)
    assert running not in b.accepted_worker_hashes(changed)


def test_exsim_bot_without_endpoints_gets_the_in_cluster_exsim_urls():
    manifest = b.render_bot(b.validate_bot(_body()), CONFIG)
    assert manifest["spec"]["endpoints"] == {"restUrl": "http://exsim:9010",
                                             "wsUrl": "ws://exsim:9010"}


def test_bad_bot_names_the_field():
    with pytest.raises(b.InvalidBot, match=r"spec.strategy"):
        b.validate_bot(_body(strategy={"name": "momentum", "params": {"atr_period": 0}}))
    with pytest.raises(b.InvalidBot, match="reserved"):
        b.validate_bot({**_body(), "metadata": {"name": "x1", "namespace": "cmd", "uid": "u"}})


def test_marketdata_args_list_the_union_sorted():
    args = b.marketdata_args("exsim", ["ETHUSDT", "BTCUSDT", "ETHUSDT"], ["1h", "1m", "5m"],
                             CONFIG)
    assert args[args.index("--symbols") + 1] == "BTCUSDT,ETHUSDT"
    assert args[args.index("--interval") + 1] == "1m,5m,1h"
    assert args[args.index("--rest-url") + 1] == "http://exsim:9010"


def test_config_from_env_reads_the_documented_variables():
    cfg = OperatorConfig.from_env({"TRADEFLEET_IMAGE": "img:1", "NATS_URL": "nats://n:4222",
                                   "POD_NAMESPACE": "tf", "TRADEFLEET_EXSIM_URL": "http://ex:1/",
                                   "TRADEFLEET_DRAIN_TIMEOUT_S": "60"})
    assert (cfg.image, cfg.nats_url, cfg.namespace, cfg.drain_timeout_s) == (
        "img:1", "nats://n:4222", "tf", 60.0)
    assert cfg.urls("exsim") == ("http://ex:1", "ws://ex:1")
    with pytest.raises(ValueError, match="TRADEFLEET_STATUS_INTERVAL_S"):
        OperatorConfig.from_env({"TRADEFLEET_STATUS_INTERVAL_S": "soon"})
