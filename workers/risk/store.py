"""The fleet's risk state in the JetStream KV bucket ``risk-state``, compare-and-set.

KV layout: bucket ``risk-state``, key :data:`STATE_KEY` (``fleet``), value the JSON of
:meth:`FleetState.to_dict` (positions, reservations, soft-cap clocks, daily guards, halts,
known bots). One key on purpose: a decision reads several parts of the state (symbol,
total, cluster, pool), and NATS KV has no multi-key transaction, so the whole state moves
as one value and every write names the revision it was computed from
(``Nats-Expected-Last-Subject-Sequence``). A writer that lost a race gets
:class:`StateConflict` and must re-read and re-decide: no two replicas can both hand out
the last room. The value stays small (open positions and live reservations, not history).
"""

from __future__ import annotations

from typing import Any

import orjson
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from tradefleet.bus.streams import KV_RISK_STATE
from tradefleet.workers.risk.state import FleetState

STATE_KEY = "fleet"
"""Key of the whole FleetState in the ``risk-state`` bucket."""


class StateConflict(RuntimeError):
    """Another writer changed the state since the revision this write was based on."""


class StateStore:
    """Load and compare-and-set the FleetState; ``kv`` is the ``risk-state`` KeyValue."""

    def __init__(self, kv: Any):
        self.kv = kv

    @classmethod
    async def open(cls, js: Any) -> "StateStore":
        """The store on bucket ``risk-state`` of JetStream context ``js`` (after ``ensure_kv``)."""
        return cls(await js.key_value(KV_RISK_STATE))

    async def load(self) -> tuple[FleetState, int]:
        """``(state, revision)``; an empty state and the revision to write after (0 when the
        key never existed, the delete marker's revision when it was deleted)."""
        try:
            entry = await self.kv.get(STATE_KEY)
        except KeyNotFoundError as exc:
            marker = getattr(exc, "entry", None)
            return FleetState(), (marker.revision if marker is not None else 0) or 0
        return FleetState.from_dict(orjson.loads(entry.value)), entry.revision

    @staticmethod
    def encode(state: FleetState) -> bytes:
        """The KV value for ``state``."""
        return orjson.dumps(state.to_dict())

    async def save(self, value: bytes, last_revision: int) -> int:
        """Write ``value`` if the key is still at ``last_revision``; return the new revision.

        Raises :class:`StateConflict` when it is not (re-load and re-decide), or the nats-py
        error (timeout, no JetStream) when the write could not be made; after such an error
        the outcome is unknown and the caller must re-load before deciding again.
        """
        try:
            return await self.kv.update(STATE_KEY, value, last=last_revision)
        except KeyWrongLastSequenceError as exc:
            raise StateConflict(f"risk-state/{STATE_KEY} moved past revision {last_revision}: "
                                f"{exc.description}") from None
