"""The checkpoint of an import: how far the input was acknowledged, kept beside the input.

`<input>.import-checkpoint` is written (atomically: a temporary file, fsync, rename) after
each batch the registry acknowledged, and removed when the import completes. A resumed import
starts after the line or row it names; anything sent after it and not acknowledged is sent
again, which the registry answers without duplicates (exported events already present are
skipped; shootings are replayed by request id).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

SUFFIX = ".import-checkpoint"


class CheckpointError(Exception):
    """Raised when a checkpoint file cannot be read or does not belong to this import."""


@dataclass(frozen=True)
class ImportCheckpoint:
    """Where an import of `source` into `target` stands after its last acknowledged batch.

    `line` counts the lines (JSONL) or data rows (CSV) handled so far; `offset` is the byte
    offset just after them in a JSONL file (0 for CSV, which is re-read up to `line`).
    """

    source: str
    kind: str
    target: str
    line: int = 0
    offset: int = 0
    imported: int = 0
    skipped: int = 0
    rejected: int = 0
    last_position: int = 0
    updated_at: str = ""

    def advanced(
        self,
        *,
        line: int,
        offset: int = 0,
        imported: int = 0,
        skipped: int = 0,
        rejected: int = 0,
        last_position: int = 0,
    ) -> ImportCheckpoint:
        """A copy moved to `line` (and `offset`), adding the counts of one more batch."""
        return replace(
            self,
            line=line,
            offset=offset,
            imported=self.imported + imported,
            skipped=self.skipped + skipped,
            rejected=self.rejected + rejected,
            last_position=max(last_position, self.last_position),
            updated_at=datetime.now(UTC).isoformat(),
        )


def path_for(source: Path) -> Path:
    """The checkpoint file of an input file."""
    return source.with_name(source.name + SUFFIX)


def load(path: Path) -> ImportCheckpoint | None:
    """The checkpoint in `path`, or None when there is none."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ImportCheckpoint(**data)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as err:
        msg = f"{path} is not an import checkpoint ({err}); remove it to start over"
        raise CheckpointError(msg) from None


def save(path: Path, checkpoint: ImportCheckpoint) -> None:
    """Replace the checkpoint file atomically and durably."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump(asdict(checkpoint), handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)


def check_matches(checkpoint: ImportCheckpoint, *, source: Path, kind: str, target: str) -> None:
    """Refuse a checkpoint of another input, format or registry."""
    if checkpoint.kind != kind:
        msg = f"the checkpoint is of a {checkpoint.kind} import, not {kind}"
        raise CheckpointError(msg)
    if checkpoint.target != target:
        msg = (
            f"the checkpoint is of an import into {checkpoint.target}, not {target}: "
            "pass --restart to import from the first line"
        )
        raise CheckpointError(msg)
    if checkpoint.offset > source.stat().st_size:
        msg = f"{source} is shorter than where the checkpoint stands: pass --restart"
        raise CheckpointError(msg)
