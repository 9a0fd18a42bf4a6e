"""The ``tradefleet`` console script: one entrypoint per component (the pods run the same).

Each command is a thin shim that imports its component lazily, so ``tradefleet --help``
stays fast and a component's dependencies load only when it runs.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="tradefleet",
    help="Kubernetes-native fleet of crypto trading bots for perpetual futures.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _main() -> None:
    """tradefleet components and tools."""


if __name__ == "__main__":  # pragma: no cover
    app()
