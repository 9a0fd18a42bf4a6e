"""The distribution ships every package folder, mapped onto the tradefleet namespace."""

import importlib
import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
MAPPING = {"tradefleet": "tradefleet", "exsim": "tradefleet.exsim",
           "workers": "tradefleet.workers", "operator": "tradefleet.operator"}


def _package_folders() -> set[str]:
    names = set()
    for folder, dotted in MAPPING.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            names.add(".".join((dotted, *rel)))
    return names


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    missing = _package_folders() - listed
    assert not missing, f"add these to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"


def test_operator_folder_does_not_shadow_stdlib_operator():
    import operator

    assert hasattr(operator, "itemgetter")
    assert importlib.import_module("tradefleet.operator").__file__.startswith(str(ROOT / "operator"))
