"""The live terminal view of a local run: replay clock, bars/s, and every bot's state.

Bot rows come from the bots' own status and heartbeat messages on
``fleet.{namespace}.{bot}.status|heartbeat`` (the same messages the operator turns into
TradingBot status), the replay line from exsim's admin status. On a terminal it is a rich
Live table; elsewhere (CI, a pipe) a progress line every 10 s.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
import time

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from tradefleet.bus import codec
from tradefleet.bus.fleet_messages import StatusMsg


def _utc(ms: int | None) -> str:
    if not ms:
        return "—"
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


class LiveView:
    """Async context manager drawing the run's progress until it exits."""

    def __init__(self, fleet, nc, enabled: bool = True):
        self.fleet = fleet
        self.nc = nc
        self.console = Console(stderr=True)
        self.enabled = enabled and self.console.is_terminal
        self.status: dict = {}
        self.bots: dict[str, StatusMsg] = {}
        self.events: list[str] = []
        self._subs = []
        self._live: Live | None = None
        self._rate: tuple[float, int] | None = None
        self._bars_per_s = 0.0
        self._last_line = 0.0

    async def __aenter__(self) -> "LiveView":
        for kind in ("status", "heartbeat"):
            self._subs.append(await self.nc.subscribe(f"fleet.*.*.{kind}", cb=self._on_status))
        if self.enabled:
            self._live = Live(self._render(), console=self.console, refresh_per_second=4,
                              transient=False)
            self._live.__enter__()
        return self

    async def __aexit__(self, *exc) -> None:
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(None, None, None)
        else:
            self._print_line(force=True)

    async def _on_status(self, msg) -> None:
        try:
            status = codec.decode(msg.data, subject=msg.subject, model=StatusMsg)
        except codec.DecodeError:
            return  # the recorder dead-letters malformed messages; the view just skips them
        self.bots[f"{status.namespace}/{status.bot}"] = status
        self._refresh()

    def replay_status(self, status: dict) -> None:
        """Called by the runner after each step (or poll) with exsim's admin status."""
        now = time.monotonic()
        done = status.get("steps_replayed", 0)
        if self._rate is None:
            self._rate = (now, done)
        elif now - self._rate[0] >= 1.0:
            self._bars_per_s = (done - self._rate[1]) / (now - self._rate[0])
            self._rate = (now, done)
        self.status = status
        self._refresh()

    def component_event(self, what: str, name: str, restarts: int) -> None:
        self.events.append(f"{dt.datetime.now().strftime('%H:%M:%S')} {name}: {what}"
                           + (f" (restart {restarts})" if restarts else ""))
        self.events = self.events[-5:]
        self._refresh()

    def note(self, text: str) -> None:
        self.component_event(text, "run", 0)

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())
        else:
            self._print_line()

    def _print_line(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_line < 10:
            return
        self._last_line = now
        s = self.status
        pnl = sum(float(b.realized_pnl) + float(b.unrealized_pnl) for b in self.bots.values())
        print(f"[run] clock {_utc(s.get('replay_clock'))} · bars {s.get('steps_replayed', 0)}"
              f"/{s.get('steps_total', '?')} · {self._bars_per_s:.0f} bars/s · "
              f"bots {len(self.bots)} · PnL {pnl:+.2f} USDT", file=sys.stderr, flush=True)

    def _render(self) -> Group:
        s = self.status
        total, done = s.get("steps_total") or 0, s.get("steps_replayed") or 0
        head = Text.assemble(
            ("tradefleet run ", "bold"), (f"{self.fleet.run_id}  ", "dim"),
            f"replay clock {_utc(s.get('replay_clock'))}  ",
            f"bars {done}/{total} ({100 * done / total if total else 0:.1f}%)  ",
            f"{self._bars_per_s:.0f} bars/s")
        table = Table(expand=True)
        for col in ("bot", "strategy", "phase", "position", "orders", "fills",
                    "realized", "unrealized", "last bar"):
            table.add_column(col, justify="right" if col in ("orders", "fills", "realized",
                                                             "unrealized") else "left")
        for rt in self.fleet.bots:
            b = self.bots.get(rt.key)
            if b is None:
                table.add_row(rt.key, rt.bot.spec.strategy.name, "Pending", "", "", "", "", "", "")
                continue
            pos = ", ".join(f"{p.symbol} {p.side} {p.qty}" for p in b.positions
                            if p.side != "flat") or "flat"
            last = max(b.last_bar_close_ms.values(), default=None)
            table.add_row(rt.key, b.strategy, b.phase.value, pos, str(b.counters.orders),
                          str(b.counters.fills), f"{float(b.realized_pnl):+.2f}",
                          f"{float(b.unrealized_pnl):+.2f}", _utc(last))
        return Group(head, table, Text("\n".join(self.events), style="dim"))
