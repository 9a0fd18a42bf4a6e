"""The CRDs in crds/: generated from the models, structural, and refusing what the models refuse."""

from __future__ import annotations

import copy
import pathlib

import kubernetes_validate
import pytest
import yaml

from tradefleet.api import crd as crdgen
from tradefleet.api import load_manifests

from tests.operator._crd import ApiServerValidator, structural_problems

ROOT = pathlib.Path(__file__).resolve().parents[2]
CRDS = {p.name: yaml.safe_load(p.read_text()) for p in (ROOT / "crds").glob("*.yaml")}
TB = CRDS["tradingbots.tradefleet.io.yaml"]
RP = CRDS["riskpolicies.tradefleet.io.yaml"]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def _docs(kind: str) -> list[dict]:
    return [d for p in EXAMPLES for d in yaml.safe_load_all(p.read_text()) if d and d["kind"] == kind]


def _schema(crd: dict) -> dict:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


BOT = {
    "apiVersion": "tradefleet.io/v1alpha1", "kind": "TradingBot",
    "metadata": {"name": "bad-bot", "namespace": "default"},
    "spec": {"symbols": ["BTCUSDT"],
             "strategy": {"name": "ema_cross", "params": {"ema_fast": 20, "ema_slow": 50}}},
}


def _bot(**changes) -> dict:
    bot = copy.deepcopy(BOT)
    for dotted, value in changes.items():
        node = bot["spec"]
        *parents, leaf = dotted.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return bot


def test_committed_crds_are_what_the_models_generate():
    assert crdgen.stale() == [], "crds/ is stale: run `make crds`"


def test_crd_check_command_reports_a_stale_file(tmp_path):
    assert crdgen.main(["--out", str(tmp_path)]) == 0
    (tmp_path / "tradingbots.tradefleet.io.yaml").write_text("# edited by hand\n")
    assert crdgen.main(["--out", str(tmp_path), "--check"]) == 1


@pytest.mark.parametrize("name", sorted(CRDS))
def test_crd_is_a_valid_apiextensions_object(name):
    kubernetes_validate.validate(CRDS[name], "1.33", strict=True)


@pytest.mark.parametrize("name", sorted(CRDS))
def test_crd_schema_is_structural(name):
    assert structural_problems(_schema(CRDS[name])) == []


def test_tradingbot_crd_names_columns_and_status_subresource():
    spec = TB["spec"]
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["shortNames"] == ["tb"] and spec["names"]["categories"] == ["tradefleet"]
    version = spec["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Strategy", "Symbols", "Mode", "Phase", "Position", "PnL", "Age"]


def test_status_conditions_have_the_metav1_condition_shape():
    conditions = _schema(TB)["properties"]["status"]["properties"]["conditions"]
    item = conditions["items"]
    assert set(item["required"]) == {"type", "status", "lastTransitionTime", "reason", "message"}
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]


def test_no_spec_field_can_hold_an_exchange_key_in_clear():
    spec = _schema(TB)["properties"]["spec"]
    words = []

    def walk(node, path):
        for name, sub in node.get("properties", {}).items():
            words.append(f"{path}.{name}")
            walk(sub, f"{path}.{name}")
    walk(spec, "spec")
    leaks = [w for w in words if any(s in w.lower() for s in ("secret", "apikey", "password"))
             and not w.startswith("spec.credentialsSecretRef")]
    assert leaks == []
    ref = spec["properties"]["credentialsSecretRef"]["properties"]
    assert set(ref) == {"name", "apiKeyKey", "apiSecretKey"}  # names of keys, never values


@pytest.mark.parametrize("doc", _docs("TradingBot"), ids=lambda d: d["metadata"]["name"])
def test_example_bot_is_accepted_by_the_crd(doc):
    assert ApiServerValidator(TB).errors(doc) == []


@pytest.mark.parametrize("doc", _docs("RiskPolicy"), ids=lambda d: d["metadata"]["name"])
def test_example_riskpolicy_is_accepted_by_the_crd(doc):
    assert ApiServerValidator(RP).errors(doc) == []


