"""SCAIP hand-off to an alarm receiving centre: real Kamailio (digest auth, TCP and TLS) in
front of a real SIPp playing the centre, PJSIP in the gateway, a real SQLite outbox.

Every request body the centre received is validated against gateway/scaip/scaip.xsd, the
schema written from the standard's element list.
"""

from __future__ import annotations

import json
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import xmlschema
from playwright.sync_api import Browser, expect
from sqlalchemy import select

from detectors.model import Decision
from gateway.auth import create_token
from gateway.errors import ConfigError
from gateway.runtime import Runtime, build_alerting, load_runtime, start_handoff, stop_handoff
from gateway.scaip.mapping import load_mapping, request_for
from gateway.scaip.messages import BadResponse, parse_response
from gateway.storage.schema import scaip_messages
from tests.gateway_proc import GatewayProcess
from tests.homes import SITE, registry, write_config
from tests.mqtt_client import Publisher
from tests.sip import PASSWORD, REALM, USER, Centre, Kamailio
from tests.support import Mosquitto, certificates, free_port, wait_for

SCHEMA = xmlschema.XMLSchema(str(Path(__file__).resolve().parent.parent
                                 / "gateway" / "scaip" / "scaip.xsd"))
ALARM_ID = "ARC-4711"


def fields(body: str) -> dict[str, str]:
    return {el.tag: el.text or "" for el in ET.fromstring(body.split("?>", 1)[1])}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return certificates(tmp_path_factory.mktemp("sip-certs"))


@pytest.fixture
def centre() -> Iterator[Centre]:
    c = Centre("accept")
    c.start()
    yield c
    c.cleanup()


@pytest.fixture
def proxy(centre: Centre, certs: dict[str, Path]) -> Iterator[Kamailio]:
    k = Kamailio(centre.port, certs)
    k.start()
    yield k
    k.stop()


def gateway(tmp_path: Path, proxy: Kamailio, centre: Centre, certs: dict[str, Path], *,
            transport: str = "tls", ca: Path | None = None, heartbeat: int = 3600,
            healthy: list[str] | None = None, password: str = PASSWORD) -> Runtime:
    reg = registry(2)
    reg["residents"][0]["alarm_centre_id"] = ALARM_ID
    cfg = write_config(tmp_path, "mqtt://127.0.0.1:1", f"sqlite:///{tmp_path}/t.db", reg=reg,
                       scaip={"enabled": True, "local_uri": "sip:tillsyn@127.0.0.1",
                              "controller_id": "tillsyn-solgarden",
                              "heartbeat_seconds": heartbeat,
                              "response_timeout_seconds": 3, "retry_max_seconds": 4,
                              "centres": [{
                                  "id": "larm", "transport": transport,
                                  "uri": f"sip:scaip@127.0.0.1:{centre.port}",
                                  "proxy": proxy.proxy_uri(transport),
                                  "username": USER, "password": password, "realm": REALM,
                                  "ca_file": str(ca or certs["ca.crt"])}]})
    rt = load_runtime(cfg)
    build_alerting(rt, publish=False)
    assert rt.scaip is not None
    problems = healthy if healthy is not None else []
    rt.scaip.problems = lambda: list(problems)
    start_handoff(rt)
    return rt


def close(rt: Runtime) -> None:
    stop_handoff(rt)
    rt.store.close()


def raise_alert(rt: Runtime, kind: str = "sos", resident: str = "r-1000",
                key: str | None = None, level: int | None = None) -> int:
    assert rt.alerts is not None
    device = "bed-0" if resident == "r-1000" else "bed-1"
    ids = rt.alerts.handle([Decision("raise", kind, resident, key or f"{kind}:{device}",
                                     datetime.now(UTC), {}, device, level)])
    assert ids
    return ids[0]


def outbox(rt: Runtime) -> list[dict[str, Any]]:
    with rt.store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            select(scaip_messages).order_by(scaip_messages.c.id))]


def requests(centre: Centre, mty: str | None = None) -> list[dict[str, str]]:
    """Requests the centre received (all but heartbeats unless mty="PI"), each valid."""
    out = []
    for body in centre.bodies():
        SCHEMA.validate(body)  # raises with the reason if not valid
        f = fields(body)
        if f["mty"] == mty or (mty is None and f["mty"] != "PI"):
            out.append(f)
    return out


# --- pure: messages and mapping ------------------------------------------------------------

