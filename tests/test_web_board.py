"""The night-staff board in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, expect

from firmware_stubs.home import last_complete_night, plan_nights
from firmware_stubs.player import Player
from gateway.auth import create_token
from gateway.config.loader import load_registry
from tests.gateway_proc import GatewayProcess
from tests.homes import SITE, registry, write_config
from tests.mqtt_client import Publisher
from tests.support import Mosquitto, free_port, tillsyn

pytestmark = pytest.mark.broker
SECRET = "test-secret-not-for-production"


def test_alert_appears_and_is_acknowledged(browser: Browser, mosquitto: Mosquitto,
                                           tmp_path: Path) -> None:
    port = free_port()
    reg = registry(1)
    reg["residents"][0]["action_plan"] = "Knacka, vänta på svar."
    reg["residents"][0]["goals"] = [{
        "id": "g-1", "text": "Känna sig trygg på natten", "life_area": "trygghet",
        "start": "2026-11-01", "follow_up": "2027-02-01"}]
    cfg = write_config(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db", reg=reg,
                       client_id="gw-web", api_port=port)
    gw = GatewayProcess(cfg, port, tmp_path / "gw.log")
    gw.start()
    token = create_token(SECRET, "s-17", 3600)
    base = f"http://127.0.0.1:{port}"
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{base}/#token={token}")
        expect(page.locator("#empty")).to_be_visible()
        expect(page.locator("#empty")).to_have_text("Inga aktiva larm")
        with Publisher(mosquitto.url, client_id="pub-web") as pub:
            pub.publish_many([(f"tillsyn/v1/{SITE}/bed-0/event", json.dumps(
                {"ts": int(time.time() * 1000), "kind": "sos", "value": True}))])
        card = page.locator('li.alert[data-kind="sos"]')
        expect(card).to_be_visible(timeout=15_000)
        expect(card.locator(".kind")).to_have_text("Trygghetslarm")
        expect(card.locator(".name")).to_have_text("Test Person 0")
        expect(card.locator(".room")).to_have_text("Rum: Sovrum")
        expect(card.locator(".plan")).to_have_text("Knacka, vänta på svar.")
        expect(card.locator(".goals li")).to_have_text(["Känna sig trygg på natten"])
        assert page.evaluate("document.body.dataset.lastSound") is not None  # P1 sound
        page.screenshot(path=str(tmp_path / "board.png"))
        card.locator("button.ack").click()
        expect(card).to_have_attribute("data-status", "acknowledged")
        stored = httpx.get(f"{base}/api/alerts", headers={
            "Authorization": f"Bearer {token}"}).json()["alerts"][0]
        assert (stored["kind"], stored["status"], stored["acknowledged_by"]) == (
            "sos", "acknowledged", "s-17")
        card.locator("select.outcome").select_option("visited")
        card.locator("button.resolve").click()
        expect(page.locator('li.alert[data-kind="sos"]')).to_have_count(0)
        resolved = httpx.get(f"{base}/api/alerts?status=resolved", headers={
            "Authorization": f"Bearer {token}"}).json()["alerts"][0]
        assert resolved["outcome"] == "visited"
        # The live connection drops: the warning must be visible.
        expect(page.locator("#lost")).to_be_hidden()
        gw.stop()
        expect(page.locator("#lost")).to_be_visible(timeout=15_000)
        expect(page.locator("#lost")).to_contain_text("Liveanslutningen är bruten")
        assert errors == []
    finally:
        page.close()
        gw.stop()


def test_tonights_checks_update_without_a_reload(browser: Browser, mosquitto: Mosquitto,
                                                 tmp_path: Path) -> None:
    """The check list shows tonight's plan; a simulated night played through the stubs
    fills it in live, each new journal entry arriving over the stream."""
    port = free_port()
    reg = registry(1)
    reg["residents"][0]["supervision"] = {
        "checks": ["23:00", "02:00", "05:00"], "replaces_physical_visits": True,
        "all_well": ["in_bed", "door_closed", "sensors_online"]}
    cfg = write_config(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db", reg=reg,
                       client_id="gw-web-checks", api_port=port)
    gw = GatewayProcess(cfg, port, tmp_path / "gw.log")
    gw.start()
    page = browser.new_page(viewport={"width": 390, "height": 844})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    tz = ZoneInfo("Europe/Stockholm")
    first = last_complete_night(datetime.now(UTC), tz)
    events, _ = plan_nights(load_registry(tmp_path / "registry.yaml"), first, 1, seed=4,
                            tz=tz)
    morning = int((first + timedelta(hours=9)).timestamp() * 1000)  # 06:00
    player = Player(mosquitto.url, load_registry(tmp_path / "registry.yaml"),
                    client_id="sim-web-checks")
    try:
        page.goto(f"http://127.0.0.1:{port}/#token={create_token(SECRET, 's-17', 3600)}")
        checks = page.locator('li.resident-checks[data-resident="r-1000"] li.check')
        expect(checks).to_have_count(3)
        expect(page.locator('li.resident-checks[data-resident="r-1000"] .name')
               ).to_have_text("Test Person 0")
        page.evaluate("window.sameDocument = true")
        player.play([e for e in events if e.ts_ms < morning], speed=0)
        done = page.locator('li.resident-checks li.check[data-status="done"]')
        expect(done).to_have_count(3, timeout=30_000)
        expect(page.locator('li.check[data-outcome="ok"]')).to_have_count(3)
        expect(checks.first).to_contain_text("23:00 Allt väl")
        assert page.evaluate("window.sameDocument") is True  # updated without a reload
        page.locator("#summary > summary").click()
        total = page.locator("#summary-table tbody tr").last
        expect(total.locator("td").nth(1)).to_have_text("3")  # digital checks
        page.screenshot(path=str(tmp_path / "board-checks.png"), full_page=True)
        if os.environ.get("TILLSYN_SCREENSHOT_DIR"):  # docs/img/board-checks.png
            shutil.copy(tmp_path / "board-checks.png", os.environ["TILLSYN_SCREENSHOT_DIR"])
        assert errors == []
    finally:
        player.close()
        page.close()
        gw.stop()


def test_login_form_wrong_then_right_password_and_logout(browser: Browser, mosquitto: Mosquitto,
                                                         tmp_path: Path) -> None:
    port = free_port()
    cfg = write_config(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db", reg=registry(1),
                       client_id="gw-login", api_port=port)
    r = tillsyn("staff", "password", "--config", str(cfg), "--staff", "s-17",
                "--password-stdin", input="natt-sköterska-17\n")
    assert r.returncode == 0, r.stderr
    gw = GatewayProcess(cfg, port, tmp_path / "gw.log")
    gw.start()
    page = browser.new_page(viewport={"width": 390, "height": 844})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"http://127.0.0.1:{port}/")
        form = page.locator("#login-form")
        expect(form).to_be_visible()
        expect(form.locator("p").first).to_have_text("Logga in för att fortsätta.")
        form.locator("input[name=staff_id]").fill("s-17")
        form.locator("input[name=password]").fill("fel-lösenord")
        form.locator("button[type=submit]").click()
        expect(form.locator(".login-error")).to_have_text("Fel personal-id eller lösenord.")
        form.locator("input[name=password]").fill("natt-sköterska-17")
        form.locator("button[type=submit]").click()
        expect(page.locator("#empty")).to_have_text("Inga aktiva larm")  # the board, logged in
        expect(page.locator("#login")).to_be_hidden()
        assert page.evaluate("localStorage.getItem('tillsyn-token')")
        page.locator("#logout").click()
        expect(page.locator("#login-form")).to_be_visible()
        assert page.evaluate("localStorage.getItem('tillsyn-token')") is None
        assert errors == []
    finally:
        page.close()
        gw.stop()
