"""The resident page and the three reports in a real headless Chromium, on six simulated
nights (three with a physical night visit each, three digital only) played through
Mosquitto into a running `tillsyn run`. Screenshots go to tmp (and to
$TILLSYN_SCREENSHOT_DIR when set: that is how docs/img/report-*.png are made)."""

from __future__ import annotations

import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from firmware_stubs.home import last_complete_night, plan_nights
from firmware_stubs.player import Player
from firmware_stubs.scenarios import scenario_registry
from gateway.auth import create_token
from gateway.config.loader import load_registry
from tests.gateway_proc import GatewayProcess
from tests.homes import SITE, write_config
from tests.support import Mosquitto, free_port

pytestmark = [pytest.mark.broker, pytest.mark.slow]
SECRET = "test-secret-not-for-production"
TZ = ZoneInfo("Europe/Stockholm")
NIGHTS = 6  # within the 7 days a device timestamp may lag before it is overridden


def shot(page: Page, tmp: Path, name: str) -> None:
    """The page as shown, and the report in its frame as printed (whole length)."""
    page.screenshot(path=str(tmp / f"page-{name}"), full_page=True)
    assert page.context.browser is not None
    report = page.context.browser.new_page()
    report.set_viewport_size({"width": 1000, "height": 800})
    report.set_content(page.locator("#report").get_attribute("srcdoc") or "")
    report.screenshot(path=str(tmp / name), full_page=True)
    report.close()
    folder = os.environ.get("TILLSYN_SCREENSHOT_DIR")
    if folder:
        for f in (name, f"page-{name}"):
            shutil.copy(tmp / f, Path(folder) / f)


