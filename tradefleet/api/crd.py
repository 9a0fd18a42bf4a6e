"""Generate the CustomResourceDefinitions in ``crds/`` from the API models (``make crds``).

``python -m tradefleet.api.crd`` writes ``crds/tradingbots.tradefleet.io.yaml`` and
``crds/riskpolicies.tradefleet.io.yaml``; ``--check`` exits 1 when the committed files differ
from what the models generate (a test runs the same comparison).

The pydantic models are the source of truth; their JSON Schema is rewritten into a
Kubernetes *structural* schema (apiextensions.k8s.io/v1, "Specifying a structural schema"):

- ``$ref`` is inlined; ``anyOf: [X, null]`` becomes X with ``nullable: true``; ``const``
  becomes a one-value ``enum``; titles are dropped; every node has a ``type``.
- JSON Schema 2020's numeric ``exclusiveMinimum: 0`` becomes OpenAPI 3.0's
  ``minimum: 0`` + ``exclusiveMinimum: true`` (the tighter of two bounds wins).
- ``extra="forbid"`` needs no ``additionalProperties: false`` (not allowed next to
  ``properties``): the API server prunes unknown fields and ``kubectl apply``'s default
  strict field validation refuses them, naming the field.
- A list validated unique (``symbols``) is ``x-kubernetes-list-type: set``; lists of named
  items (``correlationClusters``, ``capitalPools``) are ``map`` lists keyed by ``name``, so
  the API server refuses duplicates (``uniqueItems`` is not allowed in CRDs).
- ``patternProperties`` (not supported) becomes ``additionalProperties`` plus a CEL rule on
  the keys, with ``maxProperties`` so the rule's cost is bounded.
- Cross-field rules of the models (``model_validator``/``field_validator``) are written as
  ``x-kubernetes-validations`` CEL rules (:data:`CROSS_FIELD_RULES` and the spec rules below),
  each with a ``fieldPath`` so the error names the field.

Strategy parameters (``spec.strategy.params``) differ per strategy. Encoding: ``params`` is an
object with the *union* of every strategy's typed, constrained parameters (a parameter two
strategies share has one schema; if their bounds ever differ, the common type is kept and
each strategy's bounds become a CEL rule scoped to ``self.name``), and one CEL rule per
strategy on ``spec.strategy`` allows only that strategy's parameter names. Defaults are not
put in the schema for params (they differ per strategy: ``allow_shorts`` is false for
ema_cross, true for momentum); each description lists them instead, and the worker fills
them in. The alternative — one field per strategy (``params.momentum: {...}``) — would change
the manifest users already write and the worker reads.
"""

from __future__ import annotations

import argparse
import copy
import json
import pathlib
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any

import yaml
from pydantic import AliasChoices, BaseModel

from tradefleet.api.riskpolicy import RiskPolicySpec
from tradefleet.api.status import RiskPolicyStatus, TradingBotStatus
from tradefleet.api.tradingbot import API_GROUP, API_VERSION, TradingBotSpec

ROOT = pathlib.Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "crds"

HEADER = ("# Generated from the pydantic models in tradefleet/api by `make crds`\n"
          "# (python -m tradefleet.api.crd). Do not edit: change the models and regenerate.\n")

Schema = dict[str, Any]
Rule = dict[str, str]

# JSON Schema keys with no place in a structural schema (or no meaning for users).
_DROP = {"title", "$defs", "examples"}
_MAX_MAP_KEYS = 20
"""maxProperties of a map whose keys a CEL rule checks (bounds the rule's cost). The only
such map, momentum's ``atr_min_pct_by_symbol``, is per symbol of a bot: at most 20."""


class SchemaError(ValueError):
    """The model's JSON Schema has a construct with no structural equivalent."""


