"""The pages on a night nurse's phone (320x640 and 390x844) in a real headless Chromium,
against a running `tillsyn run` fed through Mosquitto: logged out, one alert (acknowledge,
undo, resolve without and with an outcome), twenty alerts (current and "Äldre", folded
cards), English, the resident page with and without goals and risk data. Every page must
have no page error, no console error other than the API answers the test provokes, no
horizontal scroll, and (in Swedish) no English word from the UI's own English strings.
Screenshots go to tmp (and to $TILLSYN_SCREENSHOT_DIR when set: docs/img/phone-*.png)."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import delete, insert

from gateway.auth import create_token
from gateway.runtime import load_runtime
from gateway.storage.schema import risk_days
from tests.gateway_proc import GatewayProcess
from tests.homes import SITE, registry, write_config
from tests.mqtt_client import Publisher
from tests.support import Mosquitto, free_port
from tests.webcheck import PHONES, Watch, check_page

pytestmark = [pytest.mark.broker, pytest.mark.slow]
SECRET = "test-secret-not-for-production"
NAMES = ["Anna Berg", "Bertil Ek", "Cecilia Lind", "David Holm", "Eva Sjö", "Folke Ås",
         "Greta Nyström", "Harald Vik", "Ingrid Dahl", "Johan Lund", "Karin Strand",
         "Lars Hed", "Maja Björk", "Nils Falk", "Olga Rask", "Per Tall", "Rut Ström",
         "Sven Alm", "Tora Grön", "Ulla Fors"]
MONTH = r"(jan\.|feb\.|mars|apr\.|maj|juni|juli|aug\.|sep\.|okt\.|nov\.|dec\.)"
PLAN = "Knacka och vänta på svar innan du går in.\nHon vill klara toaletten själv."


def phone_id(p: tuple[int, int]) -> str:
    return f"{p[0]}x{p[1]}"


def phone_registry() -> dict[str, Any]:
    reg = registry(20)
    reg["staff"] = [{"id": "s-17", "name": "Nattsköterska 17", "unit": "unit-a",
                     "role": "night_staff"},
                    {"id": "s-bh", "name": "Handläggare", "unit": "unit-a", "role": "assessor"},
                    {"id": "s-admin", "name": "Systemförvaltare", "role": "admin"}]
    for res, name in zip(reg["residents"], NAMES, strict=True):
        res["name"] = name
        res["action_plan"] = "Gå in direkt."
    first = reg["residents"][0]
    first["action_plan"] = PLAN
    today = datetime.now(UTC).date()
    first["needs"] = [{"life_area": "trygghet", "text": "Otrygg ensam på natten."}]
    first["goals"] = [
        {"id": "g-1", "text": "Att känna sig trygg så att nattbesöken kan upphöra",
         "life_area": "trygghet", "start": str(today - timedelta(days=60)),
         "follow_up": str(today + timedelta(days=20)),
         "indicators": [{"id": "digital_checks_passed", "target": 0.95}]},
        {"id": "g-2", "text": "Att kunna promenera i närområdet på egen hand",
         "life_area": "d4", "icf": "d460", "start": str(today - timedelta(days=10)),
         "follow_up": str(today + timedelta(days=90))}]
    reg["residents"][1]["action_plan"] = ""  # no plan, no goals, no risk data
    return reg


def seed_risk(cfg: Path, model: Path, resident: str, days: int = 40) -> None:
    """Scored days as the risk service stores them: probability rising, walking slowing."""
    meta = json.loads((model / "model.json").read_text())
    low, high = meta["thresholds"]
    rt = load_runtime(cfg)
    today = datetime.now(UTC).date()
    with rt.store.engine.begin() as conn:
        conn.execute(delete(risk_days).where(risk_days.c.resident_id == resident))
        for i in range(days):
            day: date = today - timedelta(days=days - i)
            p = 0.02 + 0.25 * i / days
            conn.execute(insert(risk_days).values(
                resident_id=resident, day=day.isoformat(), status="scored",
                features={"walking_speed": 62.0 - 8.0 * i / days},
                inputs={"decline": None if i < 21 else {
                    "day": day.isoformat(), "z": round(0.2 * (i - 21), 2), "usual": 62.0,
                    "spread": 2.4, "drop": round(0.4 * (i - 21), 2), "recent": 58.0,
                    "baseline_days": 21, "window_days": 14, "flagged": 0.2 * (i - 21) >= 2.5,
                    "alerted": False}}, probability=p,
                level="high" if p >= high else "moderate" if p >= low else "low",
                factors=[{"input": "walking_speed", "contribution": 0.8,
                          "sv": "Går långsammare än vanligt", "en": "Walks slower than usual"}],
                model_version=meta["version"], computed_ms=int(time.time() * 1000)))
    rt.store.close()


@pytest.fixture
def gateway(mosquitto: Mosquitto, tmp_path: Path, model_dir: Path
            ) -> Iterator[tuple[str, Path]]:
    port = free_port()
    cfg = write_config(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db",
                       reg=phone_registry(), client_id=f"gw-phone-{port}", api_port=port,
                       risk={"model": str(model_dir), "method": "model"})
    seed_risk(cfg, model_dir, "r-1000")
    gw = GatewayProcess(cfg, port, tmp_path / "gw.log")
    gw.start()
    time.sleep(0.3)  # subscriptions granted
    try:
        yield f"http://127.0.0.1:{port}", tmp_path
    finally:
        gw.stop()


def phone(browser: Browser, size: tuple[int, int], **context: Any) -> Page:
    ctx = browser.new_context(viewport={"width": size[0], "height": size[1]},
                              locale="sv-SE", **context)
    return ctx.new_page()


def shot(page: Page, tmp: Path, name: str, full: bool = False) -> None:
    page.screenshot(path=str(tmp / name), full_page=full)
    folder = os.environ.get("TILLSYN_SCREENSHOT_DIR")
    if folder:
        shutil.copy(tmp / name, Path(folder) / name)


def publish(mosquitto: Mosquitto, events: list[tuple[str, str, int]]) -> None:
    """(device, kind, ts_ms) as the bed sensors' native events."""
    with Publisher(mosquitto.url, client_id=f"pub-phone-{time.monotonic_ns()}") as pub:
        pub.publish_many([(f"tillsyn/v1/{SITE}/{device}/event",
                           json.dumps({"ts": ts, "kind": kind, "value": True}))
                          for device, kind, ts in events])