def test_every_mapped_kind_and_step_makes_a_valid_request() -> None:
    mapping = load_mapping()
    for kind in mapping.kinds:
        for transition in ("raised", "escalated", "acknowledged", "resolved"):
            alert = {"kind": kind, "priority": 1, "device_id": "bed-0", "room": "bathroom"}
            req = request_for(mapping, alert, transition, ALARM_ID, "0123456789abcdef",
                              "Badrum")
            assert req is not None
            SCHEMA.validate(req.xml().decode())
            assert fields(req.xml().decode())["lco"] == "011"
    assert request_for(mapping, {"kind": "fall_risk_rise", "priority": 3}, "raised",
                       "x", "ab12") is None  # not a kind for the centre


def test_responses_are_read_strictly() -> None:
    assert parse_response("<mrs><ref>ab12</ref><snu>0</snu></mrs>").accepted
    r = parse_response("<mrs><ref>ab12</ref><snu>3</snu><ste>bad cid</ste></mrs>")
    assert (r.accepted, r.meaning, r.ste) == (False, "wrong data content", "bad cid")
    for bad, why in [("<mrq><ref>a</ref></mrq>", "want <mrs>"), ("<mrs><snu>0</snu></mrs>",
                     "no <ref>"), ("<mrs><ref>a</ref><snu>x</snu></mrs>", "not a number"),
                     ("<mrs", "not XML"), ('<!DOCTYPE x [<!ENTITY a "b">]><mrs/>', "DTD"),
                     ("<mrs>" + "x" * 20000 + "</mrs>", "bytes")]:
        with pytest.raises(BadResponse, match=re.escape(why)):
            parse_response(bad)


def test_configuration_problems_are_named(tmp_path: Path) -> None:
    base = {"enabled": True, "centres": [{"id": "larm", "uri": "sips:scaip@larm.example.se",
                                          "transport": "tcp", "username": "u",
                                          "units": ["unit-x"]}]}
    cfg = write_config(tmp_path, "mqtt://127.0.0.1:1", f"sqlite:///{tmp_path}/t.db",
                       scaip=base)
    with pytest.raises(ConfigError) as err:
        load_runtime(cfg, migrate=False)
    text = "\n".join(err.value.problems)
    assert "scaip.centres.0.password: required key is missing" in text
    assert "TILLSYN_SCAIP_PASSWORD_LARM" in text
    assert "a sips: URI needs transport tls" in text
    cfg = write_config(tmp_path, "mqtt://127.0.0.1:1", f"sqlite:///{tmp_path}/t.db",
                       scaip={"enabled": True, "centres": []})
    with pytest.raises(ConfigError, match="needs at least one centre"):
        load_runtime(cfg, migrate=False)


# --- against Kamailio and SIPp --------------------------------------------------------------

def test_sos_reaches_the_centre_and_staff_steps_follow(
        tmp_path: Path, proxy: Kamailio, centre: Centre, certs: dict[str, Path]) -> None:
    rt = gateway(tmp_path, proxy, centre, certs)
    try:
        assert rt.alerts is not None
        alert = raise_alert(rt)
        wait_for(lambda: rt.alerts.get(alert)["centre_status"] == "accepted", timeout=15,
                 what="the centre accepted the SOS")
        me = requests(centre, "ME")
        assert len(me) == 1
        assert {k: me[0][k] for k in ("cid", "dty", "stc", "mty", "lco", "pri", "did")} == {
            "cid": ALARM_ID, "dty": "0003", "stc": "0010", "mty": "ME", "lco": "012",
            "pri": "1", "did": "bed-0"}
        name = registry(2)["residents"][0]["name"]
        assert all(name not in b and "r-1000" not in b for b in centre.bodies())
        # A priority 3 alert does not go to the centre.
        raise_alert(rt, "bed_exit_no_return", level=3)
        rt.alerts.acknowledge(alert, "s-17")
        rt.alerts.resolve(alert, "s-17", "visited")
        wait_for(lambda: len(requests(centre)) == 3, timeout=15, what="IN and RE")
        got = [(f["mty"], f["stc"], f["ref"]) for f in requests(centre)]
        assert [g[:2] for g in got] == [("ME", "0010"), ("IN", "0005"), ("RE", "0111")]
        assert len({g[2] for g in got}) == 3  # a reference of its own for each
        time.sleep(1)
        assert len(requests(centre)) == 3
        assert all(m["accepted_ms"] for m in outbox(rt))
        # The step is on the alert's history, as the board shows it.
        with rt.store.engine.connect() as conn:
            from gateway.storage.schema import alert_events
            steps = [r.transition for r in conn.execute(
                select(alert_events.c.transition).where(alert_events.c.alert_id == alert))]
        assert "centre_accepted" in steps
        assert "challenge for MESSAGE" in proxy.log_text()  # digest auth was asked for
    finally:
        close(rt)


