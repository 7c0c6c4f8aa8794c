"""The documentation stands alone: every relative link in README.md and docs/ resolves to
a file in the repository, and nothing points at the product contract or data folders that
only the developers have (SPEC, ../shared)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_reference_resolves_inside_the_repository(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    broken = [t for t in LINK.findall(text)
              if not re.match(r"^([a-z]+:|#)", t) and not (page.parent / t.split("#")[0]).exists()]
    assert broken == [], f"{page.name}: links to nothing: {broken}"
    outside = re.findall(r"\bSPEC\b[^\n]{0,20}|\.\./shared[^\s)]*", text)
    assert outside == [], f"{page.name}: refers outside the repository: {outside}"


def test_code_cites_the_docs_not_the_contract() -> None:
    cited = [f"{p.relative_to(ROOT)}" for folder in ("gateway", "detectors", "device_profiles")
             for p in (ROOT / folder).rglob("*.py") if "SPEC section" in p.read_text()]
    assert cited == []
