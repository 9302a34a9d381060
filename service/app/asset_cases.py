"""Asset cases: seizures, confiscations, reinvestments and releases of criminal assets."""

from __future__ import annotations

import math
from uuid import UUID

from service.app.base import ApplicationService
from service.app.commands import ConfiscateAssets, RecordAssetSeizure, ReinvestAssets, ReleaseAssets
from service.app.results import RecordedEvent, WriteContext, WriteResult
from service.app.unit_of_work import UnitOfWork
from service.app.validation import MAX_ITEMS, MAX_LONG_TEXT, Violations
from service.domain.asset_case import AssetCase, case_id
from service.domain.errors import VersionConflictError
from service.domain.gang import Gang
from service.domain.incident import Incident
from service.domain.values import AssetKind

MAX_VALUE_CENTS = 10**15


class AssetCases(ApplicationService):
    """Application service for asset recovery cases."""

    async def record_seizure(
        self, command: RecordAssetSeizure, context: WriteContext
    ) -> WriteResult:
        """Record a seizure; the first one for a case reference opens the case."""
        now = self._now()
        v = Violations()
        v.not_future(command.occurred_at, "occurred_at", now)
        v.required(command.case_reference, "case_reference")
        v.municipality(command.municipality_code, "municipality_code", self._catalog)
        v.check(bool(command.items), "items", "at least one item is required")
        v.check(len(command.items) <= MAX_ITEMS, "items", f"at most {MAX_ITEMS} items")
        for index, item in enumerate(command.items):
            field = f"items[{index}]"
            v.check(
                0 <= item.estimated_value_cents <= MAX_VALUE_CENTS,
                f"{field}.estimated_value_cents",
                f"must be from 0 to {MAX_VALUE_CENTS}",
            )
            v.count(item.quantity, f"{field}.quantity", minimum=1)
            v.check(
                math.isfinite(item.weight_kg) and item.weight_kg >= 0,
                f"{field}.weight_kg",
                "must be a finite number, at least 0",
            )
            v.check(
                item.weight_kg == 0 or item.kind is AssetKind.DRUGS,
                f"{field}.weight_kg",
                "is only for drugs",
            )
            v.text(item.description, f"{field}.description")
        v.distinct(command.incident_ids, "incident_ids")
        v.text(command.description, "description", MAX_LONG_TEXT)
        v.raise_if_any()
        reference = command.case_reference.strip()

        def decide(unit: UnitOfWork) -> AssetCase:
            if command.gang_id is not None:
                unit.get(Gang, command.gang_id)
            for incident_id in command.incident_ids:
                unit.get(Incident, incident_id)
            case = unit.find(AssetCase, case_id(reference))
            if case is None:
                case = unit.add(
                    AssetCase(occurred_at=command.occurred_at, case_reference=reference),
                    context.expected_version,
                )
            elif context.expected_version not in (None, case.version):
                raise VersionConflictError(str(case.id), context.expected_version, case.version)
            case.record_seizure(
                occurred_at=command.occurred_at,
                municipality_code=command.municipality_code,
                gang_id=command.gang_id,
                incident_ids=command.incident_ids,
                items=command.items,
                description=command.description,
            )
            return case

        return await self._write(command, context, decide)

    async def confiscate(self, command: ConfiscateAssets, context: WriteContext) -> WriteResult:
        """Record a court's confiscation."""
        v = Violations()
        occurred_at = self._business_time(command.occurred_at, v)
        self._check_amount(v, command.amount_cents)
        v.required(command.court, "court")
        v.required(command.decision_reference, "decision_reference")
        v.raise_if_any()

        def decide(unit: UnitOfWork) -> AssetCase:
            case = unit.get(AssetCase, command.case_id, context.expected_version)
            case.confiscate(
                occurred_at=occurred_at,
                amount_cents=command.amount_cents,
                court=command.court,
                decision_reference=command.decision_reference,
            )
            return case

        return await self._write(command, context, decide)

    async def reinvest(self, command: ReinvestAssets, context: WriteContext) -> WriteResult:
        """Record a reinvestment of confiscated value."""
        v = Violations()
        occurred_at = self._business_time(command.occurred_at, v)
        self._check_amount(v, command.amount_cents)
        v.required(command.beneficiary.name, "beneficiary.name")
        v.text(command.note, "note", MAX_LONG_TEXT)
        v.raise_if_any()

        def decide(unit: UnitOfWork) -> AssetCase:
            case = unit.get(AssetCase, command.case_id, context.expected_version)
            case.reinvest(
                occurred_at=occurred_at,
                amount_cents=command.amount_cents,
                beneficiary=command.beneficiary,
                note=command.note,
            )
            return case

        return await self._write(command, context, decide)

    async def release(self, command: ReleaseAssets, context: WriteContext) -> WriteResult:
        """Record a court's release of confiscated value."""
        v = Violations()
        occurred_at = self._business_time(command.occurred_at, v)
        self._check_amount(v, command.amount_cents)
        v.required(command.court, "court")
        v.required(command.decision_reference, "decision_reference")
        v.text(command.reason, "reason", MAX_LONG_TEXT)
        v.raise_if_any()

        def decide(unit: UnitOfWork) -> AssetCase:
            case = unit.get(AssetCase, command.case_id, context.expected_version)
            case.release(
                occurred_at=occurred_at,
                amount_cents=command.amount_cents,
                court=command.court,
                decision_reference=command.decision_reference,
                reason=command.reason,
            )
            return case

        return await self._write(command, context, decide)

    async def get(self, asset_case_id: UUID) -> tuple[AssetCase, list[RecordedEvent]]:
        """Return an asset case and its history."""
        return await self._read(AssetCase, asset_case_id)

    @staticmethod
    def _check_amount(v: Violations, amount_cents: int) -> None:
        v.check(
            0 < amount_cents <= MAX_VALUE_CENTS,
            "amount_cents",
            f"must be from 1 to {MAX_VALUE_CENTS}",
        )
