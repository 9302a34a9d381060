"""The report's building blocks: a target, a table, and how numbers and verdicts are shown.

Every part of the report (benchmarks/report_parts_*.py) builds its targets and tables from
these, and the Markdown of benchmarks/suite_report.py shows them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

Results = dict[str, Any]
"""The parts' JSON documents by part name."""


@dataclass
class Target:
    """One target: what was measured, the aim, and whether it was met."""

    id: str
    part: str
    name: str
    measured: float | None
    aim: float
    unit: str
    higher_is_better: bool = True
    baseline: str = ""

    @property
    def met(self) -> bool | None:
        """True or False when measured; None when the part did not run."""
        if self.measured is None:
            return None
        if self.higher_is_better:
            return self.measured >= self.aim
        return self.measured <= self.aim

    @property
    def verdict(self) -> str:
        """How the report shows whether the target was met."""
        return {True: "met", False: "**missed**", None: "not measured"}[self.met]

    def as_dict(self) -> dict[str, Any]:
        """The target as JSON."""
        return {
            "id": self.id,
            "part": self.part,
            "name": self.name,
            "measured": self.measured,
            "aim": self.aim,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "baseline": self.baseline,
            "met": self.met,
        }


@dataclass
class Table:
    """One Markdown table of a part."""

    title: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------ formatting


def number(value: float | None, digits: int | None = None) -> str:
    """A number as the report shows it: thousands separators, fewer decimals when large."""
    if value is None:
        return "—"
    if digits is None:
        whole = float(value).is_integer()
        digits = 0 if whole or abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f}"


def times(value: float | None) -> str:
    """A ratio, e.g. 0.62 followed by the multiplication sign."""
    return "—" if value is None else f"{value:.2f}×"  # noqa: RUF001


def aim_text(target: Target) -> str:
    """The aim with its direction and unit, e.g. ≥ 20 ms."""
    sign = "≥" if target.higher_is_better else "≤"
    return f"{sign} {format_value(target.aim, target.unit)}"


def format_value(value: float | None, unit: str) -> str:
    """A measured value with its unit."""
    if value is None:
        return "—"
    if unit == "×":  # noqa: RUF001
        return times(value)
    return f"{number(value)} {unit}"


def verdict_for(targets: list[Target], target_id: str) -> str:
    """The verdict of the target `target_id`, or empty when there is none."""
    for target in targets:
        if target.id == target_id:
            return target.verdict
    return ""


def slug(text: str) -> str:
    """A target id part from free text: lower case, words joined by underscores."""
    return "_".join(re.findall(r"[a-z0-9]+", text.lower()))


def passes_by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A document's "passes" by name."""
    return {p["name"]: p for p in document["passes"]}
