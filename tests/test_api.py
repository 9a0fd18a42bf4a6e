"""TradingBot and RiskPolicy manifests: the examples load, bad fields are named."""

import pathlib
import textwrap

import pytest

from tradefleet.api import ManifestError, RiskPolicy, TradingBot, load_manifests

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def test_the_example_fleet_loads_three_bots_and_a_policy():
    bots = load_manifests([EXAMPLES])
    assert {b.spec.strategy.name for b in bots} >= {"momentum", "ema_cross", "mean_reversion"}
    assert {b.metadata.name: b.spec.symbols for b in bots}["momentum-btc"] == ["BTCUSDT"]
    (policy,) = load_manifests([EXAMPLES], kind="RiskPolicy")
    assert isinstance(policy, RiskPolicy) and policy.spec.soft_cap_pct == 0.15


def test_strategy_params_get_their_defaults():
    bot = next(b for b in load_manifests([EXAMPLES]) if b.metadata.name == "ema-cross-eth")
    params = bot.spec.strategy.build_params()
    assert (params.ema_fast, params.ema_slow) == (20, 50)


def _write(tmp_path, body: str) -> pathlib.Path:
    path = tmp_path / "bot.yaml"
    path.write_text(textwrap.dedent(body))
    return path


BASE = """
apiVersion: tradefleet.io/v1alpha1
kind: TradingBot
metadata: {name: bad-bot}
spec:
  symbols: [BTCUSDT]
  strategy: {name: ema_cross, params: {ema_fast: 20, ema_slow: 50}}
"""


@pytest.mark.parametrize("patch,field,reason", [
    ("  sizing: {riskPctPerTrade: 12}\n", "spec.sizing.riskPctPerTrade", "less than or equal to 5"),
    ("  interval: 7m\n", "spec.interval", "'1m'"),
    ("  mode: yolo\n", "spec.mode", "paper"),
    ("  execution: {slippageCapBps: -1}\n", "spec.execution.slippageCapBps", "greater than or equal"),
    ("  apiSecret: hunter2\n", "spec.apiSecret", "Extra inputs are not permitted"),
])
def test_a_bad_field_is_refused_naming_file_field_and_reason(tmp_path, patch, field, reason):
    path = _write(tmp_path, BASE + patch)
    with pytest.raises(ManifestError) as err:
        load_manifests([path])
    text = str(err.value)
    assert str(path) in text and field in text and reason in text


def test_unknown_strategy_param_is_refused_by_name(tmp_path):
    path = _write(tmp_path, BASE.replace("ema_slow: 50", "ema_slow: 50, ema_slwo: 3"))
    with pytest.raises(ManifestError, match="params.ema_slwo"):
        load_manifests([path])


def test_unknown_strategy_lists_the_choices(tmp_path):
    path = _write(tmp_path, BASE.replace("name: ema_cross", "name: martingale"))
    with pytest.raises(ManifestError, match="unknown strategy 'martingale'.*ema_cross"):
        load_manifests([path])


def test_real_venue_requires_a_credentials_secret(tmp_path):
    path = _write(tmp_path, BASE + "  venue: binanceusdm\n  mode: testnet\n")
    with pytest.raises(ManifestError, match="credentialsSecretRef is required"):
        load_manifests([path])


def test_lower_case_symbol_is_refused(tmp_path):
    path = _write(tmp_path, BASE.replace("[BTCUSDT]", "[btcusdt]"))
    with pytest.raises(ManifestError, match=r"spec.symbols.0"):
        load_manifests([path])


def test_two_bots_with_one_name_are_refused(tmp_path):
    (tmp_path / "a.yaml").write_text(textwrap.dedent(BASE))
    (tmp_path / "b.yaml").write_text(textwrap.dedent(BASE))
    with pytest.raises(ManifestError, match="already defined"):
        load_manifests([tmp_path])


def test_yaml_that_does_not_parse_names_the_file(tmp_path):
    path = _write(tmp_path, "kind: TradingBot\nspec: [unclosed\n")
    with pytest.raises(ManifestError, match="cannot read YAML"):
        load_manifests([path])


def test_round_trip_keeps_camel_case_on_the_wire():
    bot = load_manifests([EXAMPLES])[0]
    wire = bot.spec.model_dump(by_alias=True, mode="json")
    assert "riskPctPerTrade" in wire["sizing"] and "onDelete" in wire
    assert TradingBot.model_validate({"apiVersion": bot.api_version, "kind": "TradingBot",
                                      "metadata": {"name": "x"}, "spec": wire}).spec == bot.spec