def test_tcp_and_an_untrusted_certificate(tmp_path: Path, proxy: Kamailio, centre: Centre,
                                          certs: dict[str, Path]) -> None:
    (tmp_path / "tcp").mkdir()
    rt = gateway(tmp_path / "tcp", proxy, centre, certs, transport="tcp")
    assert rt.alerts is not None
    try:
        alert = raise_alert(rt)
        wait_for(lambda: rt.alerts.get(alert)["centre_status"] == "accepted", timeout=15,
                 what="accepted over TCP")
    finally:
        close(rt)
    other = certificates(tmp_path / "other-ca")
    (tmp_path / "tls").mkdir()
    rt = gateway(tmp_path / "tls", proxy, centre, certs, ca=other["ca.crt"])
    assert rt.alerts is not None
    try:
        alert = raise_alert(rt)
        wait_for(lambda: rt.alerts.get(alert)["centre_status"] == "unreachable", timeout=15,
                 what="a centre whose certificate we do not trust is not reached")
        assert len(requests(centre, "ME")) == 1  # only the one sent over TCP
    finally:
        close(rt)


def test_wrong_password_is_rejected_and_retried(tmp_path: Path, proxy: Kamailio,
                                                centre: Centre, certs: dict[str, Path]) -> None:
    rt = gateway(tmp_path, proxy, centre, certs, password="not-the-password")
    assert rt.alerts is not None
    try:
        alert = raise_alert(rt)
        wait_for(lambda: (outbox(rt) or [{}])[0].get("attempts", 0) >= 2, timeout=20,
                 what="two attempts")
        a = rt.alerts.get(alert)
        assert a["centre_status"] == "rejected"
        assert "SIP 407" in (a["centre_detail"] or "")
        assert requests(centre) == []
    finally:
        close(rt)


def test_a_rejection_is_stored_and_retried_until_accepted(
        tmp_path: Path, proxy: Kamailio, centre: Centre, certs: dict[str, Path]) -> None:
    centre.stop()
    centre.start("reject")
    rt = gateway(tmp_path, proxy, centre, certs)
    assert rt.alerts is not None and rt.scaip is not None
    try:
        alert = raise_alert(rt)
        wait_for(lambda: len(requests(centre)) >= 2, timeout=20, what="a retry")
        a = rt.alerts.get(alert)
        assert a["centre_status"] == "rejected"
        assert "snu 3: fel datainnehåll" in a["centre_detail"]
        msg = outbox(rt)[0]
        assert msg["last_snu"] == 3 and msg["accepted_ms"] is None
        centre.stop()
        centre.start("accept")
        wait_for(lambda: rt.alerts.get(alert)["centre_status"] == "accepted", timeout=20,
                 what="accepted once the centre takes it")
        refs = {f["ref"] for f in requests(centre)}
        assert refs == {msg["ref"]}  # every retry carried the same reference
    finally:
        close(rt)


def test_a_busy_centre_loses_nothing(tmp_path: Path, proxy: Kamailio, centre: Centre,
                                     certs: dict[str, Path]) -> None:
    centre.stop()
    centre.start("busy")
    rt = gateway(tmp_path, proxy, centre, certs)
    assert rt.alerts is not None
    try:
        ids = [raise_alert(rt), raise_alert(rt, "fall", "r-1001")]
        wait_for(lambda: all(rt.alerts.get(i)["centre_status"] == "busy" for i in ids),
                 timeout=15, what="busy on the board")
        assert "upptagen (SIP 486)" in rt.alerts.get(ids[0])["centre_detail"]
        centre.stop()
        centre.start("accept")
        wait_for(lambda: all(rt.alerts.get(i)["centre_status"] == "accepted" for i in ids),
                 timeout=20, what="accepted after busy")
        # Tried while busy and again after, always under the same reference.
        by_ref = {f["ref"]: f["dty"] for f in requests(centre)}
        assert sorted(by_ref.values()) == ["0003", "0005"]
    finally:
        close(rt)


