"""Device security: `tillsyn devices credentials` and the production Mosquitto configuration
in deploy/mosquitto/, tested on a real Mosquitto started from that very file."""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.reasoncodes import ReasonCode

from gateway.credentials import hash_matches, password_hash
from gateway.storage.schema import observations
from tests.homes import SITE, registry, running_ingest, two_units, write_config
from tests.support import (
    ROOT,
    Mosquitto,
    broker_owned,
    certificates,
    free_port,
    tillsyn,
    wait_for,
)

PROD_CONF = ROOT / "deploy" / "mosquitto" / "mosquitto.conf"


def _registry_with_two_units() -> dict[str, Any]:
    reg = two_units()
    reg["staff"].append({"id": "s-b", "name": "Night nurse B", "unit": "unit-b",
                         "role": "night_staff"})
    return reg


def _make_credentials(folder: Path, *args: str) -> tuple[int, str]:
    r = tillsyn("devices", "credentials", "--config", str(folder / "config.yaml"), "--out",
                str(folder / "creds"), *args)
    return r.returncode, r.stdout + r.stderr


def _passwords(folder: Path) -> dict[str, str]:
    with (folder / "creds" / "credentials.csv").open(newline="") as f:
        return {row["username"]: row["password"] for row in csv.DictReader(f)}


def _acl_blocks(folder: Path, name: str = "acl") -> dict[str, list[str]]:
    blocks: dict[str, list[str]] = {}
    user = ""
    for line in (folder / "creds" / name).read_text().splitlines():
        if line.startswith("user "):
            user = line[5:]
            blocks[user] = []
        elif line.startswith("topic "):
            blocks[user].append(line)
    return blocks


def test_acl_gives_each_account_only_its_own_topics(tmp_path: Path) -> None:
    write_config(tmp_path, "mqtt://127.0.0.1:1", f"sqlite:///{tmp_path}/t.db",
                 reg=_registry_with_two_units())
    code, output = _make_credentials(tmp_path, "--bridge", "z2m-home=zigbee2mqtt/")
    assert code == 0, output
    acl = _acl_blocks(tmp_path)
    # Written by reading the profiles: occupancy has the device topic and /availability.
    assert acl["hall-pir-0"] == ["topic write zigbee2mqtt/hall-pir-0",
                                 "topic write zigbee2mqtt/hall-pir-0/availability"]
    assert acl["bed-0"] == [f"topic write tillsyn/v1/{SITE}/bed-0/event",
                            f"topic write tillsyn/v1/{SITE}/bed-0/state",
                            f"topic write tillsyn/v1/{SITE}/bed-0/heartbeat"]
    assert all(line.startswith("topic write ") for line in acl["alarm-1"])
    # The bridge covers the zigbee2mqtt devices of both homes, nothing else.
    bridge = acl["z2m-home"]
    assert "topic write zigbee2mqtt/door-1" in bridge
    assert not any("owntracks" in line or "tillsyn/v1" in line for line in bridge)
    status = f"topic read tillsyn/v1/{SITE}/status"  # everyone may watch the gateway live
    assert acl["s-17"] == [f"topic read tillsyn/v1/{SITE}/alerts/unit-a", status]
    assert acl["s-b"] == [f"topic read tillsyn/v1/{SITE}/alerts/unit-b", status]
    assert acl["s-admin"] == [f"topic read tillsyn/v1/{SITE}/alerts/+", status]
    # The gateway's account is on the gateway listener only, alone.
    assert "tillsyn-gateway" not in acl
    assert list(_acl_blocks(tmp_path, "acl-gateway")) == ["tillsyn-gateway"]
    gw = _acl_blocks(tmp_path, "acl-gateway")["tillsyn-gateway"]
    assert f"topic write tillsyn/v1/{SITE}/alerts/#" in gw
    assert f"topic write tillsyn/v1/{SITE}/status" in gw  # its status and last will
    assert "topic read zigbee2mqtt/lock-1" in gw
    mode = (tmp_path / "creds" / "credentials.csv").stat().st_mode & 0o777
    assert mode == 0o600