def api(base: str, staff: str, path: str) -> Any:
    r = httpx.get(base + path, headers={"Authorization":
                                        f"Bearer {create_token(SECRET, staff, 600)}"})
    r.raise_for_status()
    return r.json()


@pytest.mark.parametrize("size", PHONES, ids=phone_id)
def test_logged_out_board_shows_only_the_login(browser: Browser, gateway: tuple[str, Path],
                                                size: tuple[int, int]) -> None:
    base, tmp = gateway
    page = phone(browser, size)
    watch = Watch(page)
    page.goto(base + "/")
    expect(page.locator("#login-form")).to_be_visible()
    expect(page.locator("#login-form p").first).to_have_text("Logga in för att fortsätta.")
    for hidden in ("#main", "#live", "#sound", "#notify", "#empty", "#alerts",
                   "#checks-section"):
        expect(page.locator(hidden)).to_be_hidden()
    check_page(page, watch)
    shot(page, tmp, f"phone-login-{phone_id(size)}.png")
    page.context.close()


@pytest.mark.parametrize("size", PHONES, ids=phone_id)
def test_one_alert_acknowledge_undo_and_resolve(browser: Browser, mosquitto: Mosquitto,
                                                gateway: tuple[str, Path],
                                                size: tuple[int, int]) -> None:
    base, tmp = gateway
    page = phone(browser, size)
    watch = Watch(page)
    page.goto(f"{base}/#token={create_token(SECRET, 's-17', 3600)}")
    expect(page.locator("#empty")).to_have_text("Inga aktiva larm")
    expect(page.locator("#title")).to_have_text("Tillsyn – larm – Solgården A")
    publish(mosquitto, [("bed-0", "sos", int(time.time() * 1000))])
    card = page.locator('li.alert[data-kind="sos"]')
    expect(card).to_be_visible(timeout=15_000)
    expect(card.locator(".kind")).to_have_text("Trygghetslarm")
    expect(card.locator(".name")).to_have_text("Anna Berg")
    expect(card.locator(".room")).to_have_text("Rum: Sovrum")
    expect(card.locator(".when")).to_have_text(re.compile(r"^\d\d:\d\d$"))  # tonight: no day
    expect(card.locator(".card")).to_have_attribute("open", "")
    expect(card.locator(".plan")).to_have_text(PLAN)
    expect(card.locator(".goals li")).to_have_count(2)
    # Acknowledge first: nothing to resolve with before that.
    expect(card.locator(".resolve-box")).to_be_hidden()
    check_page(page, watch)
    shot(page, tmp, f"phone-alert-{phone_id(size)}.png")
    card.locator("button.ack").click()
    expect(card).to_have_attribute("data-status", "acknowledged")
    expect(card.locator(".status")).to_have_text("Kvitterat av s-17")
    undo = card.locator("button.undo")
    expect(undo).to_have_text(re.compile(r"^Ångra \(\d+ s\)$"))
    # A mistaken tap is undone: the alert is open again, for everyone.
    undo.click()
    expect(card).to_have_attribute("data-status", "open")
    [stored] = api(base, "s-17", "/api/alerts?status=unresolved")["alerts"]
    assert (stored["status"], stored["acknowledged_by"]) == ("open", None)
    card.locator("button.ack").click()
    expect(card).to_have_attribute("data-status", "acknowledged")
    # Resolve: no outcome is chosen for the nurse; the button does nothing until she does.
    sel, resolve = card.locator("select.outcome"), card.locator("button.resolve")
    expect(sel).to_have_value("")
    expect(resolve).to_be_disabled()
    resolve.click(force=True)
    page.wait_for_timeout(300)
    [stored] = api(base, "s-17", "/api/alerts?status=unresolved")["alerts"]
    assert stored["status"] == "acknowledged"
    # A false alarm asks what happened.
    sel.select_option("false_alarm")
    expect(card.locator(".note-field")).to_be_visible()
    expect(card.locator(".note-label")).to_have_text("Vad hände? (krävs)")
    expect(resolve).to_be_disabled()
    card.locator("input.note").fill("Larmknappen låg under kudden")
    expect(resolve).to_be_enabled()
    check_page(page, watch)
    shot(page, tmp, f"phone-resolve-{phone_id(size)}.png")
    # She changes her mind: visited needs no note.
    sel.select_option("visited")
    expect(card.locator(".note-field")).to_be_hidden()
    resolve.click()
    expect(page.locator("li.alert")).to_have_count(0)
    expect(page.locator("#empty")).to_be_visible()
    [done] = api(base, "s-17", "/api/alerts?status=resolved")["alerts"]
    assert (done["outcome"], done["resolved_by"]) == ("visited", "s-17")
    check_page(page, watch)
    page.context.close()


