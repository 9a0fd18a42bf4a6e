"""The replay clock: steps all symbols one recorded 1m bar at a time, in lockstep.

One step at timeline entry ``t`` (a kline open time, ms UTC), for each symbol:

1. funding events recorded in ``[t, t + 1m)`` are settled first (``Engine.apply_funding``)
   with the recorded rate and the 8h mark-price kline's open at that hour (the mark at the
   funding time; falls back to the last close) — funding happens at 00:00/08:00/16:00 UTC,
   before that minute's price path;
2. the bar goes to the engine (``Engine.on_bar``: triggers and fills along the engine's
   intra-bar path O→L→H→C or O→H→L→C, stamped at open, +1/3, +2/3 and close of the
   minute; the mark price follows that path and ends at the close);
3. the closed kline (``k.x = true``, plus forming updates of longer intervals), the mark
   price and the book ticker are published on the WebSocket streams.

After the step the replay clock is ``t + 60000`` (the bar's close time + 1 ms): REST klines
show only bars with ``close_time <`` clock (no look-ahead), and orders placed before the
next step are stamped with this clock. Steps run either on demand (:meth:`Replay.advance`,
admin API) or from a background task at ``speed`` bars per second; both wait for slow
WebSocket readers rather than flood them (see :meth:`StreamHub.drain`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from decimal import Decimal

from ..engine import Engine
from .data import BAR_MS, MarketData
from .hub import StreamHub
from .klines import INTERVAL_MS, bar_at, kline_event
from .streams import book_ticker_event, mark_price_event

__all__ = ["Replay", "SymbolState", "FUNDING_INTERVAL_MS", "next_funding_time"]

log = logging.getLogger("tradefleet.exsim.replay")

FUNDING_INTERVAL_MS = 8 * 3600 * 1000
#: Longest catch-up burst of the background task before yielding to the event loop.
MAX_BURST = 500


def next_funding_time(clock_ms: int) -> int:
    """The next 00:00/08:00/16:00 UTC funding time strictly after ``clock_ms`` (ms)."""
    return (clock_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS


@dataclass(slots=True)
class SymbolState:
    """What the market looks like for one symbol at the replay clock.

    ``last_index`` is the index of the newest replayed 1m kline (-1 before the first);
    ``last_price`` its close (USDT, CSV text); ``funding_rate`` the last settled rate (text).
    """

    cursor: int = 0
    last_index: int = -1
    last_price: str | None = None
    funding_rate: str = "0.00000000"
    funding_time: int = 0


class Replay:
    """Lockstep replay of :class:`MarketData` into an :class:`Engine`, publishing to a hub."""

    def __init__(self, data: MarketData, engine: Engine, hub: StreamHub,
                 speed: float = 20.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0 bars per second, got {speed}")
        self.data = data
        self.engine = engine
        self.hub = hub
        self.speed = float(speed)
        self.position = 0              # index of the next timeline entry to replay
        self.bars_replayed = 0         # klines fed to the engine, all symbols
        self.state = {s: SymbolState() for s in data.symbols}
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._init_funding()

    # -- clock --------------------------------------------------------------------------
    @property
    def clock_ms(self) -> int:
        """Replay time in ms UTC: close of the last replayed bar + 1 ms (start of data before)."""
        if self.position == 0:
            return self.data.timeline[0] if self.data.timeline else 0
        return self.data.timeline[self.position - 1] + BAR_MS

    @property
    def steps_total(self) -> int:
        """Number of lockstep steps in the data."""
        return len(self.data.timeline)

    @property
    def finished(self) -> bool:
        """True when every recorded bar has been replayed."""
        return self.position >= len(self.data.timeline)

    @property
    def running(self) -> bool:
        """True while the background task replays at ``speed``."""
        return self._task is not None and not self._task.done()

    def prime(self) -> None:
        """Give the engine each symbol's price at the replay clock before any step: the
        first bar's open (known at its open time), so orders can be placed at once."""
        for sym, sd in self.data.symbols.items():
            if sd.kline_times:
                first = sd.kline(0)
                self.engine.set_price(sym, first.open, first.open_time)

    def _init_funding(self) -> None:
        start = self.clock_ms
        for sym, sd in self.data.symbols.items():
            last = sd.funding_at_or_before(start - 1)
            if last is not None:
                st = self.state[sym]
                st.funding_time, rate = last
                st.funding_rate = f"{rate:.8f}"

    # -- stepping -----------------------------------------------------------------------
    def step(self, n: int = 1) -> int:
        """Replay up to ``n`` steps now (synchronously); returns how many were replayed."""
        done = 0
        while done < n and not self.finished:
            self._step_one()
            done += 1
        return done

    async def advance(self, n: int = 1) -> int:
        """Replay up to ``n`` steps, pacing to the WebSocket clients: when a client has too
        many frames queued the replay waits for it to drain (and drops it if it does not
        within the hub's timeout). Yields to the event loop every 256 steps so REST requests
        stay served during long steps. Returns how many steps were replayed."""
        done = 0
        while done < n and not self.finished:
            self._step_one()
            done += 1
            if self.hub.clients and self.hub.congested():
                await self.hub.drain()
            elif done % 256 == 0:
                await asyncio.sleep(0)
        return done

    def _step_one(self) -> None:
        t = self.data.timeline[self.position]
        close_time = t + BAR_MS - 1
        clock = t + BAR_MS
        engine = self.engine
        due: list[tuple[str, int]] = []
        for sym, sd in self.data.symbols.items():
            st = self.state[sym]
            if st.cursor < len(sd.kline_times) and sd.kline_times[st.cursor] == t:
                due.append((sym, st.cursor))
            # else: this symbol has no bar at t (a gap) and sits this step out
        # Funding first, for every symbol: it settles on the hour, before the minute's path.
        for sym, _ in due:
            sd, st = self.data.symbols[sym], self.state[sym]
            for ft, rate in sd.funding_between(t, t + BAR_MS):
                mark = sd.mark_open_at(ft - ft % 3_600_000)
                if mark is None and st.last_price is not None:
                    mark = Decimal(st.last_price)
                if mark is not None:
                    engine.apply_funding(sym, rate, mark, ft)
                st.funding_rate = f"{rate:.8f}"
                st.funding_time = ft
        for sym, i in due:
            sd, st = self.data.symbols[sym], self.state[sym]
            k = sd.kline(i)
            # No separate mark feed: the engine's mark follows the trade path (the recording
            # has no 1m mark series), so MARK_PRICE triggers fire intra-bar like contract ones.
            engine.on_bar(sym, k.open_time, k.open, k.high, k.low, k.close, k.close_time)
            st.cursor = i + 1
            st.last_index = i
            st.last_price = k.close
        self.position += 1
        self.bars_replayed += len(due)
        if self.hub.clients:
            self._publish(due, clock, close_time)

    def _publish(self, fed: list[tuple[str, int]], clock: int, close_time: int) -> None:
        hub = self.hub
        next_funding = next_funding_time(close_time)
        mark_all: list[dict] = []
        book_all_wanted = hub.wants("!bookTicker")
        mark_all_wanted = hub.wants("!markPrice@arr") or hub.wants("!markPrice@arr@1s")
        for sym, i in fed:
            sd = self.data.symbols[sym]
            low = sym.lower()
            for interval, iv_ms in INTERVAL_MS.items():
                name = f"{low}@kline_{interval}"
                if hub.wants(name):
                    hub.publish(name, kline_event(sym, interval, bar_at(sd, iv_ms, i), clock))
            st = self.state[sym]
            mark_name, mark_1s = f"{low}@markPrice", f"{low}@markPrice@1s"
            if hub.wants(mark_name) or hub.wants(mark_1s) or mark_all_wanted:
                event = mark_price_event(sym, f"{Decimal(st.last_price):.8f}", st.funding_rate,
                                         next_funding, clock)
                hub.publish(mark_name, event)
                hub.publish(mark_1s, event)
                mark_all.append(event)
            book_name = f"{low}@bookTicker"
            if hub.wants(book_name) or book_all_wanted:
                event = book_ticker_event(self.engine.book_ticker(sym), clock)
                hub.publish(book_name, event)
                hub.publish("!bookTicker", event)
        if mark_all:
            hub.publish("!markPrice@arr", mark_all)
            hub.publish("!markPrice@arr@1s", mark_all)

    # -- background replay --------------------------------------------------------------
    def start(self) -> None:
        """Replay in the background at ``speed`` bars per second until paused or finished."""
        if self.running or self.finished:
            return
        self._task = asyncio.get_running_loop().create_task(self._run(), name="exsim-replay")

    async def pause(self) -> None:
        """Stop the background replay after the current step."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def set_speed(self, speed: float) -> None:
        """Change the replay speed (bars per second, > 0); takes effect at once."""
        if not speed > 0:
            raise ValueError(f"speed must be > 0 bars per second, got {speed}")
        self.speed = float(speed)
        self._wake.set()

    async def _run(self) -> None:
        # Steps are scheduled against the wall clock so high speeds catch up in bursts
        # instead of sleeping per bar; a speed change restarts the schedule.
        try:
            while not self.finished:
                speed = self.speed
                t0, done = time.monotonic(), 0
                self._wake.clear()
                while not self.finished and not self._wake.is_set():
                    if (time.monotonic() - t0) * speed - done > max(speed, 1.0):
                        # More than a second behind (e.g. waiting for a slow reader): drop
                        # the backlog rather than burst through it.
                        t0 = time.monotonic() - done / speed
                    due = int((time.monotonic() - t0) * speed) + 1 - done
                    if due > 0:
                        done += await self.advance(min(due, MAX_BURST))
                    wait = (done / speed) - (time.monotonic() - t0)
                    if wait > 0:
                        with contextlib.suppress(asyncio.TimeoutError):
                            await asyncio.wait_for(self._wake.wait(), timeout=wait)
                    else:
                        await asyncio.sleep(0)
            log.info("replay finished", extra={"bars_replayed": self.bars_replayed})
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("replay stopped by an error")
            raise

    async def reset(self) -> None:
        """Pause and rewind to the first bar (the engine is reset by the caller)."""
        await self.pause()
        self.position = 0
        self.bars_replayed = 0
        self.state = {s: SymbolState() for s in self.data.symbols}
        self._init_funding()
