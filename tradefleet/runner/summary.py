"""Print the fleet report's table at the end of ``tradefleet run``."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _num(x) -> str:
    return "—" if x is None else f"{x:.2f}"


def print_summary(report: dict) -> None:
    """A rich table: one row per bot and the total, with the reconciliation verdict."""
    table = Table(title=f"fleet report · {report['run_id']}", expand=False)
    for col in ("bot", "trades", "win rate", "realized", "unrealized", "fees", "funding",
                "net", "max DD", "Sharpe", "Sortino", "risk allow/soft/block", "reconciled"):
        table.add_column(col, justify="left" if col == "bot" else "right")
    for row in [*report["bots"], {"bot": "total", **report["total"]}]:
        rd = row["risk_decisions"]
        ok = row.get("reconciliation", {}).get("ok", row.get("reconciled"))
        table.add_row(row["bot"], str(row["trades"]), _pct(row["win_rate"]),
                      f"{float(row['realized_pnl_usdt']):+.2f}",
                      f"{float(row['unrealized_pnl_usdt']):+.2f}",
                      f"{float(row['fees_usdt']):.2f}", f"{float(row['funding_usdt']):+.2f}",
                      f"{float(row['net_pnl_usdt']):+.2f}", _pct(row["max_drawdown"]),
                      _num(row["sharpe"]), _num(row["sortino"]),
                      f"{rd['allow']}/{rd['soft_allow']}/{rd['block']}",
                      "yes" if ok else "NO")
    console = Console()
    if not console.is_terminal:  # CI logs and pipes: wide enough that no column is cut
        console = Console(width=200)
    console.print(table)
    console.print(f"report: {report['out']}/report.html · {report['out']}/report.json")
