"""What each event class holds: its attributes and their types, to check a decoded event.

The mapper decodes any JSON object into an instance of the class its topic names, whatever
attributes the object has. An event that comes from outside the registry (an import) must
also have exactly its class's attributes, each of the annotated type — otherwise aggregates
and projections would meet it later, far from where it came in. The checks are compiled once
per class from its type hints.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID

Check = Callable[[Any], bool]


@dataclass(frozen=True)
class EventSchema:
    """The attributes of one event class, and a check of each one's value."""

    name: str
    attributes: frozenset[str]
    exact: tuple[tuple[str, type], ...]
    """(attribute, type) for attributes whose value must be of exactly that type."""
    checks: tuple[tuple[str, str, Check], ...]
    """(attribute, type as text, check) for the others."""

    def problem(self, event: object) -> str | None:
        """What is wrong with a decoded event of this class, or None when it fits."""
        state = vars(event)
        if state.keys() != self.attributes:
            missing = sorted(self.attributes - state.keys())
            unexpected = sorted(state.keys() - self.attributes)
            parts = []
            if missing:
                parts.append(f"missing {', '.join(missing)}")
            if unexpected:
                parts.append(f"unexpected {', '.join(unexpected)}")
            return "; ".join(parts)
        for attribute, kind in self.exact:
            if type(state[attribute]) is not kind:
                return f"{attribute} must be {kind.__name__}, not {_shown(state[attribute])}"
        for attribute, expected, check in self.checks:
            if not check(state[attribute]):
                return f"{attribute} must be {expected}, not {_shown(state[attribute])}"
        return None


@functools.cache
def schema_of(event_class: type) -> EventSchema:
    """The schema of an event class (a dataclass with type hints), compiled once."""
    assert is_dataclass(event_class), event_class
    hints = typing.get_type_hints(event_class)
    names = [f.name for f in fields(event_class)]
    # The stream id and version come from the stored event's columns, not from its state.
    checked = [n for n in names if n not in {"originator_id", "originator_version"}]
    exact = tuple((n, hints[n]) for n in checked if _is_exact(hints[n]))
    checks = tuple(
        (n, _text(hints[n]), _compile(hints[n])) for n in checked if not _is_exact(hints[n])
    )
    return EventSchema(event_class.__name__, frozenset(names), exact, checks)


def _is_exact(hint: Any) -> bool:
    """Whether a value is checked by its type alone (a bool is not an int, nor an int a str)."""
    return hint in (bool, int, str, UUID) or (isinstance(hint, type) and issubclass(hint, Enum))


def _compile(hint: Any) -> Check:  # noqa: PLR0911 - one branch per kind of type
    """A check that a value is of the annotated type (exactly: a bool is not an int)."""
    if hint is Any:
        return _anything
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [_compile(arg) for arg in typing.get_args(hint) if arg is not type(None)]
        nullable = type(None) in typing.get_args(hint)
        if len(options) == 1:
            (only,) = options
            return lambda v: (nullable and v is None) or only(v)
        return lambda v: (nullable and v is None) or any(check(v) for check in options)
    if origin is tuple:
        item, *rest = typing.get_args(hint)
        if rest != [Ellipsis]:
            msg = f"only tuple[X, ...] is supported, not {hint}"
            raise TypeError(msg)
        return _tuple_of(item)
    if origin is dict:
        return _dict_of(*typing.get_args(hint))
    if hint is float:
        return lambda v: type(v) is float or type(v) is int
    if hint is datetime:
        return lambda v: type(v) is datetime and v.utcoffset() is not None
    if _is_exact(hint):
        return lambda v: type(v) is hint
    if isinstance(hint, type) and is_dataclass(hint):
        return _value_object(hint)
    msg = f"cannot check values of type {hint}"
    raise TypeError(msg)


def _tuple_of(item: Any) -> Check:
    if _is_exact(item):

        def exact_items(value: Any) -> bool:
            if type(value) is not tuple:
                return False
            for element in value:  # noqa: SIM110 - a loop is faster than all() here
                if type(element) is not item:
                    return False
            return True

        return exact_items
    check_item = _compile(item)

    def items(value: Any) -> bool:
        if type(value) is not tuple:
            return False
        for element in value:  # noqa: SIM110 - a loop is faster than all() here
            if not check_item(element):
                return False
        return True

    return items


def _dict_of(key: Any, value: Any) -> Check:
    check_key, check_value = _compile(key), _compile(value)

    def entries(mapping: Any) -> bool:
        if type(mapping) is not dict:
            return False
        for k, v in mapping.items():  # noqa: SIM110 - a loop is faster than all() here
            if not (check_key(k) and check_value(v)):
                return False
        return True

    return entries


def _value_object(value_type: type) -> Check:
    """A check of a value dataclass: its type, then each field (read from its __dict__)."""
    hints = typing.get_type_hints(value_type)
    exact = [(f.name, hints[f.name]) for f in fields(value_type) if _is_exact(hints[f.name])]
    others = [
        (f.name, _compile(hints[f.name]))
        for f in fields(value_type)
        if not _is_exact(hints[f.name])
    ]

    def check(value: Any) -> bool:
        if type(value) is not value_type:
            return False
        state = value.__dict__
        for name, kind in exact:
            if type(state[name]) is not kind:
                return False
        for name, check_field in others:  # noqa: SIM110 - a loop is faster than all() here
            if not check_field(state[name]):
                return False
        return True

    return check


def _anything(_: Any) -> bool:
    return True


def _text(hint: Any) -> str:
    """A type as people read it: "datetime with a time zone", "tuple[Weapon, ...]"."""
    if hint is datetime:
        return "datetime with a time zone"
    if isinstance(hint, type) and typing.get_origin(hint) is None:
        return hint.__name__
    text = str(hint).replace("typing.", "").replace("uuid.", "").replace("datetime.", "")
    return text.replace("service.domain.values.", "")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
