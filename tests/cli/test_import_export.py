"""Export, then import into another registry: the same read models, never a duplicate.

An import resumes after its checkpoint — written after each acknowledged batch — whether it
was stopped by Ctrl-C (the batch in hand is finished), killed, or crashed between a batch and
its checkpoint: events sent twice are skipped by the registry.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from incident_registry_client import RegistryClient
from incident_registry_client.cli.checkpoint import ImportCheckpoint, load, path_for, save

from service.domain.wave import WaveRule
from service.store.postgres import PostgresEventStore
from tests.cli.conftest import invoke, invoke_json, started
from tests.cli.transfer import populate, read_models
from tests.support.harness import ServerHarness
from tests.support.postgres import fresh_schema

INCIDENTS = Path(sys.executable).with_name("incidents")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerHarness, Path]]:
    """A registry detecting waves, with the demo's week and 2000 shootings, and its export."""
    folder = tmp_path_factory.mktemp("source")
    server = started(folder / "registry", wave_rule=WaveRule())
    try:
        invoke(server.target, "demo")
        with RegistryClient(server.target) as registry:
            populate(registry)
        export = folder / "export.jsonl"
        summary = invoke_json(server.target, "export", str(export))
        assert summary["complete"]
        yield server, export
    finally:
        server.stop()


@pytest.fixture
def target(tmp_path: Path) -> Iterator[ServerHarness]:
    """A fresh registry without wave detection: its positions are the file's lines."""
    server = started(tmp_path / "target")
    yield server
    server.stop()


def lines(path: Path) -> int:
    return len(path.read_bytes().splitlines())


def head(server: ServerHarness) -> int:
    with RegistryClient(server.target) as registry:
        return registry.get_head().position


def test_an_imported_export_serves_the_same_read_models(source, tmp_path):
    server, export = source
    copy = started(tmp_path / "copy", wave_rule=WaveRule())
    try:
        imported = invoke_json(copy.target, "import", str(export))
        assert (imported["imported"], imported["skipped"]) == (lines(export), 0)
        assert imported["events_per_second"] > 0
        assert not path_for(export).exists()  # a finished import leaves no checkpoint
        with RegistryClient(server.target) as a, RegistryClient(copy.target) as b:
            assert read_models(b) == read_models(a)
        # Importing again writes nothing.
        again = invoke_json(copy.target, "import", str(export))
        assert (again["imported"], again["skipped"]) == (0, lines(export))
        assert invoke_json(copy.target, "verify")["passed"]
    finally:
        copy.stop()


@pytest.mark.postgres
def test_a_migration_from_sqlite_to_postgresql_keeps_every_statistic(source, postgres, tmp_path):
    # The operator's migration: export the SQLite registry, import into a PostgreSQL one.
    server, export = source
    with fresh_schema(postgres) as settings:
        migrated = ServerHarness(
            tmp_path / "pg" / "registry.sqlite",
            backend_factory=lambda: PostgresEventStore(settings),
            wave_rule=WaveRule(),
        )
        (tmp_path / "pg").mkdir()
        migrated.start()
        try:
            imported = invoke_json(migrated.target, "import", str(export))
            assert imported["imported"] == lines(export)
            with RegistryClient(server.target) as a, RegistryClient(migrated.target) as b:
                assert read_models(b) == read_models(a)
            assert invoke_json(migrated.target, "verify")["passed"]
        finally:
            migrated.stop()