def test_rerun_keeps_passwords_rotates_on_request_and_drops_removed(tmp_path: Path) -> None:
    reg = registry(2)
    write_config(tmp_path, "mqtt://127.0.0.1:1", f"sqlite:///{tmp_path}/t.db", reg=reg)
    assert _make_credentials(tmp_path)[0] == 0
    first = _passwords(tmp_path)
    first_hashes = (tmp_path / "creds" / "passwd").read_text()
    assert len(set(first.values())) == len(first)  # every account its own password
    reg["residents"].pop(1)
    write_config(tmp_path, "mqtt://127.0.0.1:1", f"sqlite:///{tmp_path}/t.db", reg=reg)
    code, output = _make_credentials(tmp_path, "--rotate", "door-0")
    assert code == 0, output
    second = _passwords(tmp_path)
    assert "hall-pir-1" not in second and "removed" in output and "hall-pir-1" in output
    assert second["door-0"] != first["door-0"]
    assert second["hall-pir-0"] == first["hall-pir-0"]
    hashes = dict(line.split(":", 1) for line in
                  (tmp_path / "creds" / "passwd").read_text().splitlines())
    assert hash_matches(hashes["door-0"], second["door-0"])
    assert f"hall-pir-0:{hashes['hall-pir-0']}" in first_hashes  # unchanged line kept


def test_bad_options_are_one_clear_line_and_status_2(tmp_path: Path) -> None:
    write_config(tmp_path, "mqtt://127.0.0.1:1", f"sqlite:///{tmp_path}/t.db")
    code, output = _make_credentials(tmp_path, "--rotate", "no-such-device")
    assert code == 2 and "--rotate: 'no-such-device' is not" in output
    code, output = _make_credentials(tmp_path, "--bridge", "x=owntracks/#")
    assert code == 2 and "--bridge: value 'x=owntracks/#'" in output
    code, output = _make_credentials(tmp_path, "--bridge", "lns=application/")
    assert code == 2 and "matches no registered device topic" in output


def test_hash_format_is_mosquittos() -> None:
    # Mosquitto's own tool wrote this line for password "secret"; our check must accept it
    # and reject another password.
    line = ("$7$101$NcR6sJmyX11nQhkd$xJZzC4wyv/PoarLJwhzZc06j3kjIZU7h0YWRiLqfBhMxCzbIAOeVC03A"
            "gqBetc8uv81plPhlP7SooW2umFknHA==")
    assert hash_matches(line, "secret")
    assert not hash_matches(line, "Secret")
    assert password_hash("x").startswith("$7$101$")


@pytest.fixture
def prod_broker(tmp_path: Path) -> Iterator[tuple[Mosquitto, Path, dict[str, str]]]:
    """Mosquitto started from deploy/mosquitto/mosquitto.conf with our generated files, the
    key and password files owned by the broker's user with mode 0600 (docs/deploy.md).
    The gateway listener's port is `broker.gateway_port`."""
    broker = Mosquitto()
    broker.gateway_port = free_port()  # type: ignore[attr-defined]
    write_config(tmp_path, f"mqtts://localhost:{broker.port}", f"sqlite:///{tmp_path}/t.db",
                 reg=_registry_with_two_units())
    code, output = _make_credentials(tmp_path)
    assert code == 0, output
    etc = broker.dir / "etc"  # inside the broker's folder: mosquitto drops to its own user
    etc.mkdir()
    certs = certificates(etc, owner="mosquitto")
    for name in ("passwd", "acl", "passwd-gateway", "acl-gateway"):
        (etc / name).write_bytes((tmp_path / "creds" / name).read_bytes())
        (etc / name).chmod((tmp_path / "creds" / name).stat().st_mode & 0o777)
    assert (etc / "passwd").stat().st_mode & 0o777 == 0o600
    assert (etc / "server.key").stat().st_mode & 0o777 == 0o600
    broker_owned(etc / "passwd", etc / "passwd-gateway")
    text = PROD_CONF.read_text()
    text = text.replace("/etc/mosquitto/tillsyn/", f"{etc}/")
    text = text.replace("/var/lib/mosquitto/", f"{broker.dir}/")
    text = text.replace("listener 8883", f"listener {broker.port}")
    text = text.replace("listener 8884",
                        f"listener {broker.gateway_port}")  # type: ignore[attr-defined]
    text = text.replace("log_dest syslog", f"log_dest file {broker.dir}/mosquitto.log")
    settings = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert not any(" /etc/mosquitto" in ln or " /var/lib" in ln for ln in settings)
    broker.conf_text = text
    broker.start()
    yield broker, certs["ca.crt"], _passwords(tmp_path)
    broker.cleanup()


