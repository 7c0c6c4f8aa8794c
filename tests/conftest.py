"""Session fixtures: a private Mosquitto and PostgreSQL and a headless Chromium, started
here, never by hand."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.support import Mosquitto, Postgres


@pytest.fixture(scope="session")
def mosquitto() -> Iterator[Mosquitto]:
    broker = Mosquitto()
    broker.start()
    yield broker
    broker.cleanup()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium, driven by Playwright."""
    exe = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield b
        b.close()


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


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fall-risk model trained on 40 simulated residents (half of them slowing down),
    with the full model in force; read-only, shared by the tests that need one."""
    from gateway.risk.dataset import simulated
    from gateway.risk.train import train

    ds, _ = simulated(40, 150, 3, courses=["decline", "stable"])
    out = tmp_path_factory.mktemp("model")
    train(ds, out, seed=3, simulated=True, method="model", rounds=50)
    return out
