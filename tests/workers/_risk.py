"""Shared pieces of the risk service tests: real NATS JetStream, services in-process.

``risk`` (fixture) gives a :class:`RiskEnv`: it starts :class:`RiskService` replicas and
:class:`RiskServiceClient` bots, each on its own NATS connection (as separate pods would
be), and stops them all after the test, before the ``bus`` fixture deletes the streams.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from nats.errors import NoRespondersError

from tradefleet.api.riskpolicy import RiskPolicySpec
from tradefleet.bus.connect import connect
from tradefleet.bus.streams import KV_RISK_POLICY
from tradefleet.workers.risk.client import RiskServiceClient
from tradefleet.workers.risk.policy import POLICY_KEY, encode_policy
from tradefleet.workers.risk.protocol import CheckRequest
from tradefleet.workers.risk.service import RiskService, ServiceSettings

T0 = 1_746_403_200_000  # 2025-05-05T00:00Z


class Clock:
    """A UTC ms clock the test moves by hand (the service's ``clock``)."""

    def __init__(self, now_ms: int = T0):
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms


async def request(nc, subject: str, payload: bytes, timeout: float = 2.0):
    """``nc.request`` retrying "no responders" for up to a second: a service's fresh
    subscription can take a few ms to reach other connections (nats-server), even after
    the service's own flush."""
    deadline = time.monotonic() + 1.0
    while True:
        try:
            return await nc.request(subject, payload, timeout=timeout)
        except NoRespondersError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.005)


def check(bot: str = "default/a", symbol: str = "BTCUSDT", notional: str = "100", **kw) -> CheckRequest:
    """A check request with a fresh id."""
    return CheckRequest(request_id=uuid.uuid4().hex, bot=bot, symbol=symbol, side="long",
                        notional_usdt=Decimal(notional), time_ms=time.time_ns() // 1_000_000, **kw)


class RiskEnv:
    def __init__(self, nats_url: str, js):
        self.nats_url = nats_url
        self.js = js
        self.services: list[RiskService] = []
        self._conns: list = []

    async def _connect(self, name: str):
        nc = await connect(self.nats_url, name=name, connect_deadline_s=10, drain_timeout=5)
        self._conns.append(nc)
        return nc

    async def service(self, policy: RiskPolicySpec | None = None, *, replica: str | None = None,
                      clock=None, settings: ServiceSettings | None = None) -> RiskService:
        replica = replica or f"r{len(self.services)}"
        svc = RiskService(await self._connect(f"risk:{replica}"), file_policy=policy,
                          replica=replica, clock=clock, settings=settings)
        await svc.start()  # stops what it started if it fails
        self.services.append(svc)
        return svc

    async def stop(self, svc: RiskService) -> None:
        await svc.stop()
        self.services.remove(svc)
        await svc.nc.drain()

    async def client(self, timeout_ms: int = 1_000) -> RiskServiceClient:
        return RiskServiceClient(await self._connect("bot"), timeout_ms=timeout_ms)

    async def put_policy(self, spec: RiskPolicySpec) -> int:
        kv = await self.js.key_value(KV_RISK_POLICY)
        return await kv.put(POLICY_KEY, encode_policy(spec))

    async def close(self) -> None:
        for svc in list(self.services):
            await svc.stop()
        for nc in self._conns:
            if nc.is_connected:
                await nc.drain()


@pytest.fixture
async def risk(nats_url, bus) -> AsyncIterator[RiskEnv]:
    env = RiskEnv(nats_url, bus)
    yield env
    await env.close()