class Client:
    """A paho MQTT 5 client that records CONNACK, PUBACK reason codes and messages."""

    def __init__(self, broker: Mosquitto, ca: Path, user: str | None, password: str | None,
                 client_id: str, port: int | None = None) -> None:
        self.connack: ReasonCode | None = None
        self.acks: dict[int, ReasonCode] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.subacks: list[list[ReasonCode]] = []
        self.connected = threading.Event()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv5)
        if user is not None:
            self.c.username_pw_set(user, password)
        self.c.tls_set(ca_certs=str(ca))
        self.c.on_connect = self._on_connect
        self.c.on_publish = lambda c, u, mid, rc, p: self.acks.__setitem__(mid, rc)
        self.c.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.append(list(rcs))
        self.c.connect("localhost", port or broker.port)
        self.c.loop_start()

    def _on_connect(self, c: object, u: object, flags: object, rc: ReasonCode,
                    p: object) -> None:
        self.connack = rc
        self.connected.set()

    def publish(self, topic: str, payload: bytes) -> int:
        info = self.c.publish(topic, payload, qos=1)
        wait_for(lambda: info.mid in self.acks, 10, what=f"PUBACK for {topic}")
        return int(self.acks[info.mid].value)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def test_production_broker_enforces_accounts_and_acl(
        prod_broker: tuple[Mosquitto, Path, dict[str, str]], tmp_path: Path) -> None:
    broker, ca, pw = prod_broker
    url = f"mqtts://localhost:{broker.gateway_port}"  # type: ignore[attr-defined]
    gw_conf = {"ca_file": str(ca), "username": "tillsyn-gateway",
               "password": pw["tillsyn-gateway"]}
    clients: list[Client] = []

    def client(user: str | None, password: str | None, cid: str,
               port: int | None = None) -> Client:
        clients.append(Client(broker, ca, user, password, cid, port))
        clients[-1].connected.wait(10)
        return clients[-1]

    try:
        # Unknown clients cannot connect: anonymous, unknown user, wrong password.
        for user, password in [(None, None), ("intruder", "x"),
                               ("hall-pir-0", pw["door-0"])]:
            c = client(user, password, f"bad-{user}")
            assert c.connack is not None and c.connack.is_failure, (user, c.connack)
            assert int(c.connack.value) in (134, 135)  # bad user name or password / not authorised
        (tmp_path / "gw").mkdir()
        with running_ingest(tmp_path / "gw", url, f"sqlite:///{tmp_path}/gw.db", "gw-sec",
                            reg=_registry_with_two_units(), mqtt=gw_conf) as (rt, _):
            nurse_a = client("s-17", pw["s-17"], "nurse-a")
            nurse_a.c.subscribe(f"tillsyn/v1/{SITE}/alerts/#", qos=1)
            pir = client("hall-pir-0", pw["hall-pir-0"], "pir-0")
            assert pir.connack is not None and not pir.connack.is_failure
            # A device cannot publish as another device: refused with reason code 135.
            assert pir.publish("zigbee2mqtt/door-0", b'{"contact":false}') == 135
            assert pir.publish("zigbee2mqtt/hall-pir-1", b'{"occupancy":true}') == 135
            assert pir.publish(f"tillsyn/v1/{SITE}/alerts/unit-a", b"{}") == 135
            # ... but may publish as itself, and the door as itself.
            assert pir.publish("zigbee2mqtt/hall-pir-0", b'{"occupancy":true}') == 0
            door = client("door-0", pw["door-0"], "door-0")
            assert door.publish("zigbee2mqtt/door-0", b'{"contact":true}') == 0
            wait_for(lambda: rt.store.count(observations) == 2, what="the two real messages")
            rows = {(r["device_id"], r["kind"]) for r in rt.store.observations("r-1000")}
            assert rows == {("hall-pir-0", "motion"), ("door-0", "contact")}
            assert rt.store.count(observations, device_id="hall-pir-1") == 0
            # Staff read only their unit's alerts: the gateway publishes to both units.
            # The gateway's account exists only on the gateway listener.
            assert client("tillsyn-gateway", pw["tillsyn-gateway"], "gw-x").connack.is_failure
            gw = client("tillsyn-gateway", pw["tillsyn-gateway"], "gw-pub",
                        broker.gateway_port)  # type: ignore[attr-defined]
            assert gw.publish(f"tillsyn/v1/{SITE}/alerts/unit-b", b'{"n":"b"}') == 0
            assert gw.publish(f"tillsyn/v1/{SITE}/alerts/unit-a", b'{"n":"a"}') == 0
            wait_for(lambda: len(nurse_a.messages) >= 1, what="unit-a alert to nurse A")
            nurse_a.close()  # disconnect flushes anything still on its way
            assert nurse_a.messages == [(f"tillsyn/v1/{SITE}/alerts/unit-a", b'{"n":"a"}')]
    finally:
        for c in clients:
            c.close()



