"""One self-contained HTML page: summary tables, equity curves and drawdown plots.

Plots are matplotlib PNGs embedded as base64, so the page opens from disk, from a CI
artifact or from a ConfigMap without any server or JavaScript.
"""

from __future__ import annotations

import base64
import html
import io

import matplotlib

matplotlib.use("Agg")  # headless: reports are written by CI and pods, never shown on screen
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from tradefleet.report.stats import drawdown_series  # noqa: E402

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
h1{margin-bottom:.2rem}.muted{color:#777}img{max-width:100%}
"""


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def plot_equity_and_drawdown(curves: dict[str, pd.Series]) -> str:
    """PNG (data URL): each curve's PnL (equity minus its start, USDT) above its drawdown (%).

    PnL rather than equity keeps a fleet total and its bots readable on one axis.
    """
    fig, (ax_eq, ax_dd) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True,
                                       gridspec_kw={"height_ratios": [2, 1]})
    for name, eq in curves.items():
        if len(eq):
            width = 2.0 if name == "fleet" else 1.1
            ax_eq.plot(eq.index, eq.values - eq.iloc[0], label=name, linewidth=width)
            ax_dd.plot(eq.index, drawdown_series(eq).values * 100, label=name, linewidth=width)
    ax_eq.axhline(0, color="#999", linewidth=0.8)
    ax_eq.set_ylabel("PnL (USDT)")
    ax_eq.legend(loc="upper left", fontsize=8)
    ax_eq.grid(alpha=0.3)
    ax_dd.set_ylabel("drawdown (%)")
    ax_dd.grid(alpha=0.3)
    fig.autofmt_xdate()
    return _png(fig)


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:,.4f}"
    return html.escape("—" if v is None else str(v))


def table(rows: list[dict], columns: list[str]) -> str:
    """An HTML table of ``rows`` (dicts) with the given column keys as header."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(c))}</td>" for c in columns) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_page(title: str, subtitle: str, sections: list[tuple[str, str]]) -> str:
    """Assemble the page from (heading, html fragment) sections."""
    parts = [f"<h2>{html.escape(h)}</h2>{frag}" for h, frag in sections]
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p class='muted'>{html.escape(subtitle)}</p>{''.join(parts)}</body></html>")
