"""Load TradingBot manifests from YAML files or folders (the files users ``kubectl apply``)."""

from __future__ import annotations

import pathlib
from collections.abc import Iterable

import yaml
from pydantic import ValidationError

from tradefleet.api.errors import ManifestError, describe_validation_error
from tradefleet.api.riskpolicy import RiskPolicy
from tradefleet.api.tradingbot import TradingBot

MODELS = {"TradingBot": TradingBot, "RiskPolicy": RiskPolicy}

# Kinds a fleet folder may hold besides TradingBot; loaders for them are registered by kind.
KNOWN_KINDS = {"TradingBot", "RiskPolicy", "Backtest"}


def load_manifest_file(path: str | pathlib.Path) -> list[dict]:
    """Parse every YAML document of ``path``; returns the raw dicts.

    Raises ManifestError naming the file when the YAML does not parse or a document is not
    a mapping with ``kind``.
    """
    path = pathlib.Path(path)
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except (OSError, yaml.YAMLError) as exc:
        raise ManifestError(str(path), [f"cannot read YAML: {exc}"]) from None
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict) or "kind" not in doc:
            raise ManifestError(f"{path}[{i}]", ["document is not a Kubernetes object (no kind)"])
        if doc["kind"] not in KNOWN_KINDS:
            raise ManifestError(f"{path}[{i}]", [f"kind: unknown kind {doc['kind']!r}"])
    return docs


def _files(paths: Iterable[str | pathlib.Path]) -> list[pathlib.Path]:
    out: list[pathlib.Path] = []
    for p in map(pathlib.Path, paths):
        if p.is_dir():
            out.extend(sorted([*p.glob("*.yaml"), *p.glob("*.yml")]))
        elif p.exists():
            out.append(p)
        else:
            raise ManifestError(str(p), ["no such file or directory"])
    return out


def load_manifests(paths: Iterable[str | pathlib.Path], kind: str = "TradingBot") -> list:
    """Load and validate every ``kind`` document under ``paths`` (files or folders).

    ``kind`` is TradingBot or RiskPolicy. Returns the models in file order. Raises ManifestError for the first file with a bad
    document, listing every bad field as ``spec.field: reason (got value)``; also when two
    bots share ``namespace/name``.
    """
    model = MODELS[kind]
    bots: list = []
    seen: dict[str, str] = {}
    for path in _files(paths):
        for i, doc in enumerate(load_manifest_file(path)):
            if doc["kind"] != kind:
                continue
            name = (doc.get("metadata") or {}).get("name", f"document {i}")
            try:
                bot = model.model_validate(doc)
            except ValidationError as exc:
                raise ManifestError(f"{path} ({kind} {name})", describe_validation_error(exc, "")) from None
            key = f"{bot.metadata.namespace}/{bot.metadata.name}"
            if key in seen:
                raise ManifestError(str(path), [f"metadata.name: {key} already defined in {seen[key]}"])
            seen[key] = str(path)
            bots.append(bot)
    return bots