def test_no_device_can_take_the_gateways_session(
        prod_broker: tuple[Mosquitto, Path, dict[str, str]], tmp_path: Path) -> None:
    """The finding of issue 22: `mosquitto_sub -u <a device> -i <the gateway's client id>`
    kicked the gateway off and threw its persistent session away. On the shipped
    configuration the device listener makes every client's id its user name, and the
    gateway listener knows no device: the gateway keeps its session, and every message the
    broker acknowledged is stored."""
    broker, ca, pw = prod_broker
    gw_port = broker.gateway_port  # type: ignore[attr-defined]
    gw_conf = {"ca_file": str(ca), "username": "tillsyn-gateway",
               "password": pw["tillsyn-gateway"]}
    clients: list[Client] = []
    stop = threading.Event()
    tries = {"device": 0, "gateway_listener": 0}

    def intruder() -> None:
        # The device's own account, the gateway's client id, on both listeners, again and
        # again while the door reports (the probe: six times in 12 s).
        while not stop.is_set():
            for port, key in ((broker.port, "device"), (gw_port, "gateway_listener")):
                c = Client(broker, ca, "hall-pir-0", pw["hall-pir-0"], "gw-sec", port)
                c.connected.wait(5)
                if key == "gateway_listener":
                    assert c.connack is not None and c.connack.is_failure
                tries[key] += 1
                time.sleep(0.3)
                c.close()

    (tmp_path / "gw").mkdir()
    with running_ingest(tmp_path / "gw", f"mqtts://localhost:{gw_port}",
                        f"sqlite:///{tmp_path}/gw.db", "gw-sec",
                        reg=_registry_with_two_units(), mqtt=gw_conf) as (rt, ingest):
        door = Client(broker, ca, "door-0", pw["door-0"], "door-0")
        clients.append(door)
        door.connected.wait(10)
        thread = threading.Thread(target=intruder, daemon=True)
        thread.start()
        acked = 0
        try:
            for i in range(120):
                acked += door.publish("zigbee2mqtt/door-0",
                                      b'{"contact":%s}' % (b"true" if i % 2 else b"false")) == 0
                time.sleep(0.05)
        finally:
            stop.set()
            thread.join(timeout=20)
        assert tries["device"] >= 6 and tries["gateway_listener"] >= 6
        wait_for(lambda: rt.store.count(observations, device_id="door-0") == acked, 30,
                 what=f"all {acked} acknowledged messages stored")
        assert acked == 120
        assert ingest.connected and not ingest.takeover_suspected()
        assert ingest.sessions_lost == 0 and list(ingest.disconnects) == []
    for c in clients:
        c.close()
