"""Configuration, read once from environment variables by the composition root."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from service.domain.wave import AREA_KINDS, WaveRule
from service.security.limits import LimitConfigError, LimitSettings, limits_from_env
from service.security.settings import SecurityConfigError, SecuritySettings, security_from_env
from service.store.cipher import Keyring, KeyringError, keyring_from_env
from service.store.postgres import PostgresSettings

MAX_WAVE_WINDOW_HOURS = 366 * 24
"""The longest window a wave may be detected in: 366 days."""

MAX_PROCESSES = 64
"""The most server processes one `incident-registry-server` may run on its port."""

TRACING_MODES = ("none", "otlp", "console")
"""INCIDENTS_TRACING: off, spans exported over OTLP/gRPC, or spans printed (`service.tracing`)."""


class ConfigError(ValueError):
    """Raised when an environment variable has an invalid value."""


@dataclass(frozen=True)
class Settings:
    """Every setting of the server; see the README's configuration table."""

    listen_address: str = "localhost:50051"
    store: str = "sqlite"
    sqlite_path: Path = Path("data/incidents.sqlite")
    sqlite_projections_path: Path = Path("data/projections.sqlite")
    sqlite_synchronous: str = "FULL"
    area_catalog: str = "brussels"
    log_format: str = "json"
    log_level: str = "info"
    shutdown_grace_seconds: float = 10.0
    max_batch: int = 256
    read_threads: int = 8
    poll_interval_seconds: float = 0.1
    projections_in_process: bool = True
    subscriber_stall_seconds: float = 30.0
    server_processes: int = 1
    reuse_port: bool = False
    process_index: int = 0
    migrate_on_start: bool = True
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    tracing: str = "none"
    """OpenTelemetry tracing of gRPC calls, one of TRACING_MODES (INCIDENTS_TRACING)."""
    postgres: PostgresSettings = field(default_factory=PostgresSettings)
    wave_rule: WaveRule = field(default_factory=WaveRule)
    encryption: Keyring | None = None
    """Encryption at rest of event states (None: off), from INCIDENTS_ENCRYPTION_KEY_FILE or
    INCIDENTS_ENCRYPTION_KEY."""
    security: SecuritySettings = field(default_factory=SecuritySettings)
    """TLS and authentication (INCIDENTS_TLS_*, INCIDENTS_AUTH*, INCIDENTS_ALLOW_PLAINTEXT)."""
    limits: LimitSettings = field(default_factory=LimitSettings)
    """Request size, call duration and per-caller limits (INCIDENTS_LIMIT_*, INCIDENTS_MAX_*)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from `env` (default: the process environment)."""
        env = os.environ if env is None else env
        defaults = cls()
        log_format = env.get("INCIDENTS_LOG_FORMAT", defaults.log_format)
        if log_format not in {"json", "console"}:
            msg = f"INCIDENTS_LOG_FORMAT must be 'json' or 'console', not {log_format!r}"
            raise ConfigError(msg)
        synchronous = env.get("INCIDENTS_SQLITE_SYNCHRONOUS", defaults.sqlite_synchronous).upper()
        if synchronous not in {"FULL", "NORMAL", "EXTRA"}:
            msg = f"INCIDENTS_SQLITE_SYNCHRONOUS must be FULL, NORMAL or EXTRA, not {synchronous!r}"
            raise ConfigError(msg)
        tracing = env.get("INCIDENTS_TRACING", defaults.tracing).strip().lower()
        if tracing not in TRACING_MODES:
            msg = f"INCIDENTS_TRACING must be one of {', '.join(TRACING_MODES)}, not {tracing!r}"
            raise ConfigError(msg)
        store = env.get("INCIDENTS_STORE", defaults.store)
        if store not in {"sqlite", "postgres"}:
            msg = f"INCIDENTS_STORE must be 'sqlite' or 'postgres', not {store!r}"
            raise ConfigError(msg)
        pg = defaults.postgres
        postgres = PostgresSettings(
            host=env.get("INCIDENTS_POSTGRES_HOST", pg.host),
            port=int(_number(env, "INCIDENTS_POSTGRES_PORT", pg.port, minimum=1)),
            dbname=env.get("INCIDENTS_POSTGRES_DB", pg.dbname),
            user=env.get("INCIDENTS_POSTGRES_USER", pg.user),
            password=env.get("INCIDENTS_POSTGRES_PASSWORD", pg.password),
            schema=env.get("INCIDENTS_POSTGRES_SCHEMA", pg.schema),
            pool_size=int(_number(env, "INCIDENTS_POSTGRES_POOL_SIZE", pg.pool_size, minimum=2)),
            max_overflow=int(_number(env, "INCIDENTS_POSTGRES_MAX_OVERFLOW", pg.max_overflow)),
            connect_timeout=_number(env, "INCIDENTS_POSTGRES_CONNECT_TIMEOUT", pg.connect_timeout),
            lock_timeout=int(_number(env, "INCIDENTS_POSTGRES_LOCK_TIMEOUT", pg.lock_timeout)),
        )
        sqlite_path = Path(env.get("INCIDENTS_SQLITE_PATH", str(defaults.sqlite_path)))
        waves = defaults.wave_rule
        wave_area_kind = env.get("INCIDENTS_WAVE_AREA_KIND", waves.area_kind).strip().lower()
        if wave_area_kind not in AREA_KINDS:
            msg = f"INCIDENTS_WAVE_AREA_KIND must be one of {AREA_KINDS}, not {wave_area_kind!r}"
            raise ConfigError(msg)
        wave_rule = WaveRule(
            min_shootings=_whole(env, "INCIDENTS_WAVE_MIN_SHOOTINGS", waves.min_shootings, 2),
            window_hours=_whole(
                env, "INCIDENTS_WAVE_WINDOW_HOURS", waves.window_hours, 1, MAX_WAVE_WINDOW_HOURS
            ),
            area_kind=wave_area_kind,
        )
        return cls(
            listen_address=env.get("INCIDENTS_LISTEN_ADDRESS", defaults.listen_address),
            store=store,
            sqlite_path=sqlite_path,
            sqlite_projections_path=Path(
                env.get(
                    "INCIDENTS_SQLITE_PROJECTIONS_PATH",
                    str(sqlite_path.with_name("projections.sqlite")),
                )
            ),
            sqlite_synchronous=synchronous,
            area_catalog=env.get("INCIDENTS_AREA_CATALOG", defaults.area_catalog),
            log_format=log_format,
            log_level=env.get("INCIDENTS_LOG_LEVEL", defaults.log_level).lower(),
            shutdown_grace_seconds=_number(env, "INCIDENTS_SHUTDOWN_GRACE_SECONDS", 10.0),
            max_batch=int(_number(env, "INCIDENTS_MAX_BATCH", defaults.max_batch, minimum=1)),
            read_threads=int(
                _number(env, "INCIDENTS_READ_THREADS", defaults.read_threads, minimum=1)
            ),
            poll_interval_seconds=_number(
                env, "INCIDENTS_POLL_INTERVAL_SECONDS", defaults.poll_interval_seconds
            ),
            subscriber_stall_seconds=_number(
                env, "INCIDENTS_SUBSCRIBER_STALL_SECONDS", defaults.subscriber_stall_seconds
            ),
            postgres=postgres,
            projections_in_process=_flag(
                env, "INCIDENTS_PROJECTIONS_IN_PROCESS", defaults.projections_in_process
            ),
            wave_rule=wave_rule,
            server_processes=_whole(
                env, "INCIDENTS_SERVER_PROCESSES", defaults.server_processes, 1, MAX_PROCESSES
            ),
            reuse_port=_flag(env, "INCIDENTS_REUSE_PORT", defaults.reuse_port),
            process_index=_whole(
                env, "INCIDENTS_PROCESS_INDEX", defaults.process_index, 0, MAX_PROCESSES - 1
            ),
            migrate_on_start=_flag(env, "INCIDENTS_MIGRATE_ON_START", defaults.migrate_on_start),
            metrics_host=env.get("INCIDENTS_METRICS_HOST", defaults.metrics_host),
            metrics_port=_whole(env, "INCIDENTS_METRICS_PORT", defaults.metrics_port, 0, 65535),
            tracing=tracing,
            encryption=_encryption(env),
            security=_security(env),
            limits=_limits(env),
        )