BAD_BOTS = [
    # (changes to BOT, field the error names, words of the reason)
    ({"sizing__riskPctPerTrade": 12}, "spec.sizing.riskPctPerTrade", "maximum of 5"),
    ({"interval": "7m"}, "spec.interval", "is not one of"),
    ({"mode": "yolo"}, "spec.mode", "is not one of"),
    ({"symbols": ["btcusdt"]}, "spec.symbols[0]", "does not match"),
    ({"symbols": ["BTCUSDT", "BTCUSDT"]}, "spec.symbols", "non-unique"),
    ({"symbols": []}, "spec.symbols", "should be non-empty"),
    ({"apiSecret": "hunter2"}, "spec", "'apiSecret' was unexpected"),
    ({"execution__slippageCapBps": -1}, "spec.execution.slippageCapBps", "minimum of 0"),
    ({"sizing__leverage": 0}, "spec.sizing.leverage", "minimum of 1"),
    ({"heartbeatIntervalS": 0}, "spec.heartbeatIntervalS", "minimum of 1"),
    ({"onDelete": "explode"}, "spec.onDelete", "is not one of"),
    ({"strategy": {"name": "martingale"}}, "spec.strategy.name", "is not one of"),
    ({"strategy": {"name": "ema_cross", "params": {"ema_slwo": 3}}}, "spec.strategy.params",
     "'ema_slwo' was unexpected"),
    ({"strategy": {"name": "ema_cross", "params": {"ema_fast": 0}}},
     "spec.strategy.params.ema_fast", "less than or equal to the minimum of 0"),
    ({"strategy": {"name": "ema_cross", "params": {"stop_pct": 1}}},
     "spec.strategy.params.stop_pct", "greater than or equal to the maximum of 1"),
    ({"strategy": {"name": "ema_cross", "params": {"breakout_period": 30}}},
     "spec.strategy.params", "strategy ema_cross takes only these params"),
    ({"strategy": {"name": "ema_cross", "params": {"ema_fast": 60}}},
     "spec.strategy.params.ema_slow", "ema_slow must be greater than ema_fast"),
    ({"strategy": {"name": "donchian_breakout", "params": {"exit_period": 30}}},
     "spec.strategy.params.exit_period", "must not exceed entry_period"),
    ({"strategy": {"name": "mean_reversion", "params": {"rsi_oversold": 80}}},
     "spec.strategy.params.rsi_overbought", "greater than rsi_oversold"),
    ({"strategy": {"name": "momentum", "params": {"atr_min_pct_by_symbol": {"btc": 0.001}}}},
     "spec.strategy.params.atr_min_pct_by_symbol", "every key must match"),
    ({"venue": "binanceusdm", "mode": "live"}, "spec.credentialsSecretRef", "required unless"),
    ({"mode": "live"}, "spec.mode", "venue exsim only supports mode 'paper'"),
    ({"execution__tpTiers": [{"r": 2, "fraction": 0.5}, {"r": 1, "fraction": 0.5}]},
     "spec.execution.tpTiers", "strictly ascending r"),
    ({"execution__tpTiers": [{"r": 1, "fraction": 0.7}, {"r": 2, "fraction": 0.7}]},
     "spec.execution.tpTiers", "add up to more than 1"),
    ({"credentialsSecretRef": {"name": "Keys!"}}, "spec.credentialsSecretRef.name",
     "does not match"),
]


@pytest.mark.parametrize("changes,field,reason", BAD_BOTS, ids=[b[1] + ":" + b[2][:20] for b in BAD_BOTS])
def test_bad_bot_is_refused_naming_the_field(changes, field, reason):
    errors = ApiServerValidator(TB).errors(_bot(**changes))
    assert any(e.startswith(field + ":") and reason in e for e in errors), errors


# The strategies' cross-field validators run only on fields that are given (pydantic does
# not validate defaults), so the models accept ema_fast 60 with the default ema_slow 50; the
# CRD's CEL rules compare against the default and refuse it.
_CRD_STRICTER = {"ema_slow must be greater than ema_fast", "greater than rsi_oversold"}


@pytest.mark.parametrize("changes,field,reason", [b for b in BAD_BOTS if b[2] not in _CRD_STRICTER],
                         ids=[b[1] + ":" + b[2][:20] for b in BAD_BOTS if b[2] not in _CRD_STRICTER])
def test_the_models_refuse_the_same_bad_bots(tmp_path, changes, field, reason):
    path = tmp_path / "bot.yaml"
    path.write_text(yaml.safe_dump(_bot(**changes)))
    with pytest.raises(ValueError):
        load_manifests([path])


def test_bot_name_must_start_with_a_letter():
    bot = _bot()
    bot["metadata"]["name"] = "1bot"
    assert any("metadata.name must start with a letter" in e
               for e in ApiServerValidator(TB).errors(bot))


def test_every_strategy_with_its_defaults_is_accepted():
    from tradefleet.workers.strategies import STRATEGIES, params_model

    for name in STRATEGIES:
        params = params_model(name)().model_dump(mode="json")
        assert ApiServerValidator(TB).errors(_bot(strategy={"name": name, "params": params})) == []


def test_schema_defaults_match_the_models():
    from tradefleet.api import TradingBotSpec

    defaulted = ApiServerValidator(TB).defaulted(_bot(sizing={}, execution={}, risk={}))["spec"]
    model = TradingBotSpec.model_validate(BOT["spec"]).model_dump(mode="json", by_alias=True)
    for section in ("sizing", "execution", "risk"):
        for key, value in defaulted[section].items():
            assert model[section][key] == value, f"{section}.{key}"
    assert (defaulted["venue"], defaulted["mode"], defaulted["onDelete"]) == ("exsim", "paper",
                                                                            "flatten")


BAD_POLICIES = [
    ({"perSymbolCapUsdt": 20000, "totalCapUsdt": 10000}, "spec.perSymbolCapUsdt",
     "must not exceed totalCapUsdt"),
    ({"softCapPct": 2}, "spec.softCapPct", "maximum of 1"),
    ({"totalCapUsdt": 0}, "spec.totalCapUsdt", "minimum of 0"),
    ({"onHalt": "panic"}, "spec.onHalt", "is not one of"),
    ({"capitalPools": [{"name": "a", "capUsdt": 1}, {"name": "a", "capUsdt": 2}]},
     "spec.capitalPools[1]", "Duplicate value"),
    ({"correlationClusters": [{"name": "x", "symbols": ["BTCUSDT"]}]},
     "spec.correlationClusters[0].symbols", "too short"),
]


@pytest.mark.parametrize("changes,field,reason", BAD_POLICIES, ids=[b[1] for b in BAD_POLICIES])
def test_bad_riskpolicy_is_refused_naming_the_field(changes, field, reason):
    policy = {"apiVersion": "tradefleet.io/v1alpha1", "kind": "RiskPolicy",
              "metadata": {"name": "default"}, "spec": changes}
    errors = ApiServerValidator(RP).errors(policy)
    assert any(e.startswith(field + ":") and reason in e for e in errors), errors
