"""The image built without Docker: the Dockerfile's steps replayed into a fresh virtualenv.

The build stage's instructions run here as the builder would run them — ENV, WORKDIR, COPY
from a build context made with .dockerignore's rules, and each RUN through `sh -c`, word for
word — with the image's paths mapped into a temporary directory (/opt/venv to a new
virtualenv). The runtime stage's ENV, CMD and HEALTHCHECK are then used as written, with a
free port and a temporary data directory: the server starts, its HEALTHCHECK turns healthy,
SIGTERM stops it with exit code 0; the migration, the projection worker and the CLI run from
the same virtualenv. What cannot run here is the runtime stage's RUN (it creates the image's
OS user) and USER: the processes run as the test's user.

The install steps download the dependencies from the package index (pip's cache helps on the
next run): the first build takes about a minute.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from service.store.postgres import PostgresSettings
from tests.deploy.files import (
    K8S,
    DockerIgnore,
    Instruction,
    Stage,
    dockerfile_stages,
    env_file,
    expand,
    free_port,
)
from tests.support.postgres import fresh_schema

pytestmark = pytest.mark.timeout(600)

BUILD_SECONDS = 540
START_SECONDS = 60


@dataclass(frozen=True)
class Image:
    """The replayed image: where its virtualenv is, and its runtime stage as written."""

    root: Path
    venv: Path
    venv_in_image: str
    runtime: Stage
    base_path: str

    def environment(self, data: Path) -> dict[str, str]:
        """The container's environment: the runtime stage's ENV, paths mapped into `data`.

        Like a container's, it starts empty but for PATH (the base image's, here the host's),
        HOME (the image user's home, its WORKDIR) and LANG: nothing of the test's own
        INCIDENTS_* settings leaks in. The listen and metrics ports become free ones; the
        volume directory becomes `data`. Processes run in HOME.
        """
        volume = self.runtime.last("VOLUME").exec_form()[0]
        workdir = self.map_path(self.runtime.last("WORKDIR").value.strip(), volume, data)
        env = {"PATH": self.base_path, "HOME": workdir, "LANG": "C.UTF-8"}
        for key, value in self.runtime.env().items():
            env[key] = self.map_path(expand(value, env), volume, data)
        host, _, _ = env["INCIDENTS_LISTEN_ADDRESS"].rpartition(":")
        env["INCIDENTS_LISTEN_ADDRESS"] = f"{host}:{free_port()}"
        env["INCIDENTS_METRICS_PORT"] = str(free_port())
        return env

    def map_path(self, value: str, volume: str, data: Path) -> str:
        """Replace the image's paths (virtualenv, volume) by their places here."""
        return value.replace(self.venv_in_image, str(self.venv)).replace(volume, str(data))

    def command(self, instruction: str, env: Mapping[str, str]) -> list[str]:
        """A CMD or HEALTHCHECK as written, its program found on the container's PATH."""
        words = self.runtime.last(instruction).exec_form()
        return [self.executable(words[0], env), *words[1:]]

    def executable(self, name: str, env: Mapping[str, str]) -> str:
        """A program found on the container's PATH: it must come from the new virtualenv."""
        found = shutil.which(name, path=env["PATH"])
        assert found, f"{name} is not on the image's PATH"
        assert Path(found).parent == self.venv / "bin", f"{name} found outside the image: {found}"
        return found


def replay_build_stage(stage: Stage, root: Path, context: Path, venv: Path) -> str:
    """Run the build stage's instructions; return the image's virtualenv path (ENV VENV)."""
    # The host's environment stands in for the base image's: it holds pip's index settings
    # and cache. PYTHON is the interpreter the virtualenv is made from (python3 in the image).
    env = {**os.environ, "PYTHON": sys.executable}
    venv_in_image = stage.env()["VENV"]
    workdir: Path | None = None

    def mapped(path: str) -> Path:
        if path.startswith(venv_in_image):
            return venv / path.removeprefix(venv_in_image).lstrip("/")
        return root / path.lstrip("/")

    for instruction in stage.instructions:
        if instruction.name == "ENV":
            for key, value in instruction.env_pairs().items():
                expanded = expand(value, env)
                env[key] = str(mapped(expanded)) if expanded.startswith("/") else expanded
        elif instruction.name == "WORKDIR":
            workdir = mapped(instruction.value.strip())
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction.name == "COPY":
            assert workdir is not None, "COPY before WORKDIR"
            replay_copy(instruction, context, workdir)
        elif instruction.name == "RUN":
            assert workdir is not None, "RUN before WORKDIR"
            replay_run(instruction, workdir, env)
        else:
            raise AssertionError(f"line {instruction.line}: {instruction.name} is not replayed")
    return venv_in_image


def replay_copy(instruction: Instruction, context: Path, workdir: Path) -> None:
    """COPY from the build context, with Docker's rules for files and directories."""
    flags, rest = instruction.flags()
    assert flags == {}, f"line {instruction.line}: COPY {flags} is not replayed"
    *sources, destination = rest.split()
    target = workdir / destination
    for source in sources:
        origin = context / source
        assert origin.exists(), f"line {instruction.line}: {source} is not in the build context"
        if origin.is_dir():
            # A directory's contents are copied into the destination directory.
            shutil.copytree(origin, target, dirs_exist_ok=True)
        elif destination.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target / origin.name)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target)