@pytest.mark.parametrize("size", PHONES, ids=phone_id)
def test_twenty_alerts_current_and_older_with_folded_cards(
        browser: Browser, mosquitto: Mosquitto, gateway: tuple[str, Path],
        size: tuple[int, int]) -> None:
    base, tmp = gateway
    now = int(time.time() * 1000)
    two_days_ago = now - 2 * 86_400_000
    # Ten residents press the alarm button, nine of them also fall: 19 alerts tonight;
    # one alarm two days ago that nobody resolved.
    publish(mosquitto, [(f"bed-{i}", "sos", now - i * 1000) for i in range(10)]
            + [(f"bed-{i}", "fall", now - 500 - i * 1000) for i in range(9)]
            + [("bed-10", "sos", two_days_ago)])
    deadline = time.monotonic() + 30
    while len(api(base, "s-17", "/api/alerts?status=unresolved")["alerts"]) < 20:
        assert time.monotonic() < deadline, "20 alerts raised"
        time.sleep(0.3)
    page = phone(browser, size)
    watch = Watch(page)
    page.goto(f"{base}/#token={create_token(SECRET, 's-17', 3600)}")
    current = page.locator("#alerts > li.alert")
    expect(current).to_have_count(19)
    expect(page.locator("#older-count")).to_have_text("1")
    older = page.locator("#older-section")
    expect(older).not_to_have_attribute("open", "")
    # Plan and goals open on the first card of each resident only.
    expect(page.locator("#alerts .card[open]")).to_have_count(10)
    expanded = page.locator("#alerts > li.alert:has(.card[open])").first.bounding_box()
    folded = page.locator("#alerts > li.alert:not(:has(.card[open]))").first.bounding_box()
    assert expanded and folded and folded["height"] < expanded["height"]
    height = page.evaluate("document.documentElement.scrollHeight")
    print(f"\n{phone_id(size)}: 20 alerts, page {height} px high")
    check_page(page, watch)
    shot(page, tmp, f"phone-board-20-{phone_id(size)}.png", full=True)
    page.locator("#older-section > summary").click()
    old = page.locator("#older > li.alert")
    expect(old).to_be_visible()
    expect(old.locator(".name")).to_have_text("Karin Strand")
    # Not tonight: the day is shown, on the site's clock.
    expect(old.locator(".when")).to_have_text(re.compile(rf"^\d{{1,2}} {MONTH}( \d{{4}})? "
                                                         r"\d\d:\d\d$"))
    expect(old.locator(".card")).to_have_attribute("open", "")  # Karin's first card
    check_page(page, watch)
    page.context.close()