# ------------------------------------------------------------------------ JSON -> structural
def _resolve(node: Schema, defs: Mapping[str, Schema]) -> Schema:
    """Inline ``$ref`` (siblings such as description/default override the target's)."""
    while "$ref" in node:
        ref = node["$ref"]
        target = defs[ref.rsplit("/", 1)[-1]]
        node = {**copy.deepcopy(target), **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _bounds(node: Schema) -> None:
    """2020-12 numeric exclusive bounds -> OpenAPI 3.0 boolean ones; keep the tighter bound."""
    for excl, incl, tighter in (("exclusiveMinimum", "minimum", max),
                                ("exclusiveMaximum", "maximum", min)):
        value = node.get(excl)
        if value is None or isinstance(value, bool):
            continue
        if incl in node and tighter(node[incl], value) == node[incl] and node[incl] != value:
            del node[excl]  # the inclusive bound is already tighter (bb_period: ge=2, gt=0)
        else:
            node[incl] = value
            node[excl] = True


def _plain(value: Any) -> Any:
    return value.value if hasattr(value, "value") and not isinstance(value, (int, float,
                                                                             str)) else value


def structural(node: Schema, defs: Mapping[str, Schema] | None = None, *,
               defaults: bool = True) -> Schema:
    """The structural-schema form of one pydantic JSON Schema node (recursively).

    ``defaults`` keeps scalar defaults (the API server applies them, ``kubectl explain``
    shows them). Raises SchemaError for unions of several types (not structural).
    """
    defs = {**(defs or {}), **node.get("$defs", {})}
    node = _resolve(node, defs)
    for combo in ("allOf",):
        if combo in node:
            parts = node.pop(combo)
            if len(parts) != 1:
                raise SchemaError(f"{combo} with {len(parts)} branches")
            node = {**_resolve(parts[0], defs), **node}
    nullable = False
    if "anyOf" in node:
        branches = [b for b in node.pop("anyOf") if b.get("type") != "null"]
        nullable = True  # pydantic only emits anyOf for Optional here; checked below
        if len(branches) != 1:
            raise SchemaError(f"anyOf with {len(branches)} non-null branches is not structural")
        node = {**_resolve(branches[0], defs), **node}
    out: Schema = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {k: structural(v, defs, defaults=defaults) for k, v in value.items()}
        elif key == "items":
            out[key] = structural(value, defs, defaults=defaults)
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out[key] = structural(value, defs, defaults=defaults)
        elif key == "patternProperties":
            ((pattern, sub),) = value.items()
            out["additionalProperties"] = structural(sub, defs, defaults=defaults)
            out["maxProperties"] = _MAX_MAP_KEYS
            out.setdefault("x-kubernetes-validations", []).append({
                "rule": f"self.all(k, k.matches('{pattern}'))",
                "message": f"every key must match {pattern}"})
        elif key == "const":
            out["enum"] = [value]
        elif key == "default":
            if defaults and value is not None and not isinstance(value, (dict, list)):
                out[key] = _plain(value)
        else:
            out[key] = value
    if "enum" in out and "type" not in out:
        out["type"] = "string" if all(isinstance(v, str) for v in out["enum"]) else "number"
    if "properties" in out or "additionalProperties" in out:
        out.setdefault("type", "object")
    if "type" not in out:
        raise SchemaError(f"schema node without a type: {sorted(node)}")
    _bounds(out)
    if nullable:
        out["nullable"] = True
    return out


def model_schema(model: type[BaseModel], *, defaults: bool = True) -> Schema:
    """The structural schema of a pydantic model (wire names, i.e. aliases)."""
    return structural(model.model_json_schema(by_alias=True), defaults=defaults)


# --------------------------------------------------------------------- strategy parameters
def _bound_rule(prop: str, schema: Schema) -> str:
    """A CEL expression of one numeric property's bounds (used when strategies disagree)."""
    ref = f"self.params.{prop}"
    parts = []
    if "minimum" in schema:
        parts.append(f"{ref} {'>' if schema.get('exclusiveMinimum') else '>='} "
                     f"{schema['minimum']}")
    if "maximum" in schema:
        parts.append(f"{ref} {'<' if schema.get('exclusiveMaximum') else '<='} "
                     f"{schema['maximum']}")
    return " && ".join(parts) or "true"


def strategy_params() -> tuple[Schema, list[Rule], dict[str, list[str]]]:
    """``(params schema, CEL rules on spec.strategy, {strategy: allowed param names})``."""
    from tradefleet.workers.strategies import STRATEGIES, params_model

    per_prop: dict[str, dict[str, Schema]] = {}
    defaults: dict[str, dict[str, Any]] = {}
    allowed: dict[str, list[str]] = {}
    for name in sorted(STRATEGIES):
        model = params_model(name)
        props = model_schema(model, defaults=False).get("properties", {})
        raw = model.model_json_schema(by_alias=True).get("properties", {})
        names = list(props)
        for field_name, info in model.model_fields.items():
            # Accepted aliases (ema_allow_shorts for allow_shorts) are parameter names too.
            alias = info.validation_alias
            if isinstance(alias, AliasChoices):
                for choice in alias.choices:
                    if isinstance(choice, str) and choice not in props:
                        props[choice] = {**props[field_name], "description":
                                         f"Alias of {field_name}."}
                        names.append(choice)
        allowed[name] = names
        for prop, schema in props.items():
            per_prop.setdefault(prop, {})[name] = schema
            if prop in raw and "default" in raw[prop]:
                defaults.setdefault(prop, {})[name] = raw[prop]["default"]

    properties: Schema = {}
    rules: list[Rule] = []
    for prop in sorted(per_prop):
        by_strategy = per_prop[prop]
        bare = {n: {k: v for k, v in s.items() if k != "description"}
                for n, s in by_strategy.items()}
        first_name, first = next(iter(by_strategy.items()))
        users = ", ".join(by_strategy)
        default_text = "; ".join(f"{n}: {json.dumps(defaults[prop][n])}" for n in by_strategy
                                 if n in defaults.get(prop, {}))
        description = f"[{users}] {first.get('description', '')}".strip()
        if default_text:
            description += f" Default ({default_text})."
        if all(b == bare[first_name] for b in bare.values()):
            properties[prop] = {**first, "description": description}
            continue
        types = {s["type"] for s in by_strategy.values()}
        if len(types) != 1:
            raise SchemaError(f"strategy param {prop!r} has different types: {sorted(types)}")
        properties[prop] = {"type": types.pop(), "description": description}
        if any(s.get("nullable") for s in by_strategy.values()):
            properties[prop]["nullable"] = True
        for name, schema in by_strategy.items():
            rules.append({
                "rule": f"self.name != '{name}' || !has(self.params) || "
                        f"!has(self.params.{prop}) || ({_bound_rule(prop, schema)})",
                "message": f"params.{prop} is out of range for strategy {name}",
                "fieldPath": f".params.{prop}",
            })
    for name, names in allowed.items():
        # params is an object with properties (not a map), so CEL cannot iterate its keys:
        # the rule says that none of the other strategies' parameters is set.
        foreign = [p for p in sorted(per_prop) if p not in names]
        absent = " && ".join(f"!has(self.params.{p})" for p in foreign) or "true"
        rules.append({
            "rule": f"self.name != '{name}' || !has(self.params) || ({absent})",
            "message": f"strategy {name} takes only these params: {', '.join(names)}",
            "fieldPath": ".params",
        })
    for strategy, expression, message, field in CROSS_FIELD_RULES:
        rules.append({
            "rule": f"self.name != '{strategy}' || !has(self.params) || "
                    f"({_with_defaults(expression, defaults, strategy)})",
            "message": message,
            "fieldPath": f".params.{field}",
        })
    params = {
        "type": "object",
        "description": "Strategy parameters (seed names, snake_case). Which names a strategy "
                       "takes is checked against spec.strategy.name; omitted ones get the "
                       "strategy's defaults.",
        "properties": properties,
    }
    return params, rules, allowed


CROSS_FIELD_RULES: list[tuple[str, str, str, str]] = [
    # (strategy, expression over {param} placeholders, message, field the error names)
    ("ema_cross", "{ema_slow} > {ema_fast}", "ema_slow must be greater than ema_fast",
     "ema_slow"),
    ("donchian_breakout", "{exit_period} <= {entry_period}",
     "exit_period must not exceed entry_period", "exit_period"),
    ("mean_reversion", "{rsi_overbought} > {rsi_oversold}",
     "rsi_overbought must be greater than rsi_oversold", "rsi_overbought"),
]
"""The strategies' cross-field validators as CEL: an omitted parameter takes its default."""


def _cel_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _with_defaults(expression: str, defaults: Mapping[str, Mapping[str, Any]],
                   strategy: str) -> str:
    def one(match: re.Match[str]) -> str:
        prop = match.group(1)
        default = defaults[prop][strategy]
        return (f"(has(self.params.{prop}) ? self.params.{prop} : "
                f"{_cel_literal(default)})")

    return re.sub(r"\{(\w+)\}", one, expression)


# ---------------------------------------------------------------------------- TradingBot
def _tiers_rules(max_tiers: int) -> list[Rule]:
    ascending = " && ".join(f"(size(self) < {i + 2} || self[{i}].r < self[{i + 1}].r)"
                            for i in range(max_tiers - 1))
    total = " + ".join(f"(size(self) > {i} ? self[{i}].fraction : 0.0)"
                       for i in range(max_tiers))
    return [
        {"rule": ascending, "message": "tiers must have strictly ascending r, "
                                       "e.g. [{r: 1}, {r: 2}]"},
        {"rule": f"{total} <= 1.000000001", "message": "tier fractions add up to more than 1 "
                                                       "(the whole position)"},
    ]


def tradingbot_spec_schema() -> Schema:
    """The structural schema of ``spec`` (TradingBotSpec) with its CEL rules."""
    from tradefleet.workers.strategies import STRATEGIES

    spec = model_schema(TradingBotSpec)
    props = spec["properties"]
    props["symbols"]["x-kubernetes-list-type"] = "set"  # AfterValidator(_unique)
    tiers = props["execution"]["properties"]["tpTiers"]
    tiers["x-kubernetes-validations"] = _tiers_rules(tiers["maxItems"])
    strategy = props["strategy"]
    strategy["properties"]["name"]["enum"] = sorted(STRATEGIES)
    params, rules, _ = strategy_params()
    strategy["properties"]["params"] = params
    strategy["x-kubernetes-validations"] = rules
    spec["x-kubernetes-validations"] = [
        {"rule": "self.venue == 'exsim' || has(self.credentialsSecretRef)",
         "message": "credentialsSecretRef is required unless venue is exsim",
         "fieldPath": ".credentialsSecretRef"},
        {"rule": "self.venue != 'exsim' || self.mode == 'paper'",
         "message": "venue exsim only supports mode 'paper'", "fieldPath": ".mode"},
    ]
    return spec


def _status_schema(model: type[BaseModel]) -> Schema:
    status = model_schema(model, defaults=False)
    conditions = status["properties"]["conditions"]
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    for field in ("lastHeartbeat", "appliedAt"):
        if field in status["properties"]:
            status["properties"][field]["format"] = "date-time"
    return status


def _root(spec: Schema, status: Schema, rules: list[Rule] | None = None) -> Schema:
    root: Schema = {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }
    if rules:
        root["x-kubernetes-validations"] = rules
    return root


def _crd(kind: str, plural: str, short: str, root: Schema,
         columns: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{API_GROUP}",
                     "labels": {"app.kubernetes.io/part-of": "tradefleet"}},
        "spec": {
            "group": API_GROUP,
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural,
                      "singular": kind.lower(), "shortNames": [short],
                      "categories": ["tradefleet"]},
            "scope": "Namespaced",
            "versions": [{
                "name": API_VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": columns,
                "schema": {"openAPIV3Schema": root},
            }],
        },
    }


