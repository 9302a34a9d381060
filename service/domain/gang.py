"""The Gang aggregate: a criminal group, its aliases and known territory."""

from __future__ import annotations

from datetime import datetime

from eventsourcing.domain import event

from service.domain.base import RegistryAggregate
from service.domain.errors import RuleViolatedError


class Gang(RegistryAggregate):
    """A registered gang."""

    STREAM_TYPE = "gang"

    @event("GangRegistered")
    def __init__(
        self,
        *,
        occurred_at: datetime,
        name: str,
        aliases: tuple[str, ...],
        territory_municipality_codes: tuple[str, ...],
        territory_description: str,
    ) -> None:
        self.name = name
        self.aliases = tuple(aliases)
        self.territory_municipality_codes = tuple(territory_municipality_codes)
        self.territory_description = territory_description

    def tags(self) -> frozenset[str]:
        """The gang itself and the municipalities of its known territory."""
        return frozenset(
            {f"gang:{self.id}", *(f"municipality:{m}" for m in self.territory_municipality_codes)}
        )

    def is_known_as(self, alias: str) -> bool:
        """Tell whether `alias` is already the gang's name or one of its aliases."""
        folded = alias.casefold()
        return any(folded == known.casefold() for known in (self.name, *self.aliases))

    @event("GangAliasAdded")
    def add_alias(self, *, occurred_at: datetime, alias: str) -> None:
        """Record another alias or pseudonym."""
        if self.is_known_as(alias):
            msg = f"gang {self.id} is already known as {alias!r}"
            raise RuleViolatedError("alias_is_new", f"gang/{self.id}", msg)
        self.aliases = (*self.aliases, alias)
