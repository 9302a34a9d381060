"""Running the `incidents` command in-process (typer's CliRunner) against test servers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from incident_registry_client import RegistryClient
from incident_registry_client.cli.app import app
from typer.testing import CliRunner, Result

from tests.support.harness import ServerHarness

Run = Callable[..., Result]


def invoke(target: str, *args: str, code: int = 0) -> Result:
    """Run `incidents --target TARGET --no-progress ARGS` and check its exit code."""
    result = CliRunner().invoke(
        app, ["--target", target, "--no-progress", *args], env={"COLUMNS": "200"}
    )
    assert result.exit_code == code, (
        f"exit {result.exit_code}, expected {code}\nstdout:\n{result.stdout}\n"
        f"stderr:\n{result.stderr}\nexception: {result.exception!r}"
    )
    return result


def invoke_json(target: str, *args: str, code: int = 0) -> Any:
    """Run the command with --json and parse what it printed."""
    return json.loads(invoke(target, "--json", *args, code=code).stdout)


@pytest.fixture
def cli(server: ServerHarness) -> Run:
    """Run the command against the test's server."""
    return lambda *args, code=0: invoke(server.target, *args, code=code)


@pytest.fixture
def cli_json(server: ServerHarness) -> Callable[..., Any]:
    """Run the command with --json against the test's server and parse its output."""
    return lambda *args, code=0: invoke_json(server.target, *args, code=code)


@pytest.fixture
def registry(server: ServerHarness) -> Iterator[RegistryClient]:
    """A client of the test's server, to check what the command did."""
    with RegistryClient(server.target) as client:
        yield client


def started(path: Path, **options: Any) -> ServerHarness:
    """A server on its own folder (its read models' file is beside its store)."""
    path.mkdir(parents=True, exist_ok=True)
    return ServerHarness(path / "registry.sqlite", **options).start()
