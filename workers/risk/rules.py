"""Pure risk rules: a CheckRequest against a RiskPolicy and the FleetState.

No I/O and no clock: ``now_ms`` comes in with the request, so the rules behave the same in
the shared service, in a bot's local checker and in the backtester. The rules are those of
the TradeBot design seed (``../shared/seeds``, §6): PortfolioGuard hard/soft caps with grace,
correlation clusters, DailyGuard (daily loss, daily drawdown, losing streak), kill switch,
capital-pool locks, and ``allow_live``.

Order of checks (first BLOCK wins, its reason is returned): kill switch, live mode, halts,
capital pool lock and cap, per-symbol cap, total cap, cluster cap and cluster count.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from decimal import Decimal

from tradefleet.api.riskpolicy import RiskPolicySpec
from tradefleet.workers.risk.protocol import CheckRequest, Decision, Outcome
from tradefleet.workers.risk.state import MAX_TRADE_IDS, FleetState, Reservation


def _cap_outcome(policy: RiskPolicySpec, state: FleetState, scope: str, after: Decimal,
                 cap: float, now_ms: int) -> tuple[Outcome, str]:
    """Classify exposure ``after`` against ``cap`` with the soft band and its grace clock."""
    cap_d = _dec(cap)
    if after <= cap_d:
        return Outcome.ALLOW, ""
    hard = cap_d * (1 + _dec(policy.soft_cap_pct))
    if after > hard:
        return Outcome.BLOCK, (f"{scope} exposure would be {after:.2f} USDT, over the cap "
                               f"{cap_d:.2f} + soft {policy.soft_cap_pct:.0%} = {hard:.2f}")
    since = state.soft_since_ms.get(scope, now_ms)
    if now_ms - since >= policy.soft_cap_grace_sec * 1000:
        return Outcome.BLOCK, (f"{scope} exposure {after:.2f} USDT has been over the cap "
                               f"{cap_d:.2f} for longer than the {policy.soft_cap_grace_sec} s grace")
    return Outcome.SOFT_ALLOW, (f"{scope} exposure {after:.2f} USDT is within the soft band over "
                                f"{cap_d:.2f}; grace ends in "
                                f"{policy.soft_cap_grace_sec - (now_ms - since) // 1000} s")


@functools.lru_cache(maxsize=1024)
def _dec(x: float) -> Decimal:
    """A policy float as the Decimal of its shortest repr (500.0 -> Decimal('500.0'))."""
    return Decimal(str(x))


def _gross(exposure: dict[str, Decimal], symbols: set[str] | None) -> Decimal:
    """Summed exposure over ``symbols`` (None = all) from ``FleetState.exposure()``."""
    if symbols is None:
        return sum(exposure.values(), Decimal(0))
    return sum((exposure[s] for s in symbols if s in exposure), Decimal(0))


def _scopes(policy: RiskPolicySpec, req: CheckRequest) -> Iterator[tuple[str, set[str] | None, float]]:
    """(scope name, symbols or None for all, cap) for every cap the request falls under."""
    yield f"symbol {req.symbol}", {req.symbol}, policy.per_symbol_cap_usdt
    yield "total", None, policy.total_cap_usdt
    for c in policy.correlation_clusters:
        if req.symbol in c.symbols and c.cap_usdt is not None:
            yield f"cluster {c.name}", set(c.symbols), c.cap_usdt


def evaluate(policy: RiskPolicySpec, state: FleetState, req: CheckRequest,
             now_ms: int | None = None) -> Decision:
    """Decide a pre-trade check and, if approved, reserve its notional in ``state``.

    ``now_ms`` (UTC ms) is the decider's clock; default the request's ``time_ms`` (a bot's
    local checker, the backtester). Returns a Decision whose reason names the limit and the
    numbers. Mutates ``state``: expires old reservations, rolls the day at 00:00 UTC, starts
    soft-cap grace clocks and adds the reservation (id = request_id, TTL =
    policy.reservation_ttl_ms).
    """
    now = req.time_ms if now_ms is None else now_ms
    state.expire(now)
    state.roll_day(now)

    def block(reason: str) -> Decision:
        return Decision(req.request_id, Outcome.BLOCK, reason)

    if policy.kill_switch:
        return block("kill switch is on: no new exposure anywhere")
    if req.mode == "live" and not policy.allow_live:
        return block("mode live is not allowed by the RiskPolicy (allowLive: false)")
    for who in (req.bot, "*"):
        if who in state.halts:
            return block(f"halted: {state.halts[who]}")
    if req.request_id in state.reservations:
        return block(f"request id {req.request_id} already holds a reservation")

    notional = req.notional_usdt
    worst, reasons, soft_scopes = Outcome.ALLOW, [], []
    if req.pool is not None:
        pool = next((p for p in policy.capital_pools if p.name == req.pool), None)
        if pool is None:
            return block(f"capital pool {req.pool!r} is not defined in the RiskPolicy")
        holder = state.locks.get(req.pool)
        if holder != req.bot:
            return block(f"capital pool {req.pool} lock is held by {holder or 'nobody'}, "
                         f"not {req.bot}")
        after = state.gross_of_bots({req.bot}) + notional
        if after > _dec(pool.cap_usdt):
            return block(f"pool {pool.name} exposure would be {after:.2f} USDT, over its cap "
                         f"{pool.cap_usdt:.2f}")

    exposure = state.exposure()
    for scope, symbols, cap in _scopes(policy, req):
        outcome, why = _cap_outcome(policy, state, scope, _gross(exposure, symbols) + notional,
                                    cap, now)
        if outcome is Outcome.BLOCK:
            return block(why)
        if outcome is Outcome.SOFT_ALLOW:
            worst = Outcome.SOFT_ALLOW
            reasons.append(why)
            soft_scopes.append(scope)

    for c in policy.correlation_clusters:
        if req.symbol in c.symbols and c.max_correlated_positions is not None:
            holders = state.holders(set(c.symbols))
            if (req.bot, req.symbol) not in holders and len(holders) >= c.max_correlated_positions:
                return block(f"cluster {c.name} already has {len(holders)} correlated positions "
                             f"(max {c.max_correlated_positions})")

    for scope in soft_scopes:
        state.soft_since_ms.setdefault(scope, now)
    expires = now + policy.reservation_ttl_ms
    state.reservations[req.request_id] = Reservation(req.bot, req.symbol, notional, expires)
    reason = "; ".join(reasons) or (
        f"within caps: {req.symbol} {exposure.get(req.symbol, Decimal(0)) + notional:.2f} / "
        f"{policy.per_symbol_cap_usdt:.2f}, total {_gross(exposure, None) + notional:.2f} / "
        f"{policy.total_cap_usdt:.2f} USDT")
    return Decision(req.request_id, worst, reason, req.request_id, expires)


def _cap_scopes(policy: RiskPolicySpec, symbols: set[str]) -> list[tuple[str, set[str] | None, float]]:
    """Every cap scope touching ``symbols``: (scope name, its symbols or None = all, cap)."""
    scopes: list[tuple[str, set[str] | None, float]] = [
        (f"symbol {s}", {s}, policy.per_symbol_cap_usdt) for s in sorted(symbols)]
    scopes.append(("total", None, policy.total_cap_usdt))
    scopes += [(f"cluster {c.name}", set(c.symbols), c.cap_usdt)
               for c in policy.correlation_clusters if c.cap_usdt is not None]
    return scopes


def _sync_soft_clocks(policy: RiskPolicySpec, state: FleetState, now_ms: int | None) -> None:
    """Stop grace clocks of scopes back under their cap; with ``now_ms``, start the clock of
    every scope now over its cap (a price move or a fill can push exposure over it without
    a check, and the grace, then auto-close, must still apply)."""
    if now_ms is None and not state.soft_since_ms:
        return  # no clock to stop, none to start
    symbols = {k.split(" ", 1)[1] for k in state.soft_since_ms if k.startswith("symbol ")}
    if now_ms is not None:
        symbols |= {s for _, s in state.positions}
    exposure = state.exposure()
    for scope, scope_symbols, cap in _cap_scopes(policy, symbols):
        if _gross(exposure, scope_symbols) <= _dec(cap):
            state.soft_since_ms.pop(scope, None)
        elif now_ms is not None:
            state.soft_since_ms.setdefault(scope, now_ms)
    known = {scope for scope, _, _ in _cap_scopes(policy, symbols)}
    for scope in [s for s in state.soft_since_ms if s not in known]:
        del state.soft_since_ms[scope]  # a cluster the new policy no longer has


def confirm(policy: RiskPolicySpec, state: FleetState, reservation_id: str,
            bot: str | None = None) -> None:
    """The bot's order for this reservation is done; its exposure now comes from positions.

    An unknown (expired or already confirmed) reservation is a no-op, so a re-sent confirm
    is harmless. Raises ValueError, changing nothing, when ``bot`` is given and the
    reservation belongs to another bot.
    """
    held = state.reservations.get(reservation_id)
    if held is not None and bot is not None and held.bot != bot:
        raise ValueError(f"field 'reservation_id': reservation {reservation_id} belongs to "
                         f"bot {held.bot}, not {bot}")
    state.reservations.pop(reservation_id, None)
    _sync_soft_clocks(policy, state, None)


def record_position(policy: RiskPolicySpec, state: FleetState, bot: str, symbol: str,
                    notional_usdt: Decimal, now_ms: int | None = None) -> None:
    """Set a bot's signed notional on a symbol, USDT (0 removes it).

    With ``now_ms`` (UTC ms) a scope the position pushes over its cap starts its soft-cap
    grace clock, so auto-close applies to exposure grown by price moves too.
    """
    if notional_usdt == 0:
        state.positions.pop((bot, symbol), None)
    else:
        state.positions[(bot, symbol)] = notional_usdt
    _sync_soft_clocks(policy, state, now_ms)


def record_trade(policy: RiskPolicySpec, state: FleetState, bot: str, pnl_usdt: Decimal,
                 equity_usdt: Decimal | None, now_ms: int,
                 trade_id: str | None = None) -> str | None:
    """Book a closed trade's net PnL into the bot's DailyGuard; returns a new halt reason.

    Halts (kept in ``state.halts`` until 00:00 UTC, surviving restarts with the state):
    daily loss beyond daily_max_loss_usdt, drawdown from the day's PnL peak beyond
    daily_max_drawdown_pct of the day's starting equity, or max_consecutive_losses losers.
    A ``trade_id`` already booked today is ignored (returns None): reports may be re-sent.
    """
    state.roll_day(now_ms)
    day = state.bot_day(bot)
    if trade_id is not None:
        if trade_id in day.trade_ids:
            return None
        day.trade_ids.append(trade_id)
        del day.trade_ids[:-MAX_TRADE_IDS]
    if day.equity_start_usdt is None and equity_usdt is not None:
        day.equity_start_usdt = equity_usdt - pnl_usdt
    day.realized_pnl_usdt += pnl_usdt
    day.peak_pnl_usdt = max(day.peak_pnl_usdt, day.realized_pnl_usdt)
    day.losing_streak = day.losing_streak + 1 if pnl_usdt < 0 else 0
    reason = None
    if policy.daily_max_loss_usdt is not None and \
            -day.realized_pnl_usdt >= Decimal(str(policy.daily_max_loss_usdt)):
        reason = (f"daily loss {-day.realized_pnl_usdt:.2f} USDT reached dailyMaxLossUsdt "
                  f"{policy.daily_max_loss_usdt:.2f}")
    elif policy.daily_max_drawdown_pct is not None and day.equity_start_usdt:
        dd_pct = (day.peak_pnl_usdt - day.realized_pnl_usdt) / day.equity_start_usdt * 100
        if dd_pct >= Decimal(str(policy.daily_max_drawdown_pct)):
            reason = (f"daily drawdown {dd_pct:.2f}% reached dailyMaxDrawdownPct "
                      f"{policy.daily_max_drawdown_pct}")
    elif policy.max_consecutive_losses is not None and \
            day.losing_streak >= policy.max_consecutive_losses:
        reason = (f"daily guard: {day.losing_streak} consecutive losses reached "
                  f"maxConsecutiveLosses {policy.max_consecutive_losses}")
    if reason is not None:  # every reason starts with "daily": roll_day lifts it at 00:00 UTC
        state.halts[bot] = reason
    return reason


def auto_close(policy: RiskPolicySpec, state: FleetState, now_ms: int) -> list[tuple[str, str, Decimal]]:
    """Notional each (bot, symbol) must close to bring exposure back under the caps.

    Seed ``compute_auto_close_qty`` (PortfolioGuard, ``auto_close`` on). A scope (symbol,
    total, cluster) is reduced back to its cap when its soft grace has run out, or at once
    when its open positions exceed the soft band cap × (1 + softCapPct) (only a price move
    can do that: checks never approve it). The excess is taken from the largest positions
    first. Returns [(bot, symbol, notional USDT to close)] sorted, empty when nothing is over.
    """
    if not policy.auto_close:
        return []
    cuts: dict[tuple[str, str], Decimal] = {}
    band = 1 + Decimal(str(policy.soft_cap_pct))
    for scope, symbols, cap in _cap_scopes(policy, {sym for _, sym in state.positions}):
        held = sorted(((abs(n) - cuts.get(k, Decimal(0)), k) for k, n in state.positions.items()
                       if symbols is None or k[1] in symbols), reverse=True)
        cap_d = Decimal(str(cap))
        excess = sum((h for h, _ in held), Decimal(0)) - cap_d
        if excess <= 0:
            continue
        since = state.soft_since_ms.get(scope)
        graced_out = since is not None and now_ms - since >= policy.soft_cap_grace_sec * 1000
        if not graced_out and excess + cap_d <= cap_d * band:
            continue
        for have, key in held:
            if excess <= 0:
                break
            take = min(have, excess)
            cuts[key] = cuts.get(key, Decimal(0)) + take
            excess -= take
    return [(b, s, n) for (b, s), n in sorted(cuts.items()) if n > 0]
