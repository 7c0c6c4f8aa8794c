"""The board's service worker shows a Web Push alert on the phone. An SOS goes through
Mosquitto into a running `tillsyn run`; the gateway encrypts the push for the phone's
subscription and sends it to a push service on loopback; the test decrypts it with the
phone's keys and hands it to the service worker in headless Chromium through the DevTools
protocol (ServiceWorker.deliverPushMessage), as the browser's push client would. The
notification must carry the kind, the room, the plan's first line, an "acknowledge"
action and the link to the alert; following the acknowledge link acknowledges it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect

from gateway.auth import create_token
from tests.gateway_proc import GatewayProcess
from tests.homes import SITE, registry, write_config
from tests.mqtt_client import Publisher
from tests.pushing import Phone, PushService
from tests.support import Mosquitto, free_port, wait_for
from tests.webcheck import Watch, check_page

pytestmark = pytest.mark.broker
SECRET = "test-secret-not-for-production"
PLAN = "Knacka och vänta på svar.\nHon vill klara sig själv."


@pytest.fixture
def world(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[tuple[str, PushService]]:
    reg = registry(1)
    reg["residents"][0]["action_plan"] = PLAN
    service = PushService()
    port = free_port()
    cfg = write_config(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db", reg=reg,
                       client_id="gw-web-push", api_port=port,
                       push={"endpoint_hosts": ["127.0.0.1"]})
    gw = GatewayProcess(cfg, port, tmp_path / "gw.log")
    gw.start()
    time.sleep(0.3)
    try:
        yield f"http://127.0.0.1:{port}", service
    finally:
        gw.stop()
        service.close()


def notifications(page: Any) -> list[dict[str, Any]]:
    shown: list[dict[str, Any]] = page.evaluate("""() => navigator.serviceWorker.ready
        .then(r => r.getNotifications())
        .then(ns => ns.map(n => ({title: n.title, body: n.body, tag: n.tag, data: n.data,
                                  actions: n.actions.map(a => a.title),
                                  requireInteraction: n.requireInteraction})))""")
    return shown


def test_service_worker_shows_the_gateways_push(browser: Browser, mosquitto: Mosquitto,
                                                world: tuple[str, PushService]) -> None:
    base, service = world
    token = create_token(SECRET, "s-17", 3600)
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="sv-SE")
    ctx.grant_permissions(["notifications"], origin=base)
    page = ctx.new_page()
    watch = Watch(page)
    cdp = ctx.new_cdp_session(page)
    registrations: list[dict[str, Any]] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated",
           lambda e: registrations.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    try:
        page.goto(f"{base}/#token={token}")
        expect(page.locator("#empty")).to_be_visible()
        # The board is an installable app with a service worker for the whole origin.
        scope = page.evaluate("navigator.serviceWorker.ready.then(r => r.scope)")
        assert scope == base + "/"
        manifest = httpx.get(base + "/static/manifest.json").json()
        assert manifest["start_url"] == "/" and manifest["display"] == "standalone"
        assert {i["sizes"] for i in manifest["icons"]} >= {"192x192", "512x512"}
        expect(page.locator("#notify")).to_have_text("Slå på aviseringar")
        wait_for(lambda: any(r["scopeURL"] == base + "/" and not r["isDeleted"]
                             for r in registrations), 10, what="registration seen")
        reg_id = next(r["registrationId"] for r in registrations
                      if r["scopeURL"] == base + "/")

        # The phone's subscription (headless Chromium has no push service of its own).
        phone = Phone(service, "nurse-17")
        r = httpx.post(base + "/api/push/subscriptions", json=phone.subscription(),
                       headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 201, r.text
        with Publisher(mosquitto.url, client_id="pub-web-push") as pub:
            pub.publish_many([(f"tillsyn/v1/{SITE}/bed-0/event", json.dumps(
                {"ts": int(time.time() * 1000), "kind": "sos", "value": True}))])
        wait_for(lambda: len(service.received) >= 1, 20, what="the push")
        data = phone.read(service.received[0]["body"])
        cdp.send("ServiceWorker.deliverPushMessage", {
            "origin": base, "registrationId": reg_id, "data": json.dumps(data)})
        wait_for(lambda: notifications(page), 10, what="a notification")
        [shown] = notifications(page)
        assert shown["title"] == "Prio 1 · Trygghetslarm"
        assert shown["body"] == "Rum: Sovrum\nKnacka och vänta på svar."
        assert shown["data"]["url"] == f"/?alert={data['alert_id']}"
        assert shown["actions"] == ["Kvittera"]
        assert shown["tag"] == f"alert-{data['alert_id']}"
        assert shown["requireInteraction"] is True  # priority 1 stays until handled
        # The board opened from the notification shows the alert; its acknowledge action
        # opens the same link with ack=1 (sw.js), which acknowledges it.
        page.goto(base + shown["data"]["url"] + "&ack=1")
        card = page.locator(f'li.alert[data-id="{data["alert_id"]}"]')
        expect(card).to_have_class("alert focus")
        expect(card).to_have_attribute("data-status", "acknowledged")
        expect(card.locator(".status")).to_have_text("Kvitterat av s-17")
        assert "ack=1" not in page.url  # a reload does not acknowledge again
        stored = httpx.get(base + "/api/alerts", headers={
            "Authorization": f"Bearer {token}"}).json()["alerts"][0]
        assert (stored["status"], stored["acknowledged_by"]) == ("acknowledged", "s-17")
        check_page(page, watch)
    finally:
        ctx.close()
