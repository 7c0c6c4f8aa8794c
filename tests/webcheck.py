"""What every page test checks on a phone: no page errors, no console errors other than
the API answers the test expects, no horizontal scroll, and in a Swedish page no English
word from the UI's own English strings (nor ISO timestamps or "W44" week labels)."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from playwright.sync_api import ConsoleMessage, Page

CATALOGUE = Path(__file__).resolve().parent.parent / "gateway" / "web" / "static" / "messages.json"
PHONES = [(320, 640), (390, 844)]
WORD = re.compile(r"[A-Za-zÅÄÖåäöÉé]+")
# Words the English catalogue shares with Swedish (and names the product uses in both).
SHARED = {"live", "prio", "status", "start", "icf", "tillsyn", "ibic", "csv", "json", "html",
          "api", "id", "min", "cm", "s", "ok", "sms", "model", "mode", "risk", "test", "person",
          "data", "all", "plan", "service", "alarm"}
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
WEEK = re.compile(r"\bW\d{1,2}\b")
EXPECTED_API = re.compile(r"Failed to load resource: the server responded with a status of "
                          r"(\d{3})")


@cache
def english_words() -> frozenset[str]:
    """Words of the English catalogue that are not Swedish words of the Swedish one."""
    cat = json.loads(CATALOGUE.read_text())
    sv = {w.lower() for v in cat["sv"].values() for w in WORD.findall(v)}
    en = {w.lower() for v in cat["en"].values() for w in WORD.findall(v)}
    return frozenset(w for w in en - sv - SHARED if len(w) >= 3)


class Watch:
    """Collects a page's errors; `expect_status` names API answers that are not errors."""

    def __init__(self, page: Page, expect_status: tuple[int, ...] = ()) -> None:
        self.errors: list[str] = []
        self.expect_status = expect_status
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("console", self._console)

    def _console(self, msg: ConsoleMessage) -> None:
        if msg.type != "error":
            return
        m = EXPECTED_API.search(msg.text)
        if m and int(m.group(1)) in self.expect_status:
            return
        self.errors.append(f"console: {msg.text} {msg.location.get('url', '')}")


def page_text(page: Page) -> str:
    """All visible text of the page and of its report frames."""
    texts = [page.locator("body").inner_text()]
    for frame in page.frames[1:]:
        try:
            texts.append(frame.locator("body").inner_text(timeout=2000))
        except Exception:  # noqa: BLE001 - an empty or detached frame has no text
            pass
    titles = page.evaluate("""() => [document.title, ...[...document.querySelectorAll(
        '[aria-label],[placeholder],[title]')].flatMap(e => [e.getAttribute('aria-label'),
        e.getAttribute('placeholder'), e.getAttribute('title')]).filter(Boolean)]""")
    return "\n".join(texts + list(titles))


def english_in(page: Page, allowed: set[str] | None = None) -> list[str]:
    """English words (and ISO timestamps, week labels) found in a Swedish page."""
    text = page_text(page)
    words = {w.lower() for w in WORD.findall(text)}
    found = sorted(words & english_words() - {a.lower() for a in allowed or set()})
    found += ISO_TIME.findall(text) + WEEK.findall(text)
    return found


def horizontal_overflow(page: Page) -> int:
    """How many pixels the page is wider than the phone (0 when it fits)."""
    return int(page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - window.innerWidth"))


def check_page(page: Page, watch: Watch, *, swedish: bool = True,
               allowed: set[str] | None = None) -> None:
    """The checks every page at phone size must pass."""
    assert watch.errors == [], watch.errors
    over = horizontal_overflow(page)
    assert over <= 0, f"{over} px wider than the {page.viewport_size} phone"
    if swedish:
        found = english_in(page, allowed)
        assert found == [], f"English in a Swedish page: {found}"
