"""Capital pools: a bot trades a pool only while it holds the pool's lock (KV ``locks``)."""

from __future__ import annotations

import asyncio

import pytest

from tradefleet.api.riskpolicy import RiskPolicySpec
from tradefleet.workers.risk.locks import LockHeld, PoolLocks
from tradefleet.workers.risk.protocol import Outcome
from tests.workers._risk import check, risk  # noqa: F401 - fixture

POOLS = RiskPolicySpec.model_validate({"capitalPools": [{"name": "mm", "capUsdt": 1000}]})


async def test_check_on_a_pool_is_blocked_until_the_bot_holds_its_lock(risk):
    await risk.service(POOLS)
    bot = await risk.client()
    blocked = await bot.check(check(pool="mm"))
    assert blocked.outcome is Outcome.BLOCK and "lock is held by nobody" in blocked.reason
    await (await PoolLocks.open(risk.js)).acquire("mm", "default/a")
    assert (await bot.check(check(pool="mm"))).outcome is Outcome.ALLOW


async def test_two_bots_acquiring_the_same_free_pool_only_one_gets_it(risk):
    locks = await PoolLocks.open(risk.js)
    results = await asyncio.gather(locks.acquire("mm", "default/a"), locks.acquire("mm", "default/b"),
                                   return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["LockHeld", "PoolLock"]


async def test_released_lock_can_be_taken_by_another_bot(risk):
    locks = await PoolLocks.open(risk.js)
    await locks.acquire("mm", "default/a")
    with pytest.raises(LockHeld, match="held by default/a"):
        await locks.acquire("mm", "default/b")
    assert await locks.release("mm", "default/a")
    assert (await locks.acquire("mm", "default/b")).holder == "default/b"


async def test_a_bot_cannot_release_a_lock_it_does_not_hold(risk):
    locks = await PoolLocks.open(risk.js)
    await locks.acquire("mm", "default/a")
    assert not await locks.release("mm", "default/b")
    assert (await locks.holder("mm")).holder == "default/a"


async def test_operator_grant_moves_the_lock_and_the_old_holder_is_blocked(risk):
    await risk.service(POOLS)
    locks = await PoolLocks.open(risk.js)
    await locks.acquire("mm", "default/a")
    await locks.grant("mm", "default/b")
    bot = await risk.client()
    assert (await bot.check(check(bot="default/a", pool="mm"))).outcome is Outcome.BLOCK
    assert (await bot.check(check(bot="default/b", pool="mm"))).outcome is Outcome.ALLOW