def replay_run(instruction: Instruction, workdir: Path, env: Mapping[str, str]) -> None:
    """RUN in shell form through `sh -c`; build-time mounts (pip's cache) are left out."""
    flags, command = instruction.flags()
    assert set(flags) <= {"mount"}, f"line {instruction.line}: RUN {flags} is not replayed"
    try:
        finished = subprocess.run(
            ["/bin/sh", "-c", command],
            cwd=workdir,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=BUILD_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise AssertionError(f"line {instruction.line}: RUN {command} took too long") from err
    assert finished.returncode == 0, (
        f"line {instruction.line}: RUN {command} exited {finished.returncode}\n"
        f"{finished.stdout[-4000:]}\n{finished.stderr[-4000:]}"
    )


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    """The Dockerfile's build replayed once for the module."""
    stages = dockerfile_stages()
    (build,) = [stage for stage in stages if stage.name == "build"]
    runtime = stages[-1]
    base = tmp_path_factory.mktemp("image")
    context = base / "context"
    DockerIgnore.read().copy_context(context)
    venv = base / "venv"
    venv_in_image = replay_build_stage(build, base / "root", context, venv)
    # The runtime stage takes the virtualenv, and nothing else, from the build stage.
    (copy,) = runtime.all("COPY")
    assert copy.flags() == ({"from": build.name or ""}, f"{venv_in_image} {venv_in_image}")
    return Image(
        root=base / "root",
        venv=venv,
        venv_in_image=venv_in_image,
        runtime=runtime,
        base_path=os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
    )


class Process:
    """A process of the image, its output (stdout and stderr) kept in a file."""

    def __init__(self, argv: list[str], env: Mapping[str, str], cwd: Path, log: Path) -> None:
        self.log = log
        with log.open("w") as output:
            self.popen = subprocess.Popen(
                argv, env=dict(env), cwd=cwd, stdout=output, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        """What the process printed so far."""
        return self.log.read_text(errors="replace")

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines printed so far."""
        lines = [line for line in self.output().splitlines() if line.startswith("{")]
        return [json.loads(line) for line in lines]

    def wait_for_event(self, event: str, timeout: float = START_SECONDS) -> dict[str, Any]:
        """The first log line of that event; fails if the process exits or it never comes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.events():
                if line.get("event") == event:
                    return line
            assert self.popen.poll() is None, f"exited {self.popen.returncode}:\n{self.output()}"
            time.sleep(0.1)
        raise AssertionError(f"no {event} within {timeout} s:\n{self.output()}")

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, then the exit code."""
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired as err:
            self.popen.kill()
            self.popen.wait()
            msg = f"still running {timeout} s after SIGTERM:\n{self.output()}"
            raise AssertionError(msg) from err

    def kill(self) -> None:
        """Make sure it is gone."""
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.kill()


Starter = Callable[[list[str], Mapping[str, str], str], Process]


@pytest.fixture
def start(tmp_path: Path, processes: list[Process]) -> Starter:
    """Start a process of the image (stopped at the end of the test), named for its log."""

    def start(argv: list[str], env: Mapping[str, str], name: str) -> Process:
        process = Process(argv, env, cwd=Path(env["HOME"]), log=tmp_path / f"{name}.log")
        processes.append(process)
        return process

    return start


def run(argv: list[str], env: Mapping[str, str], timeout: float = START_SECONDS) -> str:
    """Run to the end; fails unless it exits 0 within `timeout` seconds."""
    try:
        finished = subprocess.run(
            argv,
            env=dict(env),
            cwd=env["HOME"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise AssertionError(f"{' '.join(argv)} did not exit within {timeout} s") from err
    assert finished.returncode == 0, (
        f"{' '.join(argv)} exited {finished.returncode}:\n{finished.stdout}\n{finished.stderr}"
    )
    return finished.stdout + finished.stderr


def health(image: Image, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """The image's HEALTHCHECK command, as Docker runs it in the container."""
    return subprocess.run(
        image.command("HEALTHCHECK", env),
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def wait_healthy(image: Image, env: Mapping[str, str], server: Process) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if health(image, env).returncode == 0:
            return
        assert server.popen.poll() is None, f"exited {server.popen.returncode}:\n{server.output()}"
        time.sleep(0.5)
    raise AssertionError(f"HEALTHCHECK never passed:\n{server.output()}")


def data_dir(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    return path


def metrics_text(port: str, process: Process, timeout: float = 20) -> str:
    """GET /metrics on the port, as Prometheus and the worker's probes do, once it answers."""
    url = f"http://127.0.0.1:{port}/metrics"
    deadline = time.monotonic() + timeout
    while True:
        assert process.popen.poll() is None, f"exited:\n{process.output()}"
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                assert reply.status == 200
                return str(reply.read().decode())
        except OSError as err:
            if time.monotonic() > deadline:
                msg = f"nothing answers {url} (INCIDENTS_METRICS_PORT): {err}\n{process.output()}"
                raise AssertionError(msg) from err
            time.sleep(0.2)


def tables(path: Path) -> set[str]:
    assert path.exists(), f"{path} was not created"
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {str(name) for (name,) in rows}


def test_the_build_installs_the_packages_and_the_commands(image):
    scripts = {path.name for path in (image.venv / "bin").iterdir()}
    assert {
        "incident-registry-server",
        "incident-registry-worker",
        "incident-registry-health",
        "incidents",
    } <= scripts
    python = str(image.venv / "bin" / "python")
    out = subprocess.run(
        [
            python,
            "-c",
            "import importlib.util as u, service, projections, incident_registry_client, typer;"
            "print(service.__file__); print(projections.__file__);"
            "print(incident_registry_client.__file__); print(u.find_spec('setuptools'))",
        ],
        capture_output=True,
        text=True,
        cwd=image.root,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    # Installed into the virtualenv (not run from the sources), without the build tools.
    for path in out[:3]:
        assert path.startswith(str(image.venv)), path
    assert out[3] == "None"


def test_the_cmd_serves_until_the_healthcheck_passes_and_exits_0_on_sigterm(image, start, tmp_path):
    env = image.environment(data_dir(tmp_path, "data"))
    assert health(image, env).returncode == 1, "healthy before the server started"
    server = start(image.command("CMD", env), env, "server")
    wait_healthy(image, env, server)
    started = server.wait_for_event("server_started")
    assert started["store"] == "sqlite"
    assert started["sqlite_path"] == env["INCIDENTS_SQLITE_PATH"]
    liveness = [*image.command("HEALTHCHECK", env), "--service", "liveness"]
    run(liveness, env)
    assert server.terminate() == 0, server.output()
    assert [event["event"] for event in server.events()][-2:] == [
        "server_stopping",
        "server_stopped",
    ]
    assert health(image, env).returncode == 1, "still healthy after the server stopped"


def test_migrate_creates_the_tables_and_exits_0(image, tmp_path):
    data = data_dir(tmp_path, "data")
    env = image.environment(data)
    migrate = [*image.command("CMD", env), "migrate"]
    run(migrate, env)
    assert "stored_events" in tables(Path(env["INCIDENTS_SQLITE_PATH"]))
    projections = sorted(data.glob("*.sqlite"))
    assert len(projections) == 2, projections
    assert all(tables(path) for path in projections)
    run(migrate, env)  # again: nothing to do, still 0


def test_the_operator_cli_runs(image, tmp_path):
    env = image.environment(data_dir(tmp_path, "data"))
    out = run([image.executable("incidents", env), "--help"], env)
    assert "Usage" in out


def test_the_worker_starts_and_exits_0_on_sigterm(image, start, tmp_path):
    env = image.environment(data_dir(tmp_path, "data"))
    worker = start([image.executable("incident-registry-worker", env)], env, "worker")
    worker.wait_for_event("projection_worker_started")
    assert worker.terminate() == 0, worker.output()


def test_the_server_and_the_worker_serve_metrics_on_the_metrics_port(image, start, tmp_path):
    # EXPOSE 9464, Prometheus and the worker's Kubernetes probes rely on GET /metrics there.
    env = image.environment(data_dir(tmp_path, "data"))
    server = start(image.command("CMD", env), env, "server")
    wait_healthy(image, env, server)
    assert "# TYPE" in metrics_text(env["INCIDENTS_METRICS_PORT"], server)
    worker_env = {**env, "INCIDENTS_METRICS_PORT": str(free_port())}
    worker = start([image.executable("incident-registry-worker", worker_env)], worker_env, "w")
    worker.wait_for_event("projection_worker_started")
    assert "# TYPE" in metrics_text(worker_env["INCIDENTS_METRICS_PORT"], worker)
    assert worker.terminate() == 0, worker.output()
    assert server.terminate() == 0, server.output()


@pytest.mark.postgres
def test_the_kubernetes_settings_run_on_postgresql(image, start, tmp_path, postgres):
    """registry.env's settings on a real PostgreSQL: two migrations at once (one per server
    pod's initContainer), then a server and the worker, as deploy/k8s runs them."""
    with fresh_schema(postgres) as pg:
        env = {
            **image.environment(data_dir(tmp_path, "data")),
            **deployment_settings(pg),
            "INCIDENTS_LISTEN_ADDRESS": f"0.0.0.0:{free_port()}",
            "INCIDENTS_METRICS_PORT": str(free_port()),
        }
        migrate = [*image.command("CMD", env), "migrate"]
        with futures.ThreadPoolExecutor(max_workers=2) as pool:
            outputs = list(pool.map(lambda _: run(migrate, env), range(2)))
        assert all("schema_migrated" in output for output in outputs)
        server = start(image.command("CMD", env), env, "server")
        wait_healthy(image, env, server)
        assert server.wait_for_event("server_started")["store"] == "postgres"
        worker_env = {**env, "INCIDENTS_METRICS_PORT": str(free_port())}
        worker = start(
            [image.executable("incident-registry-worker", worker_env)], worker_env, "worker"
        )
        worker.wait_for_event("projection_worker_started")
        assert worker.terminate() == 0, worker.output()
        assert server.terminate() == 0, server.output()


def deployment_settings(pg: PostgresSettings) -> dict[str, str]:
    """deploy/k8s/registry.env, with the test's PostgreSQL server and schema."""
    settings = env_file(K8S / "registry.env")
    assert settings["INCIDENTS_MIGRATE_ON_START"] == "false"
    return {
        **settings,
        "INCIDENTS_POSTGRES_HOST": pg.host,
        "INCIDENTS_POSTGRES_PORT": str(pg.port),
        "INCIDENTS_POSTGRES_DB": pg.dbname,
        "INCIDENTS_POSTGRES_USER": pg.user,
        "INCIDENTS_POSTGRES_PASSWORD": pg.password,
        "INCIDENTS_POSTGRES_SCHEMA": pg.schema,
    }
