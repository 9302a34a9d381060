"""Personal data about participants: sealed with their subject's key, erased by destroying it.

The data subject is the incident: the names and references of its witness sources are
sealed (service/store/field_cipher.py) with a key of its own when they are recorded, and the
key is inserted into `subject_keys` in the transaction that appends the event. Every path
that turns events or aggregates into API objects reveals them with `PersonalData`: the
plaintext while the key exists, the erasure markers once `ErasePersonalData` deleted it.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Cipher

from service.app.results import RecordedEvent
from service.app.unit_of_work import UnitOfWork
from service.domain.incident import Incident
from service.domain.values import Source, SourceKind
from service.store.base import EventStoreBackend
from service.store.field_cipher import (
    ERASED_NAME,
    ERASED_REFERENCE,
    new_key,
    reveal,
    seal,
    subject_of,
    unwrap_key,
    wrap_key,
)

PERSONAL_SOURCE_KINDS = frozenset({SourceKind.WITNESS})
"""The kinds of source whose name and reference are personal data."""


def is_personal(source: Source) -> bool:
    """True when the source's name and reference are personal data (a witness)."""
    return source.kind in PERSONAL_SOURCE_KINDS


def sealed_subjects(sources: Iterable[Source]) -> set[UUID]:
    """The subjects whose keys sealed any of the sources' fields."""
    found: set[UUID] = set()
    for source in sources:
        for value in (source.name, source.reference):
            subject = subject_of(value)
            if subject is not None:
                found.add(subject)
    return found


def _personal_fields_mapped(
    sources: Iterable[Source], name: Callable[[str], str], reference: Callable[[str], str]
) -> tuple[Source, ...]:
    """The sources, each personal one with `name` and `reference` applied to those fields."""
    return tuple(
        dataclasses.replace(source, name=name(source.name), reference=reference(source.reference))
        if is_personal(source)
        else source
        for source in sources
    )


def reveal_sources(sources: Sequence[Source], keys: Mapping[UUID, bytes]) -> tuple[Source, ...]:
    """The sources with sealed fields decrypted, or the erasure markers where keys are gone."""
    return _personal_fields_mapped(
        sources,
        lambda value: reveal(value, keys, ERASED_NAME),
        lambda value: reveal(value, keys, ERASED_REFERENCE),
    )


class PersonalData:
    """Seals personal fields for new events and reveals them for readers.

    `at_rest` is the event store's at-rest cipher (None when encryption at rest is off):
    subject keys are stored wrapped with it.
    """

    def __init__(self, backend: EventStoreBackend, at_rest: Cipher | None) -> None:
        self._backend = backend
        self._at_rest = at_rest

    def seal_sources(
        self, unit: UnitOfWork, subject_id: UUID, sources: Sequence[Source]
    ) -> tuple[Source, ...]:
        """Seal the personal sources' fields with a new key of `subject_id`, which the unit
        of work stores with its events; sources without personal data need no key."""
        if not any(is_personal(source) for source in sources):
            return tuple(sources)
        key = new_key()
        unit.subject_keys[subject_id] = wrap_key(key, self._at_rest)
        sealed = functools.partial(seal, subject_id=subject_id, key=key)
        return _personal_fields_mapped(sources, sealed, sealed)

    def keys(self, subject_ids: Iterable[UUID]) -> dict[UUID, bytes]:
        """The keys of those subjects that still have one (blocking: call from a thread)."""
        wanted = sorted(set(subject_ids))
        if not wanted:
            return {}
        stored = self._backend.read_subject_keys(wanted)
        return {subject: unwrap_key(key, self._at_rest) for subject, key in stored.items()}

    def reveal_incident(self, incident: Incident) -> None:
        """Reveal the sources of a freshly loaded incident in place (blocking)."""
        sources: tuple[Source, ...] = incident.sources
        keys = self.keys(sealed_subjects(sources))
        incident.sources = reveal_sources(sources, keys)

    def reveal_events(self, recorded: Sequence[RecordedEvent]) -> list[RecordedEvent]:
        """The events with their sources revealed; events without sources are not copied
        (blocking: one query for every subject of the batch)."""
        sealed_in = [sealed_subjects(getattr(item.event, "sources", ())) for item in recorded]
        subjects = set().union(*sealed_in)
        if not subjects:
            return list(recorded)
        keys = self.keys(subjects)
        revealed: list[RecordedEvent] = []
        for item, sealed in zip(recorded, sealed_in, strict=True):
            if sealed:
                event: Any = copy.copy(item.event)
                object.__setattr__(event, "sources", reveal_sources(event.sources, keys))
                revealed.append(RecordedEvent(item.position, event))
            else:
                revealed.append(item)
        return revealed
