"""Where the risk service's RiskPolicy comes from: a YAML file and the ``risk-policy`` KV.

KV layout: bucket ``risk-policy``, key :data:`POLICY_KEY` (``policy``), value the JSON of a
whole RiskPolicy object (``{"apiVersion": ..., "kind": "RiskPolicy", "metadata": ...,
"spec": {...}}``, what the operator writes from the custom resource) or of its ``spec``
alone, camelCase as on the wire. The KV value, when present, wins over ``--policy FILE``;
the file is the fallback when the key is absent or deleted. A value that does not validate
is refused (logged and reported as a ``policy_rejected`` event) and the previous policy
stays: bad input changes no state.
"""

from __future__ import annotations

import pathlib

import orjson
from pydantic import ValidationError

from tradefleet.api.errors import describe_validation_error
from tradefleet.api.manifest import load_manifests
from tradefleet.api.riskpolicy import RiskPolicy, RiskPolicySpec

POLICY_KEY = "policy"
"""Key of the active RiskPolicy in the ``risk-policy`` KV bucket."""


def load_policy_file(path: str | pathlib.Path) -> RiskPolicySpec:
    """The spec of the one RiskPolicy in the YAML file ``path``.

    Raises ``tradefleet.api.errors.ManifestError`` (a ValueError) naming the file and each
    bad field, or ValueError when the file holds no RiskPolicy or more than one.
    """
    policies = load_manifests([path], kind="RiskPolicy")
    if len(policies) != 1:
        raise ValueError(f"{path}: expected exactly one RiskPolicy document, found {len(policies)}")
    return policies[0].spec


def parse_policy(data: bytes) -> RiskPolicySpec:
    """Parse a ``risk-policy`` KV value (a RiskPolicy object or a bare spec, JSON).

    Raises ValueError naming each bad field (``spec.totalCapUsdt: Input should be greater
    than 0 (got -1)``).
    """
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"risk-policy/{POLICY_KEY}: not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"risk-policy/{POLICY_KEY}: must be a JSON object, got {type(doc).__name__}")
    try:
        if "spec" in doc:
            return RiskPolicy.model_validate(doc).spec
        return RiskPolicySpec.model_validate(doc)
    except ValidationError as exc:
        prefix = "" if "spec" in doc else "spec"
        raise ValueError(f"risk-policy/{POLICY_KEY}: invalid RiskPolicy: "
                         + "; ".join(describe_validation_error(exc, prefix))) from None


def encode_policy(spec: RiskPolicySpec) -> bytes:
    """The JSON the KV key holds for ``spec`` (camelCase), e.g. to write it with ``kv.put``."""
    return orjson.dumps(spec.model_dump(mode="json", by_alias=True))
