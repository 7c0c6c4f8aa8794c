"""The receiver's own MQTT 3.1.1 client against a real Mosquitto: TLS with a private CA,
keep-alive through idle periods, and a TLS server it must not trust."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.storage.schema import dead_letters, observations
from tests.homes import running_ingest
from tests.mqtt_client import Publisher
from tests.support import Mosquitto, certificates, wait_for


@pytest.fixture
def tls_broker() -> Iterator[tuple[Mosquitto, dict[str, Path]]]:
    broker = Mosquitto()
    # In the broker's own folder: mosquitto drops to its own user, who cannot enter tmp_path.
    certs = certificates(broker.dir / "certs")
    broker.extra = (f"cafile {certs['ca.crt']}\ncertfile {certs['server.crt']}\n"
                    f"keyfile {certs['server.key']}\ntls_version tlsv1.2\n")
    broker.start()
    yield broker, certs
    broker.cleanup()


def test_tls_with_a_private_ca(tls_broker: tuple[Mosquitto, dict[str, Path]],
                               tmp_path: Path) -> None:
    broker, certs = tls_broker
    url = f"mqtts://localhost:{broker.port}"
    with running_ingest(tmp_path, url, f"sqlite:///{tmp_path}/t.db", "gw-tls",
                        mqtt={"ca_file": str(certs["ca.crt"])}) as (rt, ingest):
        with Publisher(url, client_id="pub-tls", ca_file=str(certs["ca.crt"])) as pub:
            pub.publish_many([("zigbee2mqtt/hall-pir-0", b'{"occupancy":true}')] * 30)
        wait_for(lambda: rt.store.count(observations) == 30, what="30 stored over TLS")
        assert ingest.connected


def test_tls_server_not_signed_by_our_ca_is_refused(
        tls_broker: tuple[Mosquitto, dict[str, Path]], tmp_path: Path) -> None:
    broker, _ = tls_broker
    other = certificates(tmp_path / "other")  # a CA that did not sign the broker
    from gateway.runtime import build_ingest, load_runtime
    from tests.homes import write_config

    cfg = write_config(tmp_path, f"mqtts://localhost:{broker.port}",
                       f"sqlite:///{tmp_path}/t.db", client_id="gw-untrusted",
                       mqtt={"ca_file": str(other["ca.crt"])})
    rt = load_runtime(cfg)
    ingest = build_ingest(rt)
    ingest.start()
    try:
        time.sleep(3.0)  # first attempt and a retry
        assert not ingest.connected
        assert ingest.receiver.proc.is_alive()  # keeps retrying, does not crash
    finally:
        ingest.stop()
        rt.store.close()


def test_keepalive_holds_an_idle_connection(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """Mosquitto drops a client that sends nothing for 1.5 x its keep-alive: the receiver
    must ping while nothing happens (keep-alive 5 s, idle 9 s)."""
    with running_ingest(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db", "gw-idle",
                        mqtt={"keepalive": 5}) as (rt, ingest):
        generation = ingest._generation
        time.sleep(9.0)
        assert ingest.connected
        assert ingest._generation == generation  # no reconnect happened
        with Publisher(mosquitto.url, client_id="pub-idle") as pub:
            pub.publish_many([("zigbee2mqtt/hall-pir-0", b'{"occupancy":true}')])
        wait_for(lambda: rt.store.count(observations) == 1, what="stored after idling")


@pytest.mark.parametrize(("protocol", "receiver"), [("3.1.1", "process"), ("5", "process"),
                                                    ("3.1.1", "thread")])
def test_every_receiver_kind_stores_and_dead_letters(
        mosquitto: Mosquitto, tmp_path: Path, protocol: str, receiver: str) -> None:
    """Own 3.1.1 subscriber, paho with MQTT 5 in the receiver process, paho in a thread:
    the same messages give the same rows."""
    with running_ingest(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db",
                        f"gw-{protocol}-{receiver}",
                        mqtt={"protocol": protocol, "receiver": receiver}) as (rt, ingest):
        with Publisher(mosquitto.url, client_id=f"pub-{protocol}-{receiver}") as pub:
            pub.publish_many([("zigbee2mqtt/hall-pir-0", b'{"occupancy":true}')] * 100
                             + [("zigbee2mqtt/hall-pir-0", b'{"occupancy":')]
                             + [("zigbee2mqtt/door-0", b'{"contact":false}')] * 100)
        wait_for(lambda: ingest.committed_messages >= 201, what="201 committed")
        assert rt.store.count(observations, kind="motion") == 100
        assert rt.store.count(observations, kind="contact") == 100
        assert rt.store.count(dead_letters) == 1


def test_a_huge_message_is_refused_and_ingest_goes_on(mosquitto: Mosquitto,
                                                      tmp_path: Path) -> None:
    """A 20 MB payload (many socket reads) on a registered topic: one dead letter naming
    the limit, and the messages around it are stored."""
    with running_ingest(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db",
                        "gw-huge") as (rt, ingest):
        with Publisher(mosquitto.url, client_id="pub-huge") as pub:
            pub.publish_many([("zigbee2mqtt/hall-pir-0", b'{"occupancy":true}'),
                              ("zigbee2mqtt/hall-pir-0", b"{" + b" " * 20_000_000 + b"}"),
                              ("zigbee2mqtt/door-0", b'{"contact":false}')])
        wait_for(lambda: ingest.committed_messages >= 3, 60, what="3 committed")
        assert rt.store.count(observations) == 2
        dead = rt.store.dead_letters()
        assert len(dead) == 1
        assert "exceeds the limit" in dead[0]["reason"]
        assert dead[0]["payload_size"] == 20_000_002


def test_receiver_process_starts_without_the_configuration_models(tmp_path: Path) -> None:
    # The child is spawned with the MQTT settings and the pipeline (its routes) pickled;
    # opening them must not import pydantic and the configuration package, which was
    # about 0.3 s of every receiver start (docs/performance.md).
    import pickle
    import subprocess
    import sys

    from gateway.config.gateway import MqttConfig
    from gateway.config.registry import Registry
    from gateway.ingest.pipeline import Pipeline
    from gateway.ingest.router import Router
    from gateway.ingest.settings import ClientSettings
    from gateway.profiles.loader import load_profiles
    from tests.homes import registry

    mqtt = MqttConfig(client_id="receiver-start")
    pipeline = Pipeline(Router(Registry.model_validate(registry(2)), load_profiles()))
    args = tmp_path / "args.pickle"
    args.write_bytes(pickle.dumps((ClientSettings.of(mqtt), pipeline)))
    code = ("import pickle, sys; import gateway.ingest.receiver, gateway.mqtt.wire_client; "
            f"cfg, pipeline = pickle.loads(open({str(args)!r}, 'rb').read()); "
            "print(cfg.client_id, len(pipeline.router), 'pydantic' in sys.modules, "
            "'gateway.config' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["receiver-start", str(len(pipeline.router)), "False", "False"]
