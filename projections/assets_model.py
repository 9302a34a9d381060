"""The asset recovery read model: its ledger tables, how a batch updates them, and its query."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID

from projections.assets import (
    CONFISCATED,
    EVENT_TYPES,
    NAME,
    REINVESTED,
    RELEASED,
    SEIZED,
    AssetLedgerBatch,
    CaseState,
    Movement,
)
from projections.base import Projection, Recorded
from projections.statistics import PERIOD_KINDS
from projections.store import ViewTransaction
from service.areas import AreaCatalog

GROUPINGS: dict[str, tuple[str, ...]] = {
    "asset_kind": ("asset_kind",),
    "gang": ("gang_id",),
    "beneficiary": ("beneficiary_kind", "beneficiary_name"),
    "municipality": ("municipality_code",),
    **{f"period:{kind}": (kind,) for kind in PERIOD_KINDS},
}
"""The key columns of each grouping; "period:<kind>" groups by one of the local periods."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class AmountsRow:
    """The amounts of one group, in minor currency units."""

    key: tuple[str, ...]
    seized_cents: int
    confiscated_cents: int
    reinvested_cents: int
    released_cents: int


class AssetRecoveryProjection(Projection):
    """A ledger of asset values seized, confiscated, reinvested and released, by case."""

    name: ClassVar[str] = NAME
    version: ClassVar[int] = 1
    event_types: ClassVar[tuple[str, ...]] = EVENT_TYPES
    tables: ClassVar[tuple[str, ...]] = ("proj_asset_cases", "proj_asset_movements")
    schema: ClassVar[tuple[str, ...]] = (
        "CREATE TABLE IF NOT EXISTS proj_asset_cases ("
        "case_id TEXT PRIMARY KEY, case_reference TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS proj_asset_movements ("
        "position BIGINT NOT NULL, seq INTEGER NOT NULL, case_id TEXT NOT NULL, "
        "case_reference TEXT NOT NULL, movement TEXT NOT NULL, amount_cents BIGINT NOT NULL, "
        "occurred_at BIGINT NOT NULL, day TEXT NOT NULL, week TEXT NOT NULL, "
        "month TEXT NOT NULL, year TEXT NOT NULL, gang_id TEXT NOT NULL, "
        "municipality_code TEXT NOT NULL, asset_kind TEXT NOT NULL, "
        "beneficiary_kind TEXT NOT NULL, beneficiary_name TEXT NOT NULL, "
        "PRIMARY KEY (position, seq))",
        "CREATE INDEX IF NOT EXISTS proj_asset_movements_case "
        "ON proj_asset_movements (case_id, movement)",
    )

    def __init__(self, catalog: AreaCatalog) -> None:
        self._catalog = catalog

    def apply(self, tx: ViewTransaction, events: Sequence[Recorded]) -> None:
        """Fold the batch in memory, then write the cases opened and the movements."""
        batch = AssetLedgerBatch(self._catalog, load_cases(tx, {e.originator_id for e in events}))
        for recorded in events:
            batch.apply(recorded)
        tx.executemany(
            "INSERT INTO proj_asset_cases VALUES (?,?) ON CONFLICT (case_id) DO UPDATE SET "
            "case_reference = excluded.case_reference",
            [(str(case_id), batch.cases[case_id].case_reference) for case_id in batch.opened],
        )
        write_movements(tx, batch.movements)


def load_cases(tx: ViewTransaction, case_ids: Iterable[UUID]) -> dict[UUID, CaseState]:
    """The reference and the value seized by origin of the given cases, where known."""
    ids = [str(i) for i in case_ids]
    found: dict[UUID, CaseState] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for case_id, reference in tx.fetchall(
            f"SELECT case_id, case_reference FROM proj_asset_cases WHERE case_id IN ({marks})",  # noqa: S608
            chunk,
        ):
            found[UUID(case_id)] = CaseState(reference)
        for case_id, gang_id, municipality, cents in tx.fetchall(
            "SELECT case_id, gang_id, municipality_code, SUM(amount_cents) "  # noqa: S608
            f"FROM proj_asset_movements WHERE movement = ? AND case_id IN ({marks}) "
            "GROUP BY case_id, gang_id, municipality_code",
            [SEIZED, *chunk],
        ):
            state = found.setdefault(UUID(case_id), CaseState(""))
            state.seized[(gang_id, municipality)] = int(cents)
    return found


def write_movements(tx: ViewTransaction, movements: Iterable[Movement]) -> None:
    """Append movements to the ledger."""
    tx.executemany(
        "INSERT INTO proj_asset_movements VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [
            (
                m.position,
                m.seq,
                str(m.case_id),
                m.case_reference,
                m.kind,
                m.amount_cents,
                (m.occurred_at - _EPOCH) // timedelta(microseconds=1),
                m.periods["day"],
                m.periods["week"],
                m.periods["month"],
                m.periods["year"],
                m.gang_id,
                m.municipality_code,
                m.asset_kind,
                m.beneficiary_kind,
                m.beneficiary_name,
            )
            for m in movements
        ],
    )


def _sum(movement: str) -> str:
    return f"SUM(CASE WHEN movement = '{movement}' THEN amount_cents ELSE 0 END)"


def query_amounts(
    tx: ViewTransaction,
    grouping: str,
    *,
    period_kind: str = "",
    from_period: str = "",
    to_period: str = "",
    municipality_codes: Sequence[str] = (),
    gang_ids: Sequence[str] = (),
) -> list[AmountsRow]:
    """The ledger's amounts by one grouping (see GROUPINGS), ordered by key.

    `from_period` and `to_period` (inclusive) select movements by their local `period_kind`.
    """
    keys = ", ".join(GROUPINGS[grouping])
    statement = (
        f"SELECT {keys}, {_sum(SEIZED)}, {_sum(CONFISCATED)}, {_sum(REINVESTED)}, "  # noqa: S608
        f"{_sum(RELEASED)} FROM proj_asset_movements WHERE 1 = 1"
    )
    params: list[Any] = []
    if from_period or to_period:
        column = GROUPINGS[f"period:{period_kind}"][0]
        if from_period:
            statement += f" AND {column} >= ?"
            params.append(from_period)
        if to_period:
            statement += f" AND {column} <= ?"
            params.append(to_period)
    if municipality_codes:
        statement += f" AND municipality_code IN ({','.join('?' * len(municipality_codes))})"
        params.extend(municipality_codes)
    if gang_ids:
        statement += f" AND gang_id IN ({','.join('?' * len(gang_ids))})"
        params.extend(gang_ids)
    statement += f" GROUP BY {keys} ORDER BY {keys}"
    width = len(GROUPINGS[grouping])
    return [
        AmountsRow(
            key=tuple(row[:width]),
            seized_cents=int(row[width]),
            confiscated_cents=int(row[width + 1]),
            reinvested_cents=int(row[width + 2]),
            released_cents=int(row[width + 3]),
        )
        for row in tx.fetchall(statement, params)
    ]


def ledger(tx: ViewTransaction) -> list[tuple[Any, ...]]:
    """Every movement of the ledger in log order, as stored (for operators and tests)."""
    return tx.fetchall("SELECT * FROM proj_asset_movements ORDER BY position, seq")