def test_resident_page_and_reports_render(browser: Browser, mosquitto: Mosquitto,
                                          tmp_path: Path) -> None:
    first = last_complete_night(datetime.now(UTC), TZ, nights_back=NIGHTS)
    d0 = first.date()
    reg: dict[str, Any] = scenario_registry(1, SITE)
    reg["units"][0]["provider"] = "Kommunal hemtjänst Väster"
    reg["staff"].append({"id": "s-bh", "name": "Handläggare", "role": "assessor"})
    res = reg["residents"][0]
    res["action_plan"] = "Knacka, vänta på svar."
    res["supervision"] = {"checks": ["23:00", "02:00", "05:00"],
                          "all_well": ["in_bed", "door_closed", "sensors_online"],
                          "replaces_physical_visits": True}
    res["needs"] = [{"life_area": "trygghet", "text": "Otrygg ensam på natten."},
                    {"life_area": "d4", "icf": ["d450", "d460"], "text": "Går med rollator."}]
    res["goals"] = [
        {"id": "g-1", "text": "Att känna sig trygg så att nattbesöken kan upphöra",
         "life_area": "trygghet", "start": d0.isoformat(),
         "follow_up": (d0 + timedelta(days=NIGHTS + 5)).isoformat(),
         "indicators": [{"id": "nights_without_staff_intervention", "target": 0.9},
                        {"id": "digital_checks_passed", "target": 0.95}]},
        {"id": "g-2", "text": "Att kunna promenera i närområdet på egen hand",
         "life_area": "d4", "icf": "d460", "start": d0.isoformat(),
         "follow_up": (d0 + timedelta(days=90)).isoformat(),
         "indicators": [{"id": "walks_returned_home", "target": 5},
                        {"id": "walking_speed", "target": 60}]}]
    port = free_port()
    cfg = write_config(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db", reg=reg,
                       client_id="gw-web-rep", api_port=port)
    gw = GatewayProcess(cfg, port, tmp_path / "gw.log")
    gw.start()
    time.sleep(0.5)  # subscriptions granted
    registry = load_registry(tmp_path / "registry.yaml")
    player = Player(mosquitto.url, registry, client_id="sim-web-rep")
    base = f"http://127.0.0.1:{port}"
    bh = create_token(SECRET, "s-bh", 3600)
    errors: list[str] = []
    try:
        for n in range(NIGHTS):
            events, _ = plan_nights(registry, first + timedelta(days=n), 1, seed=50 + n, tz=TZ,
                                    staff_visit_every=1 if n < NIGHTS // 2 else 0,
                                    incidents=("wandering",) if n in (1, 4) else ())
            player.play(events, speed=0)
        half = d0 + timedelta(days=NIGHTS // 2)
        params = {"baseline_first": d0.isoformat(),
                  "baseline_last": (half - timedelta(days=1)).isoformat(),
                  "trial_first": half.isoformat(),
                  "trial_last": (d0 + timedelta(days=NIGHTS - 1)).isoformat()}
        deadline = time.monotonic() + 180
        while True:  # until the gateway has stored every night and evaluated every check
            rep = httpx.get(f"{base}/api/reports/digital-trial/r-2000", params=params,
                            headers={"Authorization": f"Bearer {bh}"}, timeout=30).json()
            if rep["trial"]["digital_checks"] == 3 * NIGHTS // 2 \
                    and rep["baseline"]["physical_night_visits"] == NIGHTS // 2:
                break
            assert time.monotonic() < deadline, rep
            time.sleep(0.5)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(f"{m.text} {m.location}")
                if m.type == "error" and "status of 422" not in m.text else None)

        # Resident page as the assessor: goals, follow-up form, the report with charts.
        page.goto(f"{base}/resident?id=r-2000#token={bh}")
        expect(page.locator("#name")).to_have_text("Scenario 0 (r-2000)")
        expect(page.locator("#plan")).to_have_text("Knacka, vänta på svar.")
        expect(page.locator("li.goal-item")).to_have_count(2)
        expect(page.locator('li.goal-item[data-goal="g-1"] form.followup')).to_be_visible()
        frame = page.frame_locator("#report")
        expect(frame.locator("h1")).to_contain_text("Individuell uppföljning")
        expect(frame.locator('section.goal[data-goal="g-1"] svg')).to_have_count(2)
        expect(frame.locator('section.goal[data-goal="g-2"]')).to_contain_text(
            "inga data")  # walking speed: no movement features scored in this test
        expect(frame.locator('section.goal[data-goal="g-2"] svg')).to_have_count(2)
        # The fall-risk section says which method is in force and why: no model is
        # installed in this set-up, so the walking-speed decline test.
        expect(page.locator("#risk-summary")).to_contain_text("gånghastighetens nedgångstest")
        expect(page.locator("#risk-method")).to_have_text(
            "Metod: gånghastighetens nedgångstest (ingen modell) (ingen modell är installerad)")
        # ... and that the walking-speed trend has too little measured walking to say.
        expect(page.locator("#risk-decline")).to_contain_text("för lite mätt gång")
        expect(frame.locator('section.goal[data-goal="g-2"]')).to_contain_text(
            "Ytterdörr öppnad i natt")  # the wandering nights' alerts concern the walk goal
        shot(page, tmp_path, "report-followup.png")
        form = page.locator('li.goal-item[data-goal="g-1"] form.followup')
        form.locator("select").select_option("partly_achieved")
        form.locator("input").fill("Sover bättre, vill fortsätta")
        form.locator("button").click()
        expect(page.locator('li.goal-item[data-goal="g-1"] .goal-meta')).to_contain_text(
            "delvis uppnått")
        expect(frame.locator('section.goal[data-goal="g-1"]')).to_contain_text(
            "Sover bättre, vill fortsätta")

        # Reports page: the digital trial and the unit report.
        page.goto(f"{base}/reports?kind=digital-trial"
                  + "".join(f"&{k}={v}" for k, v in params.items()))
        picker = page.locator("select[name=resident]")
        expect(picker).to_have_value("")  # nobody is chosen for the assessor
        expect(picker.locator("option")).to_have_text(["Välj boende …", "Scenario 0 (r-2000)"])
        page.locator("#form button[type=submit]").click()  # refused by the form: no request
        expect(page.locator("#report")).to_be_hidden()
        picker.select_option(label="Scenario 0 (r-2000)")
        page.locator("#form button[type=submit]").click()
        expect(frame.locator("h1")).to_contain_text("Utvärdering av digital tillsyn")
        row = frame.locator("tr", has_text="Fysiska nattbesök")
        expect(row.locator("td").nth(1)).to_have_text(str(NIGHTS // 2))
        expect(row.locator("td").nth(2)).to_have_text("0")
        expect(frame.locator("svg")).to_have_count(1)
        shot(page, tmp_path, "report-digital-trial.png")
        page.locator("select[name=kind]").select_option("unit")
        page.locator("input[name=first]").fill(d0.isoformat())
        page.locator("input[name=last]").fill((d0 + timedelta(days=NIGHTS + 5)).isoformat())
        page.locator("#form button[type=submit]").click()
        expect(frame.locator("h1")).to_contain_text("Målupfyllelse per enhet")
        expect(frame.locator("h2")).to_contain_text("Kommunal hemtjänst Väster")
        expect(frame.locator("tr", has_text="Gjorda i tid").locator("td").nth(1)
               ).to_have_text("1")  # g-1's follow-up, done today (due within the period)
        shot(page, tmp_path, "report-unit.png")
        # A new request clears the old report: a wrong period is a Swedish error with no
        # stale report under it.
        page.locator("input[name=last]").fill((d0 - timedelta(days=3)).isoformat())
        page.locator("#form button[type=submit]").click()
        expect(page.locator("#error")).to_have_text(
            "Något gick fel: Uppgifterna är ofullständiga eller felaktiga.")
        expect(page.locator("#report")).to_be_hidden()
        assert page.locator("#report").get_attribute("srcdoc") == ""

        # Night staff: goals and the action plan, no report, no follow-up form.
        ns = browser.new_page(viewport={"width": 390, "height": 844})
        ns.on("pageerror", lambda e: errors.append(str(e)))
        ns.goto(f"{base}/resident?id=r-2000#token={create_token(SECRET, 's-17', 3600)}")
        expect(ns.locator("li.goal-item")).to_have_count(2)
        expect(ns.locator("li.goal-item form.followup").first).to_be_hidden()
        expect(ns.locator("#report-section")).to_be_hidden()
        ns.close()
        page.close()
        assert errors == []
    finally:
        player.close()
        gw.stop()