def _encryption(env: Mapping[str, str]) -> Keyring | None:
    """The INCIDENTS_ENCRYPTION_* block: the keyring of encryption at rest, if configured."""
    try:
        return keyring_from_env(env)
    except KeyringError as err:
        raise ConfigError(str(err)) from None


def _limits(env: Mapping[str, str]) -> LimitSettings:
    """The INCIDENTS_LIMIT_* / INCIDENTS_MAX_* block (service.security.limits)."""
    try:
        return limits_from_env(env)
    except LimitConfigError as err:
        raise ConfigError(str(err)) from None


def _security(env: Mapping[str, str]) -> SecuritySettings:
    """The INCIDENTS_TLS_* / INCIDENTS_AUTH* block (service.security.settings)."""
    try:
        return security_from_env(env)
    except SecurityConfigError as err:
        raise ConfigError(str(err)) from None


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    msg = f"{name} must be true or false, not {raw!r}"
    raise ConfigError(msg)


def _number(env: Mapping[str, str], name: str, default: float, minimum: float = 0) -> float:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        msg = f"{name} must be a number, not {raw!r}"
        raise ConfigError(msg) from None
    if value < minimum:
        msg = f"{name} must be at least {minimum}, not {raw!r}"
        raise ConfigError(msg)
    return value


def _whole(
    env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int | None = None
) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        msg = f"{name} must be a whole number, not {raw!r}"
        raise ConfigError(msg) from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"at least {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        msg = f"{name} must be {bounds}, not {raw!r}"
        raise ConfigError(msg)
    return value
