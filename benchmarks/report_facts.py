"""The run's facts and the "What limits it" text: benchmarks/limits.md filled from a run.

The text of the "What limits it" section comes from a Markdown file (benchmarks/limits.md):
one `## <target id>` heading per target, its body the explanation. `{fact}` placeholders in a
body are replaced by the run's measurements (see `facts`), so the text quotes this run;
`{self.<field>}` names a fact of the target explained (`{self.cpu_seconds}` under `rebuild`
reads `rebuild.waves.cpu_seconds` for the target `rebuild.waves`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from report_model import Results, Target, aim_text, format_value, number, slug
from report_parts_append import append_rows, append_targets
from report_parts_stream import subscribe_raw

PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.:-]+)\}")


# ----------------------------------------------------------------------------------- facts


def facts(results: Results, machine: dict[str, Any]) -> dict[str, float]:
    """The run's measurements by name, for the placeholders of the limits text.

    Names: `machine.cpus`, `machine.load_1min_at_start|end`;
    `append.<store>_<processes>.<level>.<field>` and `append.echo.<level>.<field>`
    (calls_per_s, p50_ms, p99_ms, max_ms, server_cpu_ms, client_cpu_ms, postgres_cpu_ms,
    cores_busy, ratio, cpu_bound_calls_per_s: 1000 ÷ server CPU ms per call,
    cores_bound_calls_per_s: CPUs * 1000 ÷ all CPU ms per call);
    `cli_import.<pass slug>` (events/s);
    `append.scaling.<store>`; `import.<pass slug>` (events/s) and `import.ratio`;
    `subscribe.<mode>_<batch>` (events/s), `subscribe.<mode>_<batch>.ratio`,
    `subscribe.raw_read`, `subscribe.raw_decode`; `rebuild.<name>` (events/s),
    `rebuild.<name>.ratio|cpu_seconds|seconds|cpu_share|raw_same_events_per_s`,
    `rebuild.raw_decode`;
    `lag.<field>` (every number of the live-lag result); `replay.<pass>.peak_rss_mb|
    rss_before_mb|events_per_s` and `replay.rebuild.peak_rss_mb`.
    """
    found: dict[str, float] = {"machine.cpus": float(machine.get("cpus") or 0)}
    for moment in ("start", "end"):
        loads = str(machine.get(f"load_average_at_{moment}", "")).split()
        if loads:
            found[f"machine.load_1min_at_{moment}"] = float(loads[0])
    for name, builder in FACT_BUILDERS.items():
        if results.get(name):
            found.update(builder(results[name], found["machine.cpus"]))
    return found


def _append_facts(document: dict[str, Any], cpus: float) -> Iterator[tuple[str, float]]:
    rows = append_rows(document)
    for (target, level), row in rows.items():
        key = f"append.{target.replace(':', '_')}.{level}"
        echo = rows.get(("echo", level))
        all_cpu = (
            row["server_cpu_ms_per_call"]
            + row["client_cpu_ms_per_call"]
            + row["postgres_cpu_ms_per_call"]
        )
        values = {
            "calls_per_s": row["calls_per_s"],
            "p50_ms": row["p50_ms"],
            "p99_ms": row["p99_ms"],
            "max_ms": row["max_ms"],
            "server_cpu_ms": row["server_cpu_ms_per_call"],
            "client_cpu_ms": row["client_cpu_ms_per_call"],
            "postgres_cpu_ms": row["postgres_cpu_ms_per_call"],
            "cores_busy": row["cores_busy"],
            "ratio": row["calls_per_s"] / echo["calls_per_s"] if echo else 0.0,
            "cpu_bound_calls_per_s": 1000 / row["server_cpu_ms_per_call"]
            if row["server_cpu_ms_per_call"]
            else 0.0,
            "cores_bound_calls_per_s": cpus * 1000 / all_cpu if all_cpu else 0.0,
        }
        for field_name, value in values.items():
            yield f"{key}.{field_name}", float(value)
    for scaling in append_targets(document):
        if scaling.id.startswith("append.scaling.") and scaling.measured is not None:
            yield scaling.id, scaling.measured


def _import_facts(document: dict[str, Any], _cpus: float) -> Iterator[tuple[str, float]]:
    for row in document["passes"]:
        yield f"import.{slug(row['name'])}", float(row["events_per_s"])
    yield "import.ratio", float(document["import_ratio_to_raw"])


def _cli_import_facts(document: dict[str, Any], _cpus: float) -> Iterator[tuple[str, float]]:
    for row in document["passes"]:
        yield f"cli_import.{slug(row['name'])}", float(row["events_per_s"])


def _subscribe_facts(document: dict[str, Any], _cpus: float) -> Iterator[tuple[str, float]]:
    raw = subscribe_raw(document)
    for row in document["raw"]:
        yield f"subscribe.{slug(row['mode'])}", float(row["events_per_s"])
    for run in document["results"]:
        key = f"subscribe.{run['mode'].lower()}_{run['batch']}"
        yield key, float(run["events_per_s"])
        yield f"{key}.ratio", float(run["events_per_s"]) / raw


def _rebuild_facts(document: dict[str, Any], _cpus: float) -> Iterator[tuple[str, float]]:
    if document.get("raw"):
        yield "rebuild.raw_decode", float(document["raw"]["events_per_s"])
    for row in document["rebuilds"]:
        key = f"rebuild.{row['name']}"
        yield key, float(row["events_per_s"])
        yield f"{key}.ratio", float(row["ratio"])
        yield f"{key}.cpu_seconds", float(row["cpu_seconds"])
        yield f"{key}.seconds", float(row["seconds"])
        yield f"{key}.cpu_share", float(row["cpu_seconds"]) / float(row["seconds"])
        yield f"{key}.raw_same_events_per_s", float(row.get("raw_same_events_per_s") or 0.0)


def _lag_facts(document: dict[str, Any], _cpus: float) -> Iterator[tuple[str, float]]:
    for name, value in document["live_lag"].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            yield f"lag.{name}", float(value)


def _replay_facts(document: dict[str, Any], _cpus: float) -> Iterator[tuple[str, float]]:
    for p in document["passes"]:
        key = f"replay.{slug(p['mode'].split()[0])}"
        yield f"{key}.peak_rss_mb", max(float(p["peak_rss_mb"]), float(p["hwm_mb"]))
        yield f"{key}.rss_before_mb", float(p["rss_before_mb"])
        yield f"{key}.events_per_s", float(p["events_per_s"])
    if document.get("rebuild"):
        yield "replay.rebuild.peak_rss_mb", float(document["rebuild"]["peak_rss_mb"])
    yield "replay.build_seconds", float(document["build"]["seconds"])


FACT_BUILDERS: dict[str, Callable[[dict[str, Any], float], Iterator[tuple[str, float]]]] = {
    "append": _append_facts,
    "import_events": _import_facts,
    "cli_import": _cli_import_facts,
    "subscribe": _subscribe_facts,
    "projection_rebuilds": _rebuild_facts,
    "projection": _lag_facts,
    "replay_rss": _replay_facts,
}


# ---------------------------------------------------------------------------------- limits


def load_limits(path: Path) -> dict[str, str]:
    """The explanations by target id from a Markdown file of `## <target id>` sections."""
    limits: dict[str, str] = {}
    current: str | None = None
    lines: list[str] = []
    for line in [*path.read_text().splitlines(), "## "]:
        if line.startswith("## "):
            if current:
                limits[current] = "\n".join(lines).strip()
            current, lines = line[3:].strip(), []
        elif current is not None:
            lines.append(line)
    return limits


def limit_for(limits: dict[str, str], target_id: str) -> str:
    """The explanation of `target_id`: its own section, else its family's (id minus its last
    part), else empty."""
    return limits.get(target_id) or limits.get(target_id.rsplit(".", 1)[0]) or ""


def resolve(name: str, target_id: str) -> str:
    """A placeholder's fact name: `self` stands for the target's id (`{self.ratio}`)."""
    if name == "self" or name.startswith("self."):
        return target_id + name.removeprefix("self")
    return name


def fill(text: str, known: dict[str, float], target_id: str = "") -> str:
    """Replace each `{name}` in `text` by the measurement of that name (unknown ones stay)."""

    def value(match: re.Match[str]) -> str:
        name = resolve(match.group(1), target_id)
        return number(known[name]) if name in known else match.group(0)

    return PLACEHOLDER.sub(value, text)


def unknown_placeholders(text: str, known: dict[str, float], target_id: str = "") -> list[str]:
    """The `{name}` placeholders of `text` that no measurement fills."""
    names = {resolve(name, target_id) for name in PLACEHOLDER.findall(text)}
    return sorted(name for name in names if name not in known)


def reflow(text: str) -> str:
    """Join the lines of each paragraph (filled placeholders leave the line breaks ragged)."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def limits_section(
    targets: list[Target], limits: dict[str, str], known: dict[str, float]
) -> list[str]:
    """The "What limits it" section: each missed target with its explanation."""
    missed = [t for t in targets if t.met is False]
    out = ["## What limits it", ""]
    if not missed:
        return [*out, "Every measured target was met."]
    for target in missed:
        text = limit_for(limits, target.id)
        body = (
            reflow(fill(text, known, target.id))
            if text
            else "No explanation recorded in benchmarks/limits.md."
        )
        out += [
            f"### {target.name} (`{target.id}`)",
            "",
            f"Measured {format_value(target.measured, target.unit)}, aim {aim_text(target)}.",
            "",
            body,
            "",
        ]
    return out
