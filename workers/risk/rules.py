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

from collections.abc import Iterator
from decimal import Decimal

from tradefleet.api.riskpolicy import RiskPolicySpec
from tradefleet.workers.risk.protocol import CheckRequest, Decision, Outcome
from tradefleet.workers.risk.state import FleetState, Reservation


def _cap_outcome(policy: RiskPolicySpec, state: FleetState, scope: str, after: Decimal,
                 cap: float, now_ms: int) -> tuple[Outcome, str]:
    """Classify exposure ``after`` against ``cap`` with the soft band and its grace clock."""
    cap_d = Decimal(str(cap))
    if after <= cap_d:
        return Outcome.ALLOW, ""
    hard = cap_d * (1 + Decimal(str(policy.soft_cap_pct)))
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


def _scopes(policy: RiskPolicySpec, req: CheckRequest) -> Iterator[tuple[str, set[str] | None, float]]:
    """(scope name, symbols or None for all, cap) for every cap the request falls under."""
    yield f"symbol {req.symbol}", {req.symbol}, policy.per_symbol_cap_usdt
    yield "total", None, policy.total_cap_usdt
    for c in policy.correlation_clusters:
        if req.symbol in c.symbols and c.cap_usdt is not None:
            yield f"cluster {c.name}", set(c.symbols), c.cap_usdt


def evaluate(policy: RiskPolicySpec, state: FleetState, req: CheckRequest) -> Decision:
    """Decide a pre-trade check and, if approved, reserve its notional in ``state``.

    Returns a Decision whose reason names the limit and the numbers. Mutates ``state``:
    expires old reservations, rolls the day at 00:00 UTC, starts soft-cap grace clocks and
    adds the reservation (id = request_id, TTL = policy.reservation_ttl_ms).
    """
    now = req.time_ms
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
        if after > Decimal(str(pool.cap_usdt)):
            return block(f"pool {pool.name} exposure would be {after:.2f} USDT, over its cap "
                         f"{pool.cap_usdt:.2f}")

    for scope, symbols, cap in _scopes(policy, req):
        outcome, why = _cap_outcome(policy, state, scope, state.gross(symbols) + notional, cap, now)
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
    reason = "; ".join(reasons) or (f"within caps: {req.symbol} {state.gross({req.symbol}):.2f} / "
                                    f"{policy.per_symbol_cap_usdt:.2f}, total {state.gross():.2f} / "
                                    f"{policy.total_cap_usdt:.2f} USDT")
    return Decision(req.request_id, worst, reason, req.request_id, expires)


def _clear_soft_clocks(policy: RiskPolicySpec, state: FleetState) -> None:
    """Stop grace clocks of scopes back under their cap."""
    caps = {f"symbol {s}": (policy.per_symbol_cap_usdt, {s})
            for s in {k.split(" ", 1)[1] for k in state.soft_since_ms if k.startswith("symbol ")}}
    caps["total"] = (policy.total_cap_usdt, None)
    caps.update({f"cluster {c.name}": (c.cap_usdt, set(c.symbols))
                 for c in policy.correlation_clusters if c.cap_usdt is not None})
    for scope in list(state.soft_since_ms):
        cap, symbols = caps.get(scope, (None, None))
        if cap is None or state.gross(symbols) <= Decimal(str(cap)):
            del state.soft_since_ms[scope]


def confirm(policy: RiskPolicySpec, state: FleetState, reservation_id: str) -> None:
    """The bot's order for this reservation is done; its exposure now comes from positions."""
    state.reservations.pop(reservation_id, None)
    _clear_soft_clocks(policy, state)


def record_position(policy: RiskPolicySpec, state: FleetState, bot: str, symbol: str,
                    notional_usdt: Decimal) -> None:
    """Set a bot's signed notional on a symbol (0 removes it)."""
    if notional_usdt == 0:
        state.positions.pop((bot, symbol), None)
    else:
        state.positions[(bot, symbol)] = notional_usdt
    _clear_soft_clocks(policy, state)


def record_trade(policy: RiskPolicySpec, state: FleetState, bot: str, pnl_usdt: Decimal,
                 equity_usdt: Decimal | None, now_ms: int) -> str | None:
    """Book a closed trade's net PnL into the bot's DailyGuard; returns a new halt reason.

    Halts (kept in ``state.halts`` until 00:00 UTC, surviving restarts with the state):
    daily loss beyond daily_max_loss_usdt, drawdown from the day's PnL peak beyond
    daily_max_drawdown_pct of the day's starting equity, or max_consecutive_losses losers.
    """
    state.roll_day(now_ms)
    day = state.bot_day(bot)
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

    Only scopes whose soft grace has run out are reduced (``auto_close`` on); the excess of
    a scope is taken from its largest positions first (seed ``compute_auto_close_qty``).
    Returns [(bot, symbol, notional USDT to close)], empty when nothing is over.
    """
    if not policy.auto_close:
        return []
    cuts: dict[tuple[str, str], Decimal] = {}
    scopes = [(f"symbol {s}", {s}, policy.per_symbol_cap_usdt)
              for s in {sym for _, sym in state.positions}]
    scopes.append(("total", None, policy.total_cap_usdt))
    scopes += [(f"cluster {c.name}", set(c.symbols), c.cap_usdt)
               for c in policy.correlation_clusters if c.cap_usdt is not None]
    for scope, symbols, cap in scopes:
        since = state.soft_since_ms.get(scope)
        if since is None or now_ms - since < policy.soft_cap_grace_sec * 1000:
            continue
        held = sorted(((abs(n) - cuts.get(k, Decimal(0)), k) for k, n in state.positions.items()
                       if symbols is None or k[1] in symbols), reverse=True)
        excess = sum(h for h, _ in held) - Decimal(str(cap))
        for have, key in held:
            if excess <= 0:
                break
            take = min(have, excess)
            cuts[key] = cuts.get(key, Decimal(0)) + take
            excess -= take
    return [(b, s, n) for (b, s), n in sorted(cuts.items()) if n > 0]
