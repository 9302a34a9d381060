"""The Dockerfile, .dockerignore and install scripts, checked without building the image.

hadolint lints the Dockerfile and shellcheck the install scripts; the parsed Dockerfile must
have the shape the deployment relies on (see test_image_venv.py for the build replayed).
"""

from __future__ import annotations

import sys

from tests.deploy.files import (
    DEPLOY,
    DOCKERFILE,
    DockerIgnore,
    Stage,
    dockerfile_stages,
    run_tool,
    tool,
)

BASE_IMAGE = "python:3.11-slim"
SOURCES = ("service/", "projections/", "clients/src/", "README.md")


def build_and_runtime() -> tuple[Stage, Stage]:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "the image is built in more than one stage"
    (build,) = [stage for stage in stages if stage.name == "build"]
    return build, stages[-1]


def copies(stage: Stage) -> list[tuple[dict[str, str], list[str]]]:
    """(flags, [sources..., destination]) of every COPY of a stage."""
    found = []
    for instruction in stage.all("COPY"):
        flags, rest = instruction.flags()
        found.append((flags, rest.split()))
    return found


def test_hadolint_finds_nothing():
    result = run_tool(tool("hadolint"), "--no-color", DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_finds_nothing_in_the_install_scripts():
    scripts = sorted((DEPLOY / "docker").glob("*.sh"))
    assert [script.name for script in scripts] == [
        "install-dependencies.sh",
        "install-packages.sh",
    ]
    result = run_tool(tool("shellcheck"), "--shell=sh", *scripts)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_stage_starts_from_python_3_11_slim():
    stages = dockerfile_stages()
    assert {stage.base for stage in stages} == {BASE_IMAGE}


def test_the_final_stage_runs_as_a_fixed_non_root_user():
    _, runtime = build_and_runtime()
    user = runtime.last("USER").value.strip()
    uid, _, gid = user.partition(":")
    # Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
    assert uid.isdigit(), user
    assert gid.isdigit(), user
    assert int(uid) == 10001
    assert int(gid) == 10001
    # USER comes after every RUN: nothing runs as root once it is set.
    last_run = max(instruction.line for instruction in runtime.all("RUN"))
    assert runtime.last("USER").line > last_run


def test_the_final_stage_has_the_health_check_ports_and_command():
    _, runtime = build_and_runtime()
    assert runtime.last("HEALTHCHECK").exec_form() == ["incident-registry-health"]
    flags, _ = runtime.last("HEALTHCHECK").flags()
    assert {"interval", "timeout", "start-period", "retries"} <= set(flags)
    assert runtime.last("CMD").exec_form() == ["incident-registry-server"]
    exposed = {port for instruction in runtime.all("EXPOSE") for port in instruction.value.split()}
    assert exposed == {"50051", "9464"}
    env = runtime.env()
    assert env["INCIDENTS_LISTEN_ADDRESS"] == "0.0.0.0:50051"
    assert env["INCIDENTS_LOG_FORMAT"] == "json"
    assert env["INCIDENTS_METRICS_PORT"] == "9464"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PATH"].startswith("/opt/venv/bin:")
    # The SQLite files live in the volume, which the unprivileged user owns.
    assert runtime.last("VOLUME").exec_form() == ["/var/lib/incidents"]
    assert env["INCIDENTS_SQLITE_PATH"].startswith("/var/lib/incidents/")
    setup = " ".join(instruction.value for instruction in runtime.all("RUN"))
    assert "--owner=10001" in setup


def test_dependencies_are_installed_before_the_sources_are_copied():
    build, _ = build_and_runtime()
    assert build.env()["VENV"] == "/opt/venv"
    # The scripts run from the source root: the WORKDIR that the sources are copied into.
    assert build.last("WORKDIR").value.strip() == "/src"
    runs = build.all("RUN")
    assert len(runs) == 2
    dependencies, packages = runs
    assert "deploy/docker/install-dependencies.sh" in dependencies.value
    assert "deploy/docker/install-packages.sh" in packages.value
    before = [
        instruction.flags()[1].split()[:-1]
        for instruction in build.all("COPY")
        if instruction.line < dependencies.line
    ]
    copied_before = {source for sources in before for source in sources}
    assert copied_before == {"pyproject.toml", "clients/pyproject.toml", "deploy/docker/"}
    source_copies = [
        instruction
        for instruction in build.all("COPY")
        if any(source in instruction.value.split() for source in SOURCES)
    ]
    assert len(source_copies) == len(SOURCES)
    assert all(dependencies.line < copy.line < packages.line for copy in source_copies)


def test_the_runtime_stage_copies_only_the_virtualenv():
    build, runtime = build_and_runtime()
    assert copies(runtime) == [({"from": "build"}, [build.env()["VENV"], "/opt/venv"])]
    # Nothing is installed in the final stage: its RUN only creates the user and the volume.
    setup = " ".join(instruction.value for instruction in runtime.all("RUN"))
    for installer in ("apt-get", "apk", "pip", "gcc", "curl"):
        assert installer not in setup


def test_the_build_context_holds_what_the_dockerfile_copies_and_nothing_else():
    ignore = DockerIgnore.read()
    build, _ = build_and_runtime()
    for _, words in copies(build):
        for source in words[:-1]:
            assert not ignore.excluded(source.rstrip("/")), f"{source} is left out"
    context = set(ignore.context_files())
    assert "pyproject.toml" in context
    assert "service/__main__.py" in context
    assert "service/areas/data/brussels.json" in context
    assert "clients/src/incident_registry_client/cli/app.py" in context
    assert "deploy/docker/requirements.py" in context
    for left_out in (".git", ".venv", "data", "tests", "tools", "benchmarks", ".env", "deploy/k8s"):
        assert not any(path == left_out or path.startswith(left_out + "/") for path in context)
    assert not any("__pycache__" in path or ".egg-info" in path for path in context)
    for excluded in (".venv/bin/python", "data/incidents.sqlite", "tools/node_modules/x"):
        assert ignore.excluded(excluded)


def test_requirements_come_from_the_pyproject_files_without_the_local_packages():
    result = run_tool(
        sys.executable,
        DEPLOY / "docker" / "requirements.py",
        "pyproject.toml",
        "clients/pyproject.toml[cli]",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    names = [line.split("[")[0].split(">")[0].split("=")[0].split("<")[0] for line in lines]
    assert "setuptools" in names  # to build the two packages without build isolation
    for expected in ("grpcio", "psycopg", "structlog", "typer", "rich", "protobuf"):
        assert expected in names
    assert "incident-registry-client" not in names
    assert "incident-registry" not in names
    assert len(set(lines)) == len(lines)
    # The dev extra is not installed in the image.
    assert "pytest" not in names


def test_requirements_refuse_an_unknown_extra():
    result = run_tool(
        sys.executable, DEPLOY / "docker" / "requirements.py", "clients/pyproject.toml[nope]"
    )
    assert result.returncode == 2
    assert "nope" in result.stderr
