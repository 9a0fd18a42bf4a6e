"""Validation errors that name the file, the field and the reason."""

from __future__ import annotations

from pydantic import ValidationError


def describe_validation_error(error: ValidationError, prefix: str = "spec") -> list[str]:
    """Turn a pydantic ValidationError into one line per bad field.

    Each line reads ``spec.sizing.riskPctPerTrade: Input should be less than or equal to 5
    (got 12)``, i.e. the dotted wire path of the field, the reason, and the offending value.
    """
    lines = []
    for item in error.errors():
        path = ".".join(str(p) for p in (prefix, *item["loc"]) if p != "")
        value = item.get("input")
        shown = "" if isinstance(value, (dict, list)) or value is None else f" (got {value!r})"
        lines.append(f"{path}: {item['msg']}{shown}")
    return lines


class ManifestError(ValueError):
    """A manifest could not be loaded: carries the file and one line per bad field."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: invalid manifest\n" + "\n".join(f"  - {p}" for p in problems))
