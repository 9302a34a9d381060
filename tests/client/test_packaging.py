"""The client installs on its own: a wheel with its stubs, needing only grpcio and protobuf.

Builds the wheel, installs it in a fresh virtualenv (no system site-packages) with no index
but a wheelhouse holding grpcio and protobuf alone, then calls a test server from there.
Takes about 15 s (most of it creating the virtualenv); pip may download the two wheels from
PyPI when its cache does not hold them yet.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

CLIENTS = Path(__file__).resolve().parents[2] / "clients"

pytestmark = pytest.mark.timeout(120)


def run(*args: str | Path, cwd: Path | None = None) -> str:
    finished = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=100, check=False
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    return finished.stdout


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dependencies_of(distribution: str) -> set[str]:
    """The unconditional requirements of an installed distribution, by normalized name."""
    requirements = metadata.requires(distribution) or []
    return {
        normalized(re.split(r"[ ;<>=!~\[(]", requirement, maxsplit=1)[0])
        for requirement in requirements
        if "extra ==" not in requirement
    }


def build_wheel(tmp_path: Path) -> Path:
    """The client's wheel, built from a copy so that the tree gets no build/ folder."""
    source = tmp_path / "clients"
    shutil.copytree(
        CLIENTS,
        source,
        ignore=shutil.ignore_patterns("*.egg-info", "build", "dist", "__pycache__"),
    )
    dist = tmp_path / "dist"
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        source,
        "-w",
        dist,
    )
    (wheel,) = dist.glob("incident_registry_client-*.whl")
    return wheel


def test_the_wheel_installs_in_a_clean_venv_and_calls_a_server(tmp_path, server):
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        requires = [
            line.split(":", 1)[1].strip()
            for line in archive.read(metadata_name).decode().splitlines()
            if line.startswith("Requires-Dist:")
        ]
    package = "incident_registry_client/"
    for expected in (
        "py.typed",
        "client.py",
        "aio.py",
        "errors.py",
        "retry.py",
        "streams.py",
        "types/__init__.py",
        "_convert/events.py",
        "_rpcs/incidents.py",
        "proto/incidents/v1/incident_service_pb2.py",
        "proto/incidents/v1/incident_service_pb2.pyi",
        "proto/incidents/v1/incident_service_pb2_grpc.pyi",
    ):
        assert package + expected in names, expected
    # The client needs only these; the CLI's libraries come with the optional `cli` extra.
    core = [r for r in requires if "extra ==" not in r]
    assert sorted(r.split(">")[0].split("<")[0].split("=")[0] for r in core) == [
        "grpcio",
        "protobuf",
    ]
    assert any(r.startswith("typer") and 'extra == "cli"' in r for r in requires)

    wheelhouse = tmp_path / "wheelhouse"
    pins = [f"grpcio=={metadata.version('grpcio')}", f"protobuf=={metadata.version('protobuf')}"]
    run(sys.executable, "-m", "pip", "download", "--only-binary=:all:", "-d", wheelhouse, *pins)
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "--no-index", "--find-links", wheelhouse, wheel)

    script = textwrap.dedent(
        """
        import sys
        from datetime import UTC, datetime, timedelta
        from pathlib import Path

        import incident_registry_client
        from incident_registry_client import RegistryClient, TimePrecision

        package = Path(incident_registry_client.__file__).parent
        assert str(package).startswith(sys.prefix), package
        assert (package / "py.typed").exists()
        with RegistryClient(sys.argv[1], actor="clean-venv") as registry:
            written = registry.report_shooting(
                occurred_at=datetime.now(UTC) - timedelta(hours=1),
                occurred_at_precision=TimePrecision.HOUR,
                municipality_code="21001",
            )
            print(registry.get_head().position == written.position)
        """
    )
    out = run(python, "-c", script, server.target, cwd=tmp_path)
    assert out.strip() == "True"
    # The examples run on nothing but the installed client.
    examples = Path(__file__).resolve().parents[2] / "clients" / "examples"
    reported = run(python, examples / "report_and_wait.py", "--target", server.target, cwd=tmp_path)
    assert reported.strip()
    followed = run(
        python,
        examples / "follow_log.py",
        "--target",
        server.target,
        "--until-caught-up",
        cwd=tmp_path,
    )
    assert "ShootingReported" in followed
    report = run(python, examples / "monthly_asset_report.py", "--target", server.target)
    assert report.strip()
    installed = run(python, "-m", "pip", "list", "--format=freeze")
    names = {normalized(line.split("==")[0]) for line in installed.split()}
    # The client, its two dependencies and theirs; pip and setuptools come with the venv.
    expected = {"incident-registry-client", "grpcio", "protobuf", "pip", "setuptools"}
    expected |= dependencies_of("grpcio") | dependencies_of("protobuf")
    assert names <= expected
    assert {"incident-registry-client", "grpcio", "protobuf"} <= names