def test_a_centre_down_for_60_s_and_a_restart_lose_nothing(
        tmp_path: Path, proxy: Kamailio, centre: Centre, certs: dict[str, Path]) -> None:
    centre.stop()
    rt = gateway(tmp_path, proxy, centre, certs)
    assert rt.alerts is not None and rt.scaip is not None
    started = time.monotonic()
    ids = []
    try:
        ids.append(raise_alert(rt))
        ids.append(raise_alert(rt, "fall", "r-1001"))
        wait_for(lambda: rt.alerts.get(ids[0])["centre_status"] == "unreachable", timeout=15,
                 what="unreachable on the board")
        rt.alerts.acknowledge(ids[0], "s-17")
        time.sleep(25)
        ids.append(raise_alert(rt, "door_open_night", "r-1000", key="door:door-0"))
        wait_for(lambda: rt.scaip.health()[0]["centres"]["larm"]["pending"] == 4,
                 timeout=5, what="4 messages waiting (ME, IN, ME, ME)")
    finally:
        close(rt)  # the gateway stops while the centre is down
    # The gateway starts again (a new process would do the same) while the centre is
    # still down, and it comes back at 60 s.
    rt = load_runtime(tmp_path / "config.yaml")
    build_alerting(rt, publish=False)
    assert rt.alerts is not None and rt.scaip is not None
    rt.scaip.problems = list
    start_handoff(rt)
    try:
        ids.append(raise_alert(rt, "sos", "r-1001"))
        wait_for(lambda: any("not accepted, oldest" in p for p in rt.scaip.health()[1]),
                 timeout=50, what="degraded while messages wait a minute")
        assert any("heartbeat to larm failed" in p for p in rt.scaip.health()[1])
        time.sleep(max(0.0, 60 - (time.monotonic() - started)))
        centre.start("accept")
        wait_for(lambda: all(m["accepted_ms"] for m in outbox(rt)), timeout=40,
                 what="every message accepted")
        got = requests(centre)
        assert sorted((f["cid"], f["mty"], f["dty"]) for f in got) == sorted([
            (ALARM_ID, "ME", "0003"), (ALARM_ID, "IN", "0003"), ("r-1001", "ME", "0005"),
            (ALARM_ID, "ME", "0014"), ("r-1001", "ME", "0003")])
        first_alert = [f["mty"] for f in got if f["cid"] == ALARM_ID and f["dty"] == "0003"]
        assert first_alert == ["ME", "IN"]  # in the order they happened
        assert len({f["ref"] for f in got}) == len(got) == len(outbox(rt))
        assert all(rt.alerts.get(i)["centre_status"] == "accepted" for i in ids)
        wait_for(lambda: rt.scaip.health()[1] == [], timeout=15,
                 what="healthy again once a heartbeat is accepted")
    finally:
        close(rt)


def test_heartbeats_at_the_interval_and_withheld_when_unwell(
        tmp_path: Path, proxy: Kamailio, centre: Centre, certs: dict[str, Path]) -> None:
    problems: list[str] = []
    rt = gateway(tmp_path, proxy, centre, certs, heartbeat=2, healthy=problems)
    assert rt.scaip is not None
    try:
        arrivals: list[float] = []

        def count() -> bool:
            n = len(requests(centre, "PI"))
            while len(arrivals) < n:
                arrivals.append(time.monotonic())
            return n >= 4

        wait_for(count, timeout=20, interval=0.05, what="4 heartbeats")
        gaps = [b - a for a, b in zip(arrivals[1:], arrivals[2:], strict=False)]
        assert gaps and all(1.5 < g < 4 for g in gaps), gaps  # every 2 s
        beats = requests(centre, "PI")
        assert {(b["cid"], b["dty"], b["stc"]) for b in beats} == {
            ("tillsyn-solgarden", "0002", "0102")}
        problems.append("database unreachable")
        time.sleep(2.5)  # one in flight may still land
        before = len(requests(centre, "PI"))
        time.sleep(6)
        assert len(requests(centre, "PI")) == before, "a heartbeat while unwell"
        assert rt.scaip.health()[0]["centres"]["larm"]["heartbeats_withheld"]
        problems.clear()
        wait_for(lambda: len(requests(centre, "PI")) > before, timeout=10,
                 what="heartbeats again")
        text = rt.metrics.render().decode()
        assert 'tillsyn_scaip_heartbeats_total{centre="larm",result="withheld"}' in text
    finally:
        close(rt)