def tradingbot_crd() -> dict[str, Any]:
    """The TradingBot CRD (namespaced, short name ``tb``, category ``tradefleet``)."""
    root = _root(tradingbot_spec_schema(), _status_schema(TradingBotStatus), [{
        # The bot's metrics Service is named after it and Service names are DNS-1035 labels.
        "rule": "self.metadata.name.matches('^[a-z]')",
        "message": "metadata.name must start with a letter (the bot's Service takes its name)",
    }])
    root["description"] = ("A trading bot: one worker pod trading one strategy on a set of "
                           "symbols (tradefleet.api.tradingbot).")
    columns = [
        {"name": "Strategy", "type": "string", "jsonPath": ".spec.strategy.name"},
        {"name": "Symbols", "type": "string", "jsonPath": ".spec.symbols"},
        {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Position", "type": "string", "jsonPath": ".status.position"},
        {"name": "PnL", "type": "string", "jsonPath": ".status.pnl",
         "description": "Realized + unrealized PnL, USDT"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return _crd("TradingBot", "tradingbots", "tb", root, columns)


def riskpolicy_spec_schema() -> Schema:
    """The structural schema of the RiskPolicy ``spec`` with its CEL rules."""
    spec = model_schema(RiskPolicySpec)
    for field in ("correlationClusters", "capitalPools"):  # names must be unique
        spec["properties"][field]["x-kubernetes-list-type"] = "map"
        spec["properties"][field]["x-kubernetes-list-map-keys"] = ["name"]
    spec["x-kubernetes-validations"] = [
        {"rule": "self.perSymbolCapUsdt <= self.totalCapUsdt",
         "message": "perSymbolCapUsdt must not exceed totalCapUsdt",
         "fieldPath": ".perSymbolCapUsdt"},
    ]
    return spec


def riskpolicy_crd() -> dict[str, Any]:
    """The RiskPolicy CRD (namespaced, short name ``rp``, category ``tradefleet``)."""
    root = _root(riskpolicy_spec_schema(), _status_schema(RiskPolicyStatus))
    root["description"] = ("The fleet's risk rules, kill switch and allowLive "
                           "(tradefleet.api.riskpolicy); the operator writes the active one "
                           "to KV risk-policy/policy.")
    columns = [
        {"name": "KillSwitch", "type": "boolean", "jsonPath": ".spec.killSwitch"},
        {"name": "AllowLive", "type": "boolean", "jsonPath": ".spec.allowLive"},
        {"name": "TotalCap", "type": "number", "jsonPath": ".spec.totalCapUsdt"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return _crd("RiskPolicy", "riskpolicies", "rp", root, columns)


GENERATORS: dict[str, Callable[[], dict[str, Any]]] = {
    f"tradingbots.{API_GROUP}.yaml": tradingbot_crd,
    f"riskpolicies.{API_GROUP}.yaml": riskpolicy_crd,
}
"""File name in ``crds/`` -> generator. Backtest is defined with the backtester."""


def render(crd: Mapping[str, Any]) -> str:
    """The YAML text of one CRD file (header comment included)."""
    return HEADER + yaml.safe_dump(dict(crd), sort_keys=False, width=100, allow_unicode=True)


def generate(out_dir: pathlib.Path = CRD_DIR) -> dict[pathlib.Path, str]:
    """``{path: YAML text}`` of every CRD file the models generate."""
    return {out_dir / name: render(build()) for name, build in GENERATORS.items()}


def stale(out_dir: pathlib.Path = CRD_DIR) -> list[pathlib.Path]:
    """The CRD files under ``out_dir`` that are missing or differ from the models."""
    return [p for p, text in generate(out_dir).items()
            if not p.exists() or p.read_text() != text]


def main(argv: list[str] | None = None) -> int:
    """CLI: write the CRDs (default) or ``--check`` them; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m tradefleet.api.crd", description=__doc__
                                     .split("\n")[0])
    parser.add_argument("--out", default=str(CRD_DIR), help="output folder (default crds/)")
    parser.add_argument("--check", action="store_true", help="exit 1 if the files are stale")
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    if args.check:
        bad = stale(out)
        for path in bad:
            print(f"{path}: stale; run `make crds`", file=sys.stderr)
        return 1 if bad else 0
    out.mkdir(parents=True, exist_ok=True)
    for path, text in generate(out).items():
        path.write_text(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
