"""What the API server does with a custom object, done in Python for the CRD tests.

``ApiServerValidator(crd).errors(obj)`` mirrors the apiextensions pipeline for one object:
defaulting from the schema, OpenAPI v3 validation with *strict* field validation (kubectl's
default: an unknown field is an error naming it), ``x-kubernetes-list-type`` set/map
uniqueness, and the ``x-kubernetes-validations`` CEL rules (evaluated with cel-python, with
numbers typed as the schema says, as the API server does). Each error reads
``spec.sizing.riskPctPerTrade: <reason>``.

``structural_problems(schema)`` lists what makes a schema non-structural (Kubernetes
"Specifying a structural schema"): nodes without a type, ``$ref``, unions with types in
branches, ``additionalProperties`` next to ``properties``, ``uniqueItems``, ``patternProperties``,
JSON-Schema-2020 numeric exclusive bounds.
"""

from __future__ import annotations

import copy
from typing import Any

import celpy
import jsonschema

Schema = dict[str, Any]
_ENV = celpy.Environment()


def structural_problems(node: Schema, path: str = "") -> list[str]:
    problems = []
    for bad in ("$ref", "$defs", "definitions", "patternProperties", "dependencies", "const"):
        if bad in node:
            problems.append(f"{path or '.'}: {bad} is not allowed")
    for union in ("anyOf", "oneOf", "allOf"):
        for branch in node.get(union, []):
            if "type" in branch or "nullable" in branch or "default" in branch:
                problems.append(f"{path}: {union} branch with type/nullable/default")
    if node.get("uniqueItems"):
        problems.append(f"{path}: uniqueItems is not allowed in CRDs")
    if "properties" in node and "additionalProperties" in node:
        problems.append(f"{path}: additionalProperties next to properties")
    if "type" not in node and not node.get("x-kubernetes-int-or-string") \
            and not node.get("x-kubernetes-preserve-unknown-fields"):
        problems.append(f"{path}: no type")
    if node.get("type") == "null" or isinstance(node.get("type"), list):
        problems.append(f"{path}: type must be one name (use nullable)")
    for excl in ("exclusiveMinimum", "exclusiveMaximum"):
        if excl in node and not isinstance(node[excl], bool):
            problems.append(f"{path}: {excl} must be a boolean in OpenAPI v3.0")
    for name, sub in node.get("properties", {}).items():
        problems += structural_problems(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        problems += structural_problems(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        problems += structural_problems(node["additionalProperties"], f"{path}{{}}")
    return problems


def _strict(node: Schema) -> Schema:
    """The schema as Draft 4 JSON Schema with unknown fields refused (strict validation)."""
    out = {k: v for k, v in node.items() if not k.startswith("x-kubernetes")
           and k not in ("nullable", "properties", "items", "additionalProperties", "format")}
    if node.get("nullable"):
        out["type"] = [node["type"], "null"]
    if "properties" in node:
        out["properties"] = {k: _strict(v) for k, v in node["properties"].items()}
        out["additionalProperties"] = False
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _strict(node["additionalProperties"])
    if "items" in node:
        out["items"] = _strict(node["items"])
    if node.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    if node.get("nullable") and "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


def _path(parts) -> str:
    text = ""
    for p in parts:
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else str(p))
    return text


class ApiServerValidator:
    """Validate objects against one CRD's ``openAPIV3Schema`` as the API server would."""

    def __init__(self, crd: dict[str, Any]):
        self.schema: Schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        self._json = jsonschema.Draft4Validator(_strict(self.schema))
        self._programs: dict[str, Any] = {}

    # -- defaulting (apiextensions: defaults apply when a field is absent) ----------------
    def defaulted(self, obj: Any) -> Any:
        obj = copy.deepcopy(obj)
        self._default(self.schema, obj)
        return obj

    def _default(self, node: Schema, value: Any) -> None:
        if isinstance(value, dict):
            for name, sub in node.get("properties", {}).items():
                if name not in value and "default" in sub:
                    value[name] = copy.deepcopy(sub["default"])
                if name in value:
                    self._default(sub, value[name])
            extra = node.get("additionalProperties")
            if isinstance(extra, dict):
                for v in value.values():
                    self._default(extra, v)
        elif isinstance(value, list) and isinstance(node.get("items"), dict):
            for item in value:
                self._default(node["items"], item)

    # -- CEL --------------------------------------------------------------------------------
    def _typed(self, node: Schema, value: Any) -> Any:
        """JSON value with numbers as the schema types them (number -> double)."""
        if value is None:
            return None
        kind = node.get("type")
        if kind == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind == "object" and isinstance(value, dict):
            props, extra = node.get("properties", {}), node.get("additionalProperties")
            return {k: self._typed(props.get(k) or (extra if isinstance(extra, dict) else {}), v)
                    for k, v in value.items()}
        if kind == "array" and isinstance(value, list):
            return [self._typed(node.get("items", {}), v) for v in value]
        return value

    def _cel(self, node: Schema, value: Any, path: str, out: list[str]) -> None:
        if value is None:
            return
        for rule in node.get("x-kubernetes-validations", []):
            program = self._programs.get(rule["rule"])
            if program is None:
                program = self._programs[rule["rule"]] = _ENV.program(_ENV.compile(rule["rule"]))
            result = program.evaluate({"self": celpy.json_to_cel(self._typed(node, value))})
            if result is not True and not (isinstance(result, celpy.celtypes.BoolType)
                                           and bool(result)):
                where = f"{path}{rule.get('fieldPath', '')}" or "<root>"
                out.append(f"{where}: {rule['message']}")
        if node.get("x-kubernetes-list-type") == "map" and isinstance(value, list):
            keys = node["x-kubernetes-list-map-keys"]
            seen = set()
            for i, item in enumerate(value):
                key = tuple(item.get(k) for k in keys)
                if key in seen:
                    out.append(f"{path}[{i}]: Duplicate value: {dict(zip(keys, key))}")
                seen.add(key)
        if isinstance(value, dict):
            for name, sub in node.get("properties", {}).items():
                if name in value:
                    self._cel(sub, value[name], f"{path}.{name}" if path else name, out)
            extra = node.get("additionalProperties")
            if isinstance(extra, dict):
                for k, v in value.items():
                    self._cel(extra, v, f"{path}.{k}", out)
        elif isinstance(value, list) and isinstance(node.get("items"), dict):
            for i, item in enumerate(value):
                self._cel(node["items"], item, f"{path}[{i}]", out)

    def errors(self, obj: dict[str, Any]) -> list[str]:
        """Every error for ``obj`` as ``field.path: reason``; empty when it would be stored."""
        obj = self.defaulted(obj)
        out = [f"{_path(e.absolute_path) or '<root>'}: {e.message}"
               for e in sorted(self._json.iter_errors(obj), key=lambda e: list(e.path))]
        if not out:  # the API server runs CEL only on schema-valid objects
            self._cel(self.schema, obj, "", out)
        return out
