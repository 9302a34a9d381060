"""The `incidents` console script: installed with the `cli` extra, friendly without it."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

INCIDENTS = Path(sys.executable).with_name("incidents")


def test_the_console_script_runs_a_command(server):
    finished = subprocess.run(
        [str(INCIDENTS), "--target", server.target, "--json", "verify"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert '"passed": true' in finished.stdout


def test_the_cli_is_an_extra_of_the_client():
    requirements = metadata.requires("incident-registry-client") or []
    core = {re.split(r"[ ;<>=!~\[(]", r, maxsplit=1)[0] for r in requirements if "extra" not in r}
    assert core == {"grpcio", "protobuf"}
    extra = {re.split(r"[ ;<>=!~\[(]", r, maxsplit=1)[0] for r in requirements if "extra" in r}
    assert extra == {"typer", "rich"}
    (script,) = [e for e in metadata.entry_points(group="console_scripts") if e.name == "incidents"]
    assert script.value == "incident_registry_client.cli.app:main"


def test_without_the_extra_the_command_says_how_to_install_it():
    # Hide typer as if the extra were not installed.
    code = (
        "import sys; sys.modules['typer'] = None; from incident_registry_client.cli.app import main"
    )
    finished = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert finished.returncode == 1
    assert "needs the client's 'cli' extra (typer is missing)" in finished.stderr
    assert 'pip install "incident-registry-client[cli]"' in finished.stderr
    assert "Traceback" not in finished.stderr
