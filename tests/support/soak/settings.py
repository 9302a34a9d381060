"""What a soak run starts and how hard it drives the server, and the load's fixed values."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from service.store.postgres import PostgresSettings
from tests.support.soak.judgement import Limits

ACTOR = (("x-actor", "soak@fedpol.example"),)
MUNICIPALITIES = ("21001", "21004", "21007", "21009", "21013", "21015")
COMMAND_ZONE = "5341"  # police zone Midi; only the first writer unifies commands
READ_YOUR_WRITES_AGE = 1.0  # readers wait for positions acknowledged at least this long ago
SUBSCRIBER_CATCH_UP = 30.0  # seconds the long-lived subscribers get to reach the final head


@dataclass(frozen=True)
class SoakSettings:
    """What a soak run starts and how hard it drives the server."""

    store: str  # "sqlite" or "postgres"
    seconds: float
    workdir: Path
    postgres: PostgresSettings | None = None
    writers: int = 3
    readers: int = 2
    churners: int = 2
    long_subscribers: int = 2
    pace: float = 0.02
    call_timeout: float = 20.0
    sample_interval: float = 0.5
    limits: Limits = field(default_factory=Limits)
    seed: int = 7
