"""Every INCIDENTS_* setting the deployment files set is one the server or the worker reads."""

from __future__ import annotations

from pathlib import Path

from service.config import Settings
from tests.deploy.files import (
    DEPLOY,
    DOCKERFILE,
    SETTING,
    YAMLLINT_CONFIG,
    dockerfile_stages,
    run_tool,
    settings_read_by_the_code,
    tool,
)


def deployment_files() -> list[Path]:
    files = [DOCKERFILE, *(path for path in DEPLOY.rglob("*") if path.is_file())]
    return [path for path in files if "__pycache__" not in path.parts]


def test_the_code_reads_the_settings_of_service_config():
    read = settings_read_by_the_code()
    # A sample that must be found, or the search itself is broken.
    assert {"INCIDENTS_STORE", "INCIDENTS_POSTGRES_PASSWORD", "INCIDENTS_METRICS_PORT"} <= read


def test_every_setting_named_in_the_deployment_files_is_read_by_the_code() -> None:
    read = settings_read_by_the_code()
    named: dict[str, set[str]] = {}
    for path in deployment_files():
        for name in SETTING.findall(path.read_text(encoding="utf-8")):
            named.setdefault(name, set()).add(str(path.relative_to(DEPLOY.parent)))
    assert len(named) >= 15, sorted(named)
    unknown = {name: sorted(paths) for name, paths in named.items() if name not in read}
    assert unknown == {}


def test_the_image_environment_is_valid_settings():
    runtime = dockerfile_stages()[-1]
    env = {key: value for key, value in runtime.env().items() if key.startswith("INCIDENTS_")}
    settings = Settings.from_env(env)
    assert settings.store == "sqlite"
    assert str(settings.sqlite_path) == env["INCIDENTS_SQLITE_PATH"]
    assert settings.sqlite_projections_path.parent == settings.sqlite_path.parent


def test_yamllint_finds_nothing_in_deploy():
    # Relative to the repository root, as run_tool runs it there.
    listed = run_tool(tool("yamllint"), "--list-files", "-c", YAMLLINT_CONFIG, "deploy")
    linted = set(listed.stdout.split())
    yaml_files = {
        str(path.relative_to(DEPLOY.parent))
        for path in DEPLOY.rglob("*")
        if path.suffix in {".yaml", ".yml"}
    }
    assert yaml_files <= linted
    assert "deploy/compose.yaml" in linted
    result = run_tool(tool("yamllint"), "--strict", "-c", YAMLLINT_CONFIG, "deploy")
    assert result.returncode == 0, result.stdout + result.stderr