@pytest.mark.parametrize("size", PHONES, ids=phone_id)
def test_board_in_english(browser: Browser, mosquitto: Mosquitto, gateway: tuple[str, Path],
                          size: tuple[int, int]) -> None:
    base, tmp = gateway
    page = phone(browser, size)
    watch = Watch(page)
    page.goto(f"{base}/?lang=en#token={create_token(SECRET, 's-17', 3600)}")
    expect(page.locator("#empty")).to_have_text("No active alerts")
    expect(page.locator("#title")).to_have_text("Tillsyn – alerts – Solgården A")
    publish(mosquitto, [("bed-0", "sos", int(time.time() * 1000))])
    card = page.locator('li.alert[data-kind="sos"]')
    expect(card.locator(".kind")).to_have_text("Alarm button", timeout=15_000)
    expect(card.locator(".room")).to_have_text("Room: Bedroom")
    card.locator("button.ack").click()
    expect(card.locator("button.undo")).to_have_text(re.compile(r"^Undo \(\d+ s\)$"))
    expect(card.locator("select.outcome option").first).to_have_text("Choose an outcome …")
    expect(page.locator("#checks-title")).to_have_text("Tonight's checks")
    check_page(page, watch, swedish=False)
    page.context.close()


@pytest.mark.parametrize("size", PHONES, ids=phone_id)
def test_resident_page_with_goals_and_risk(browser: Browser, gateway: tuple[str, Path],
                                           size: tuple[int, int]) -> None:
    base, tmp = gateway
    page = phone(browser, size)
    watch = Watch(page)
    page.goto(f"{base}/resident?id=r-1000#token={create_token(SECRET, 's-bh', 3600)}")
    expect(page.locator("#name")).to_have_text("Anna Berg (r-1000)")
    expect(page.locator("#unit")).to_have_text("Enhet: Solgården A")
    expect(page.locator("#plan")).to_have_text(PLAN)
    expect(page.locator("li.goal-item")).to_have_count(2)
    # g-1 is due in 20 days: the form is there, nothing chosen, nothing to save yet.
    g1 = page.locator('li.goal-item[data-goal="g-1"]')
    expect(g1.locator("form.followup")).to_be_visible()
    expect(g1.locator("select")).to_have_value("")
    expect(g1.locator("button[type=submit]")).to_be_disabled()
    # g-2 is due in 90 days: no form yet, the date it opens instead.
    g2 = page.locator('li.goal-item[data-goal="g-2"]')
    expect(g2.locator("form.followup")).to_be_hidden()
    expect(g2.locator(".followup-later")).to_have_text(re.compile(
        rf"^Uppföljningen kan bekräftas från \d{{1,2}} {MONTH} \d{{4}}\.?$"))
    expect(g2.locator(".goal-meta")).to_contain_text("Förflyttning")  # life area d4, in Swedish
    # Risk: level, two charts with something in them, the factor in Swedish.
    expect(page.locator("#risk-summary")).to_contain_text(re.compile(r"^Nivå: "))
    # The method in force and why; the decline statistic against its threshold, in
    # Swedish number form (the seeded last day: z = 0.2 x 18 = 3.6, spread 2.4 cm/s).
    expect(page.locator("#risk-method")).to_have_text(
        "Metod: full modell (alla rörelsemått) (valt i konfigurationen)")
    expect(page.locator("#risk-decline-z")).to_have_text(re.compile(
        r"^Nedgångsstatistik 3,6 \(larm från \d,\d; personens dag-till-dag-spridning "
        r"2,4 cm/s\)\.$"))
    expect(page.locator("#risk-charts figure")).to_have_count(3)
    expect(page.locator("#risk-charts polyline")).to_have_count(3)
    expect(page.locator("#risk-factors li")).to_have_text(["Går långsammare än vanligt"])
    expect(page.locator("#risk-empty")).to_be_hidden()
    expect(page.locator("#risk-model")).to_contain_text("simulerade data")
    expect(page.frame_locator("#report").locator("h1")).to_contain_text(
        "Individuell uppföljning")
    check_page(page, watch)
    shot(page, tmp, f"phone-resident-{phone_id(size)}.png", full=True)
    page.context.close()


