"""Marks for running a test against each event store."""

from __future__ import annotations

import pytest

BOTH_STORES = pytest.mark.parametrize("backend_factory", ["sqlite", "postgres"], indirect=True)
"""Runs a test on a server over SQLite and over PostgreSQL (see tests/conftest.py)."""