@pytest.mark.broker
def test_mqtt_sos_to_the_centre_and_its_answer_on_the_board(
        browser: Browser, mosquitto: Mosquitto, tmp_path: Path, proxy: Kamailio,
        centre: Centre, certs: dict[str, Path]) -> None:
    """`tillsyn run` as a process: an SOS over MQTT reaches the centre; the board shows the
    centre's answer; /healthz and /metrics report the centre; the password comes from the
    environment, as in production."""
    port = free_port()
    reg = registry(1)
    reg["residents"][0]["alarm_centre_id"] = ALARM_ID
    cfg = write_config(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db", reg=reg,
                       client_id="gw-scaip", api_port=port,
                       scaip={"enabled": True, "local_uri": "sip:tillsyn@127.0.0.1",
                              "heartbeat_seconds": 5,
                              "centres": [{
                                  "id": "larm", "transport": "tls",
                                  "uri": f"sip:scaip@127.0.0.1:{centre.port}",
                                  "proxy": proxy.proxy_uri("tls"), "username": USER,
                                  "realm": REALM, "ca_file": str(certs["ca.crt"])}]})
    gw = GatewayProcess(cfg, port, tmp_path / "gw.log",
                        env={"TILLSYN_SCAIP_PASSWORD_LARM": PASSWORD})
    gw.start()
    page = browser.new_page(viewport={"width": 390, "height": 844})
    try:
        token = create_token("test-secret-not-for-production", "s-17", 3600)
        page.goto(f"http://127.0.0.1:{port}/#token={token}")
        expect(page.locator("#empty")).to_be_visible()
        with Publisher(mosquitto.url, client_id="pub-scaip") as pub:
            pub.publish_many([(f"tillsyn/v1/{SITE}/bed-0/event", json.dumps(
                {"ts": int(time.time() * 1000), "kind": "sos", "value": True}))])
        card = page.locator('li.alert[data-kind="sos"]')
        expect(card.locator(".centre")).to_have_text("Larmcentral: mottaget", timeout=20_000)
        [me] = requests(centre, "ME")
        assert (me["cid"], me["dty"], me["stc"]) == (ALARM_ID, "0003", "0010")
        wait_for(lambda: len(requests(centre, "PI")) >= 1, timeout=15, what="a heartbeat")
        health = gw.health()
        assert health["status"] == "ok", health
        assert health["scaip"]["centres"]["larm"]["pending"] == 0
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'tillsyn_scaip_messages_total{centre="larm",result="accepted"} 1.0' in metrics
        log = (tmp_path / "gw.log").read_text()
        assert PASSWORD not in log and "Test Person" not in log
    finally:
        page.close()
        gw.stop()


def test_a_sip_stack_that_cannot_start_leaves_supervision_running(
        tmp_path: Path, proxy: Kamailio, centre: Centre, certs: dict[str, Path]) -> None:
    """PJSIP refuses the centre's account (a proxy URI it cannot parse): the gateway goes on
    without the hand-off, /healthz says why, and a later start in the same process (a
    scale-out worker getting the jobs back) works."""
    reg = registry(1)
    cfg = write_config(tmp_path, "mqtt://127.0.0.1:1", f"sqlite:///{tmp_path}/t.db", reg=reg,
                       scaip={"enabled": True, "centres": [{
                           "id": "larm", "transport": "tcp", "proxy": "sip:[::1",
                           "uri": f"sip:scaip@127.0.0.1:{centre.port}"}]})
    rt = load_runtime(cfg)
    build_alerting(rt, publish=False)
    assert rt.scaip is not None and rt.alerts is not None
    start_handoff(rt)  # does not raise
    assert rt.sip is None
    [problem] = rt.scaip.health()[1]
    assert problem.startswith("scaip: not running: the SIP stack did not start") and \
        "Invalid URI" in problem
    assert raise_alert(rt)  # alerts are raised and stored as ever
    close(rt)
    (tmp_path / "ok").mkdir()
    good = gateway(tmp_path / "ok", proxy, centre, certs)
    try:
        assert good.alerts is not None
        alert = raise_alert(good)
        wait_for(lambda: good.alerts.get(alert)["centre_status"] == "accepted", timeout=15,
                 what="accepted after a failed start in the same process")
    finally:
        close(good)
