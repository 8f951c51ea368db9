"""Shared fixtures: a fresh warehouse on real SQLite and on the machine's real PostgreSQL.

PostgreSQL tests get a database created for the test session and dropped after. Where no server
is reachable they skip with the reason, except in CI (CI=true or LPM_REQUIRE_POSTGRES=1),
where an unreachable server is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from warehouse.db import open_warehouse

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT.parent / "shared" / "reference"
POSTGRES_ADMIN_URL = os.environ.get(
    "LPM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _postgres_required() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("LPM_REQUIRE_POSTGRES") == "1"


def _admin_conninfo() -> str:
    url = make_url(POSTGRES_ADMIN_URL)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A database of its own on the real PostgreSQL server, as a SQLAlchemy URL."""
    name = f"lpm_test_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(_admin_conninfo(), autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc}".strip()
        if _postgres_required():
            pytest.fail(f"{reason} (CI requires PostgreSQL)")
        pytest.skip(reason)
    yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _reset_postgres(url: str) -> None:
    with psycopg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False),
        autocommit=True,
    ) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty warehouse URL, once for SQLite and once for PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warehouse.db'}"
    url = request.getfixturevalue("postgres_server")
    _reset_postgres(url)
    return url


@pytest.fixture
def engine(warehouse_url: str) -> Iterator[Engine]:
    engine = open_warehouse(warehouse_url)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def environment_restored() -> Iterator[None]:
    """Secrets a test puts in the environment for its sandbox never reach a later test (a leaked
    token would turn another test's "missing secret" into a call to a sandbox long gone)."""
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)
