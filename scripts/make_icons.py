"""Draw the web app's icons (PNG, no image library): a white "T" on Tillsyn blue, with a
margin that survives the round masks Android puts on maskable icons.

Usage: python scripts/make_icons.py   (writes gateway/web/static/icons/)
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

BLUE = (31, 78, 121)
WHITE = (255, 255, 255)
OUT = Path(__file__).resolve().parent.parent / "gateway" / "web" / "static" / "icons"


def png(size: int) -> bytes:
    """A size x size RGB PNG."""
    rows = []
    bar_top, bar_bottom = int(size * 0.28), int(size * 0.40)
    bar_left, bar_right = int(size * 0.25), int(size * 0.75)
    stem_left, stem_right = int(size * 0.44), int(size * 0.56)
    stem_bottom = int(size * 0.74)
    for y in range(size):
        row = bytearray([0])  # filter: none
        for x in range(size):
            in_bar = bar_top <= y < bar_bottom and bar_left <= x < bar_right
            in_stem = bar_top <= y < stem_bottom and stem_left <= x < stem_right
            row += bytes(WHITE if in_bar or in_stem else BLUE)
        rows.append(bytes(row))
    raw = zlib.compress(b"".join(rows), 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + \
        chunk(b"IEND", b"")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for size in (192, 512):
        (OUT / f"icon-{size}.png").write_bytes(png(size))


if __name__ == "__main__":
    main()
