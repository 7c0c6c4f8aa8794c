"""The ICF codes and IBIC life areas shipped as data (`data/icf.yaml`), with titles."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml
from pydantic import Field

from gateway.config.base import StrictModel

ICF_FILE = Path(__file__).with_name("data") / "icf.yaml"


class Title(StrictModel):
    """A title in Swedish and English."""

    sv: str = Field(..., min_length=1)
    en: str = Field(..., min_length=1)

    def get(self, lang: str) -> str:
        """The title in `lang` (Swedish unless "en")."""
        return self.en if lang == "en" else self.sv


class Catalogue(StrictModel):
    """IBIC life areas (d1-d9, trygghet) and ICF codes."""

    life_areas: dict[str, Title]
    codes: dict[str, Title]

    def area_of(self, code: str) -> str | None:
        """The life area an activity code belongs to (d450 -> d4); None for b/e/s codes."""
        return code[:2] if code.startswith("d") else None

    def problems(self, life_area: str, codes: list[str]) -> list[str]:
        """Why these codes do not fit this life area (empty when they do)."""
        out = []
        if life_area not in self.life_areas:
            out.append(f"life_area {life_area!r} is not one of {', '.join(self.life_areas)}")
        for code in codes:
            if code not in self.codes:
                out.append(f"ICF code {code!r} is not in the shipped catalogue "
                           "(gateway/ibic/data/icf.yaml)")
            elif (area := self.area_of(code)) is not None and life_area != "trygghet" \
                    and area != life_area:
                out.append(f"ICF code {code!r} belongs to life area {area}, not {life_area}")
        return out


@cache
def catalogue() -> Catalogue:
    """The shipped catalogue (validated once)."""
    return Catalogue.model_validate(yaml.safe_load(ICF_FILE.read_text(encoding="utf-8")))
