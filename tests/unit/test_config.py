from pathlib import Path

import pytest

from service.config import ConfigError, Settings
from service.domain.wave import WaveRule
from service.store.postgres import PostgresSettings


def test_defaults_serve_sqlite_on_localhost_50051():
    settings = Settings.from_env({})
    assert settings.listen_address == "localhost:50051"
    assert settings.sqlite_path == Path("data/incidents.sqlite")
    assert settings.sqlite_projections_path == Path("data/projections.sqlite")
    assert settings.sqlite_synchronous == "FULL"
    assert settings.area_catalog == "brussels"


def test_every_variable_is_read():
    settings = Settings.from_env(
        {
            "INCIDENTS_LISTEN_ADDRESS": "0.0.0.0:6000",
            "INCIDENTS_SQLITE_PATH": "/tmp/x.sqlite",
            "INCIDENTS_SQLITE_PROJECTIONS_PATH": "/tmp/read-models.sqlite",
            "INCIDENTS_SQLITE_SYNCHRONOUS": "normal",
            "INCIDENTS_AREA_CATALOG": "toronto",
            "INCIDENTS_LOG_FORMAT": "console",
            "INCIDENTS_LOG_LEVEL": "DEBUG",
            "INCIDENTS_SHUTDOWN_GRACE_SECONDS": "2.5",
            "INCIDENTS_MAX_BATCH": "64",
            "INCIDENTS_READ_THREADS": "2",
            "INCIDENTS_SERVER_PROCESSES": "3",
            "INCIDENTS_REUSE_PORT": "yes",
            "INCIDENTS_PROCESS_INDEX": "2",
            "INCIDENTS_MIGRATE_ON_START": "false",
            "INCIDENTS_METRICS_HOST": "0.0.0.0",
            "INCIDENTS_METRICS_PORT": "9464",
        }
    )
    assert settings == Settings(
        listen_address="0.0.0.0:6000",
        sqlite_path=Path("/tmp/x.sqlite"),
        sqlite_projections_path=Path("/tmp/read-models.sqlite"),
        sqlite_synchronous="NORMAL",
        area_catalog="toronto",
        log_format="console",
        log_level="debug",
        shutdown_grace_seconds=2.5,
        max_batch=64,
        read_threads=2,
        server_processes=3,
        reuse_port=True,
        process_index=2,
        migrate_on_start=False,
        metrics_host="0.0.0.0",
        metrics_port=9464,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("INCIDENTS_LOG_FORMAT", "xml"),
        ("INCIDENTS_SQLITE_SYNCHRONOUS", "OFF"),
        ("INCIDENTS_MAX_BATCH", "0"),
        ("INCIDENTS_SHUTDOWN_GRACE_SECONDS", "soon"),
        ("INCIDENTS_SERVER_PROCESSES", "0"),
        ("INCIDENTS_SERVER_PROCESSES", "65"),
        ("INCIDENTS_REUSE_PORT", "maybe"),
        ("INCIDENTS_MIGRATE_ON_START", "2"),
        ("INCIDENTS_METRICS_PORT", "70000"),
    ],
)
def test_invalid_values_are_refused_with_the_variable_named(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_postgres_is_selected_and_configured_from_the_environment():
    settings = Settings.from_env(
        {
            "INCIDENTS_STORE": "postgres",
            "INCIDENTS_POSTGRES_HOST": "db",
            "INCIDENTS_POSTGRES_PORT": "6543",
            "INCIDENTS_POSTGRES_DB": "registry",
            "INCIDENTS_POSTGRES_USER": "registry",
            "INCIDENTS_POSTGRES_PASSWORD": "secret",
            "INCIDENTS_POSTGRES_SCHEMA": "incidents",
            "INCIDENTS_POSTGRES_POOL_SIZE": "10",
            "INCIDENTS_POSTGRES_MAX_OVERFLOW": "2",
            "INCIDENTS_POSTGRES_CONNECT_TIMEOUT": "3",
            "INCIDENTS_POSTGRES_LOCK_TIMEOUT": "7",
            "INCIDENTS_POLL_INTERVAL_SECONDS": "0.25",
            "INCIDENTS_SUBSCRIBER_STALL_SECONDS": "12",
        }
    )
    assert settings.store == "postgres"
    assert settings.postgres == PostgresSettings(
        host="db",
        port=6543,
        dbname="registry",
        user="registry",
        password="secret",
        schema="incidents",
        pool_size=10,
        max_overflow=2,
        connect_timeout=3.0,
        lock_timeout=7,
    )
    assert (settings.poll_interval_seconds, settings.subscriber_stall_seconds) == (0.25, 12.0)


def test_an_unknown_store_is_refused():
    with pytest.raises(ConfigError, match="INCIDENTS_STORE"):
        Settings.from_env({"INCIDENTS_STORE": "mongodb"})


def test_projections_can_be_left_to_worker_processes():
    assert Settings.from_env({}).projections_in_process is True
    assert (
        Settings.from_env({"INCIDENTS_PROJECTIONS_IN_PROCESS": "false"}).projections_in_process
        is False
    )
    with pytest.raises(ConfigError, match="INCIDENTS_PROJECTIONS_IN_PROCESS"):
        Settings.from_env({"INCIDENTS_PROJECTIONS_IN_PROCESS": "sometimes"})


def test_waves_are_three_shootings_in_72_hours_by_municipality_by_default():
    assert Settings.from_env({}).wave_rule == WaveRule(
        min_shootings=3, window_hours=72, area_kind="municipality"
    )


def test_the_wave_rule_is_read_from_the_environment():
    settings = Settings.from_env(
        {
            "INCIDENTS_WAVE_MIN_SHOOTINGS": "5",
            "INCIDENTS_WAVE_WINDOW_HOURS": "24",
            "INCIDENTS_WAVE_AREA_KIND": "police_zone",
        }
    )
    assert settings.wave_rule == WaveRule(min_shootings=5, window_hours=24, area_kind="police_zone")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("INCIDENTS_WAVE_MIN_SHOOTINGS", "1"),
        ("INCIDENTS_WAVE_MIN_SHOOTINGS", "2.5"),
        ("INCIDENTS_WAVE_MIN_SHOOTINGS", "three"),
        ("INCIDENTS_WAVE_WINDOW_HOURS", "0"),
        ("INCIDENTS_WAVE_WINDOW_HOURS", "8785"),
        ("INCIDENTS_WAVE_AREA_KIND", "city"),
    ],
)
def test_invalid_wave_settings_are_refused_with_the_variable_named(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})