@pytest.mark.parametrize("size", PHONES, ids=phone_id)
def test_resident_page_without_goals_or_risk(browser: Browser, gateway: tuple[str, Path],
                                             size: tuple[int, int]) -> None:
    base, tmp = gateway
    page = phone(browser, size)
    watch = Watch(page)
    page.goto(f"{base}/resident?id=r-1001#token={create_token(SECRET, 's-bh', 3600)}")
    expect(page.locator("#name")).to_have_text("Bertil Ek (r-1001)")
    expect(page.locator("#plan")).to_have_text("Ingen handlingsplan registrerad.")
    expect(page.locator("#no-goals")).to_be_visible()
    expect(page.locator("li.goal-item")).to_have_count(0)
    expect(page.locator("#risk-empty")).to_be_visible()
    expect(page.locator("#risk-charts figure")).to_have_count(0)
    expect(page.locator("#risk-factors-box")).to_be_hidden()
    expect(page.locator("#risk-summary")).not_to_be_empty()
    check_page(page, watch)
    # Night staff: a resident outside their scope is a Swedish "not found", not a dump.
    page.goto(f"{base}/resident?id=r-9999#token={create_token(SECRET, 's-17', 3600)}")
    watch.expect_status = (404,)
    expect(page.locator("#error")).to_have_text(
        "Något gick fel: Hittades inte, eller hör inte till din enhet.")
    check_page(page, watch)
    page.context.close()


