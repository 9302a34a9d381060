"""Gangs: register gangs and their aliases."""

from __future__ import annotations

from uuid import UUID

from service.app.base import ApplicationService
from service.app.commands import AddGangAlias, RegisterGang
from service.app.results import RecordedEvent, WriteContext, WriteResult
from service.app.unit_of_work import UnitOfWork
from service.app.validation import MAX_LONG_TEXT, Violations
from service.domain.gang import Gang


class Gangs(ApplicationService):
    """Application service for gangs."""

    async def register(self, command: RegisterGang, context: WriteContext) -> WriteResult:
        """Register a new gang."""
        v = Violations()
        occurred_at = self._business_time(command.occurred_at, v)
        v.required(command.name, "name")
        for index, alias in enumerate(command.aliases):
            v.required(alias, f"aliases[{index}]")
        folded = [alias.strip().casefold() for alias in command.aliases]
        v.distinct(folded, "aliases")
        name = command.name.strip().casefold()
        for index, alias in enumerate(folded):
            v.check(alias != name, f"aliases[{index}]", "repeats the gang's name")
        v.municipalities(
            command.territory_municipality_codes, "territory_municipality_codes", self._catalog
        )
        v.distinct(command.territory_municipality_codes, "territory_municipality_codes")
        v.text(command.territory_description, "territory_description", MAX_LONG_TEXT)
        v.raise_if_any()

        def decide(unit: UnitOfWork) -> Gang:
            gang = Gang(
                occurred_at=occurred_at,
                name=command.name.strip(),
                aliases=tuple(alias.strip() for alias in command.aliases),
                territory_municipality_codes=command.territory_municipality_codes,
                territory_description=command.territory_description,
            )
            return unit.add(gang, context.expected_version)

        return await self._write(command, context, decide)

    async def add_alias(self, command: AddGangAlias, context: WriteContext) -> WriteResult:
        """Record another alias of a gang."""
        v = Violations()
        occurred_at = self._business_time(command.occurred_at, v)
        v.required(command.alias, "alias")
        v.raise_if_any()

        def decide(unit: UnitOfWork) -> Gang:
            gang = unit.get(Gang, command.gang_id, context.expected_version)
            gang.add_alias(occurred_at=occurred_at, alias=command.alias.strip())
            return gang

        return await self._write(command, context, decide)

    async def get(self, gang_id: UUID) -> tuple[Gang, list[RecordedEvent]]:
        """Return a gang and its history."""
        return await self._read(Gang, gang_id)
