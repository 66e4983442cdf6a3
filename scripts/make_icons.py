"""Draw the app icons (a heart on the brand colour) as PNGs, with the standard library only.

Run once when the design changes: python scripts/make_icons.py
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "static" / "icons"
ACCENT = (0x2F, 0x6F, 0x62)
WHITE = (0xFF, 0xFF, 0xFF)


def _in_heart(x: float, y: float) -> bool:
    # The classic implicit heart curve, in a [-1.3, 1.3] square with y pointing up.
    a = x * x + y * y - 1
    return a * a * a - x * x * y * y * y <= 0


def _png(size: int, pixels: list[bytes]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + row for row in pixels)
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


def draw(size: int, heart_share: float) -> bytes:
    rows = []
    for j in range(size):
        row = bytearray()
        for i in range(size):
            x = (i + 0.5 - size / 2) / (size * heart_share / 2) * 1.3
            y = -(j + 0.5 - size / 2) / (size * heart_share / 2) * 1.3 + 0.1
            row.extend(WHITE if _in_heart(x, y) else ACCENT)
        rows.append(bytes(row))
    return _png(size, rows)


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "icon-192.png").write_bytes(draw(192, 0.7))
    (OUT / "icon-512.png").write_bytes(draw(512, 0.7))
    (OUT / "maskable-512.png").write_bytes(draw(512, 0.5))  # inside the 80% safe zone
    print("icons written to", OUT)