def test_accessibility_of_every_page_in_both_languages(
        browser: Browser, mosquitto: Mosquitto, gateway: tuple[str, Path]) -> None:
    """axe-core (the copy packaged with axe-playwright-python) run in Chromium on the login,
    the board with an acknowledged alert, the resident page and a report, in Swedish and
    English: no serious or critical violation. The whole result is written to
    axe-report.json (tmp, and $TILLSYN_SCREENSHOT_DIR when set)."""
    from axe_playwright_python.sync_playwright import Axe

    base, tmp = gateway
    axe = Axe()
    publish(mosquitto, [("bed-0", "sos", int(time.time() * 1000))])
    deadline = time.monotonic() + 20
    while not api(base, "s-17", "/api/alerts?status=unresolved")["alerts"]:
        assert time.monotonic() < deadline, "the alert"
        time.sleep(0.2)
    night, assessor = create_token(SECRET, "s-17", 3600), create_token(SECRET, "s-bh", 3600)
    report: dict[str, list[dict[str, Any]]] = {}
    errors: list[str] = []
    for lang in ("sv", "en"):
        q = "?lang=en" if lang == "en" else ""
        amp = "&lang=en" if lang == "en" else ""
        pages = {
            "login": (f"{base}/{q}", "#login-form"),
            "board": (f"{base}/{q}#token={night}", 'li.alert[data-kind="sos"]'),
            "resident": (f"{base}/resident?id=r-1000{amp}#token={assessor}", "li.goal-item"),
            "report": (f"{base}/reports{q}#token={assessor}", "#form"),
        }
        for name, (url, ready) in pages.items():
            page = phone(browser, (390, 844))  # each page on its own, as opened from a link
            watch = Watch(page)
            page.goto(url)
            expect(page.locator(ready).first).to_be_visible(timeout=15_000)
            if name == "board":
                card = page.locator('li.alert[data-kind="sos"]')
                if card.get_attribute("data-status") == "open":
                    card.locator("button.ack").click()
                expect(card.locator(".resolve-box")).to_be_visible()
            if name == "report":
                page.locator("select[name=resident]").select_option(label="Anna Berg (r-1000)")
                page.locator("#form button[type=submit]").click()
                expect(page.frame_locator("#report").locator("h1")).to_be_visible()
            if name == "resident":
                expect(page.locator("#risk-charts figure")).to_have_count(3)
            result = axe.run(page)
            report[f"{name}-{lang}"] = [
                {"id": v["id"], "impact": v["impact"], "help": v["help"],
                 "nodes": len(v["nodes"])} for v in result.response["violations"]]
            errors += watch.errors
            page.context.close()
    assert errors == [], errors
    (tmp / "axe-report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    folder = os.environ.get("TILLSYN_SCREENSHOT_DIR")
    if folder:
        shutil.copy(tmp / "axe-report.json", Path(folder) / "axe-report.json")
    print("\naxe:", json.dumps(report, ensure_ascii=False))
    serious = {k: [v for v in vs if v["impact"] in ("serious", "critical")]
               for k, vs in report.items()}
    assert all(not v for v in serious.values()), serious
    assert len(report) == 8


def test_api_docs_work_offline(browser: Browser, gateway: tuple[str, Path]) -> None:
    """/docs and /redoc render with every request outside the gateway refused (a closed
    care network), under the page's strict Content-Security-Policy."""
    base, _ = gateway
    ctx = browser.new_context(viewport={"width": 1000, "height": 800})
    outside: list[str] = []

    def only_the_gateway(route: Any) -> None:
        if route.request.url.startswith(base):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    ctx.route("**/*", only_the_gateway)
    page = ctx.new_page()
    watch = Watch(page)
    page.goto(base + "/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Tillsyn", timeout=15_000)
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    page.goto(base + "/redoc")
    expect(page.locator("h1").first).to_contain_text("Tillsyn", timeout=15_000)
    expect(page.get_by_text("/api/alerts/stream").first).to_be_attached()
    assert outside == [], outside
    assert watch.errors == [], watch.errors
    ctx.close()
