"""Session fixtures: a private Mosquitto and PostgreSQL, started here, never by hand."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support import Mosquitto, Postgres


@pytest.fixture(scope="session")
def mosquitto() -> Iterator[Mosquitto]:
    broker = Mosquitto()
    broker.start()
    yield broker
    broker.cleanup()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    url = os.environ.get("TILLSYN_TEST_PG_URL")
    if url:
        yield url
        return
    pg = Postgres()
    pg.start()
    yield pg.url
    pg.cleanup()


_counter = {"n": 0}


@pytest.fixture
def pg_url(pg_server: str) -> str:
    """A fresh database per test on the private server."""
    import sqlalchemy as sa

    from gateway.storage.engine import sqlalchemy_url

    _counter["n"] += 1
    name = f"t{os.getpid()}_{_counter['n']}"
    admin = sa.create_engine(sqlalchemy_url(pg_server), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return pg_server.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """Each storage test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/tillsyn.db"
    return str(request.getfixturevalue("pg_url"))
