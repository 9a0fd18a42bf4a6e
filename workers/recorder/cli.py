"""Command-line flags of ``tradefleet recorder`` -> :class:`RecorderConfig`."""

from __future__ import annotations

import pathlib
from typing import Any

import yaml
from pydantic import ValidationError

from tradefleet.workers.recorder.config import RecorderConfig


def build_config(*, bus_config: str | None = None, **flags: Any) -> RecorderConfig:
    """Validate the flags (``None`` = default) into a config; ``bus_config`` is a YAML/JSON
    file of stream limits. Raises ``ValueError`` naming each bad field, or when no database
    URL is given (flag or ``DATABASE_URL``)."""
    values = {k: v for k, v in flags.items() if v is not None}
    if bus_config:
        try:
            values["bus"] = yaml.safe_load(pathlib.Path(bus_config).read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ValueError(f"--bus-config: cannot read {bus_config}: {e}") from None
    try:
        config = RecorderConfig.model_validate(values)
    except ValidationError as e:
        raise ValueError("; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
            for err in e.errors())) from None
    config.resolved_database_url()  # fail now, not after connecting to NATS
    return config