def test_an_import_resumes_after_its_checkpoint_without_duplicates(source, target, tmp_path):
    _, export = source
    data = tmp_path / "export.jsonl"
    data.write_bytes(export.read_bytes())
    total = lines(data)
    # A crash after batch [1..600] landed but before its checkpoint moved past line 500.
    first_600 = tmp_path / "first.jsonl"
    first_600.write_bytes(b"".join(data.read_bytes().splitlines(keepends=True)[:600]))
    invoke(target.target, "import", str(first_600))
    offset = len(b"".join(data.read_bytes().splitlines(keepends=True)[:500]))
    save(path_for(data), ImportCheckpoint(str(data), "jsonl", target.target, 500, offset, 500))
    result = invoke(target.target, "--json", "import", str(data), "--batch-size", "300")
    assert "resuming after line 500" in result.stderr
    summary = json.loads(result.stdout)
    assert (summary["imported"], summary["skipped"]) == (500 + total - 600, 100)
    assert summary["resumed_from_line"] == 500
    assert head(target) == total
    assert invoke_json(target.target, "verify")["events"] == total


def test_a_checkpoint_of_another_registry_is_refused(source, target, tmp_path):
    _, export = source
    data = tmp_path / "export.jsonl"
    data.write_bytes(export.read_bytes())
    save(path_for(data), ImportCheckpoint(str(data), "jsonl", "elsewhere:50051", 10, 100))
    result = invoke(target.target, "import", str(data), code=2)
    assert "elsewhere:50051" in result.stderr
    assert "--restart" in result.stderr
    restarted = invoke_json(target.target, "import", str(data), "--restart")
    assert restarted["imported"] == lines(data)


def test_a_bad_line_stops_the_import_where_the_checkpoint_stands(target, tmp_path, source):
    _, export = source
    good = export.read_bytes().splitlines(keepends=True)
    data = tmp_path / "broken.jsonl"
    data.write_bytes(b"".join([*good[:4], b"{oops\n", *good[4:8]]))
    result = invoke(target.target, "import", str(data), "--batch-size", "2", code=2)
    assert "line 5: not JSON" in result.stderr
    assert load(path_for(data)).line == 4
    assert head(target) == 4


def run_import(target: str, data: Path, batch: int) -> subprocess.Popen[str]:
    """The console script importing `data`, as an operator starts it."""
    return subprocess.Popen(
        [str(INCIDENTS), "--target", target, "import", str(data), "--batch-size", str(batch)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def wait_for_checkpoint(process: subprocess.Popen[str], path: Path, line: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        checkpoint = load(path) if path.exists() else None
        if checkpoint is not None and checkpoint.line >= line:
            assert process.poll() is None, "the import finished before it could be stopped"
            return
        time.sleep(0.01)
    pytest.fail("no checkpoint was written")


def test_ctrl_c_finishes_the_batch_in_hand_then_says_how_to_resume(source, target, tmp_path):
    _, export = source
    data = tmp_path / "export.jsonl"
    data.write_bytes(export.read_bytes())
    process = run_import(target.target, data, batch=5)
    wait_for_checkpoint(process, path_for(data), 200)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert f"resume with: incidents import {data}" in stderr
    stopped = load(path_for(data))
    # The batch in hand was finished and checkpointed: the log holds exactly those lines.
    assert stopped.line % 5 == 0
    assert head(target) == stopped.line == stopped.imported
    resumed = invoke_json(target.target, "import", str(data))
    assert (resumed["imported"], resumed["skipped"]) == (lines(data), 0)
    assert head(target) == lines(data)


def test_a_killed_import_resumes_without_duplicates(source, target, tmp_path):
    _, export = source
    data = tmp_path / "export.jsonl"
    data.write_bytes(export.read_bytes())
    process = run_import(target.target, data, batch=5)
    wait_for_checkpoint(process, path_for(data), 200)
    process.kill()
    process.communicate(timeout=30)
    killed_at = load(path_for(data)).line
    result = invoke(target.target, "--json", "import", str(data))
    assert f"resuming after line {killed_at:,}" in result.stderr
    summary = json.loads(result.stdout)
    # A batch sent before the kill but not checkpointed is skipped, not written twice.
    assert summary["imported"] + summary["skipped"] == lines(data)
    assert head(target) == lines(data)
    assert invoke_json(target.target, "verify")["passed"]
