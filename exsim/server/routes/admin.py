"""Admin API (unsigned, under ``/admin``): replay control, status, reset, fault injection.

Not part of Binance's API; documented in the OpenAPI page at ``/docs``. Bodies are JSON;
a bad field gets HTTP 422 naming the field and the reason, and changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Body, HTTPException, Request
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from ..app import Exsim

__all__ = ["router"]

router = APIRouter(prefix="/admin", tags=["admin"])

MAX_STEP = 1_000_000


def _ex(request: Request) -> "Exsim":
    return request.app.state.exsim


class Speed(BaseModel):
    """Replay speed."""

    speed_bars_per_sec: float = Field(gt=0, le=1_000_000,
                                      description="1m bars (lockstep steps) per second")


class Step(BaseModel):
    """How many lockstep bars to replay now."""

    bars: int = Field(1, ge=1, le=MAX_STEP, description="number of 1m steps to replay")


class FaultSettings(BaseModel):
    """Fault injection settings; omitted fields keep their value."""

    order_reject_rate: float | None = Field(None, ge=0, le=1,
                                            description="share of new orders rejected (-2010)")
    http_429_rate: float | None = Field(None, ge=0, le=1,
                                        description="share of REST requests answered 429 (-1003)")
    http_5xx_rate: float | None = Field(None, ge=0, le=1,
                                        description="share of REST requests answered 503 (-1001)")
    latency_ms: float | None = Field(None, ge=0, le=60_000,
                                     description="delay added before every REST request (ms)")
    retry_after_s: int | None = Field(None, ge=0, le=3600,
                                      description="Retry-After header of 429 answers (s)")
    seed: int | None = Field(None, description="seed of the fault RNG (reproducible draws)")


@router.get("/status", summary="Replay and server status")
async def status(request: Request) -> dict:
    """Symbols, bars loaded and replayed, replay clock (ms and ISO), speed, running state,
    WebSocket clients, accounts and faults."""
    return _ex(request).status()


@router.post("/replay/start", summary="Start (or resume) the replay at the current speed")
async def start(request: Request) -> dict:
    ex = _ex(request)
    ex.replay.start()
    return ex.status()


@router.post("/replay/pause", summary="Pause the replay")
async def pause(request: Request) -> dict:
    ex = _ex(request)
    await ex.replay.pause()
    return ex.status()


@router.post("/replay/speed", summary="Set the replay speed in bars per second")
async def speed(request: Request, body: Speed) -> dict:
    ex = _ex(request)
    ex.replay.set_speed(body.speed_bars_per_sec)
    return ex.status()


@router.post("/replay/step", summary="Replay N bars now (lockstep, all symbols)")
async def step(request: Request, body: Step = Body(default_factory=Step)) -> dict:
    """Replays ``bars`` steps synchronously and returns the status; 409 when the data is
    exhausted before the first step."""
    ex = _ex(request)
    if ex.replay.finished:
        raise HTTPException(409, "replay finished: every recorded bar has been replayed "
                                 "(POST /admin/reset to start over)")
    done = await ex.replay.advance(body.bars)
    return {**ex.status(), "stepped": done}


@router.post("/replay", summary="Set the speed and start (the earlier ExSim's call)")
async def replay(request: Request, body: Speed) -> dict:
    ex = _ex(request)
    ex.replay.set_speed(body.speed_bars_per_sec)
    ex.replay.start()
    return ex.status()


@router.post("/reset", summary="Reset the engine and rewind the replay to the first bar")
async def reset(request: Request) -> dict:
    """Accounts back to the initial balance, no orders/positions/trades; the replay paused
    at its first bar; faults cleared; WebSocket clients stay connected."""
    ex = _ex(request)
    await ex.reset()
    return ex.status()


@router.get("/faults", summary="Current fault injection settings")
async def get_faults(request: Request) -> dict:
    return _ex(request).faults.to_dict()


@router.post("/faults", summary="Change fault injection settings")
async def set_faults(request: Request, body: FaultSettings) -> dict:
    faults = _ex(request).faults
    values = body.model_dump(exclude_unset=True)
    try:
        faults.update(values)
    except ValueError as e:
        raise HTTPException(422, str(e)) from None
    return faults.to_dict()


@router.delete("/faults", summary="Clear all faults")
async def clear_faults(request: Request) -> dict:
    faults = _ex(request).faults
    faults.clear()
    return faults.to_dict()


@router.post("/faults/drop-ws", summary="Drop every WebSocket connection now")
async def drop_ws(request: Request) -> dict:
    """Closes all market and user-data sockets (close code 1001); clients must reconnect."""
    return {"dropped": await _ex(request).hub.drop_all()}
