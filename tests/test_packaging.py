"""The installed package, not the checkout: what `pip install .` (the systemd set-up and the
container image in deploy/) puts on disk must run the gateway on its own.

A wheel is built from this checkout and installed into a folder of its own; the gateway
then runs from that folder, in another working directory, with the checkout out of reach,
against a real Mosquitto: it must find its device profiles, migrations and web files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.broker import free_port
from gateway.storage.store import Store
from tests.gateway_proc import health
from tests.homes import write_config
from tests.mqtt_client import Publisher
from tests.support import ROOT, Mosquitto, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_installed_wheel_runs_the_gateway(mosquitto: Mosquitto, tmp_path: Path) -> None:
    # Build from a copy of the checkout's files (tracked or new, not ignored), so that
    # nothing a former build left behind (build/, *.egg-info) can end up in the wheel.
    src = tmp_path / "src"
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file() and not name.startswith(("data/", "tests/", "docs/")):
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(wheels), str(src)], check=True, capture_output=True, timeout=300)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(site), *map(str, wheels.glob("tillsyn-*.whl"))], check=True,
                   capture_output=True, timeout=300)
    assert sorted(p.name for p in (site / "device_profiles").glob("*.yaml")) == [
        "chirpstack.yaml", "owntracks.yaml", "tillsyn.yaml", "tts.yaml", "zigbee2mqtt.yaml"]

    work = tmp_path / "work"
    work.mkdir()
    port = free_port()
    db = f"sqlite:///{work}/t.db"
    cfg = write_config(work, mosquitto.url, db, client_id="gw-wheel", api_port=port)
    # The installed copy first; the checkout is neither the working directory nor on the path.
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONSAFEPATH": "1"}
    where = subprocess.run([sys.executable, "-c", "import gateway; print(gateway.__file__)"],
                           env=env, cwd=work, capture_output=True, text=True, check=True)
    assert where.stdout.strip().startswith(str(site))
    upgrade = subprocess.run([sys.executable, "-m", "gateway", "db", "upgrade", "--config",
                              str(cfg)], env=env, cwd=work, capture_output=True, text=True,
                             timeout=120)
    assert upgrade.returncode == 0, upgrade.stderr
    log = (work / "gw.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(cfg)],
                            env=env, cwd=work, stdout=log, stderr=log)
    store = Store(db)
    try:
        wait_for(lambda: health(port).get("status") == "ok", 60, what="installed gateway up")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            assert b"<html" in r.read().lower()  # the web board's files are installed
        with Publisher(mosquitto.url, client_id="pub-wheel") as pub:
            wait_for(lambda: health(port).get("mqtt_connected") is True, what="connected")
            pub.publish_many([("zigbee2mqtt/hall-pir-0", b'{"occupancy": true}')])

        def stored() -> int:
            with store.engine.connect() as conn:
                return int(conn.execute(sa.text(
                    "SELECT count(*) FROM observations WHERE kind = 'motion'")).scalar_one())
        wait_for(lambda: stored() == 1, what="a message decoded by a shipped profile")
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
        store.close()
