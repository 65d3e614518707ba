"""What a file's bytes say about it, read from headers alone: image format and size, PDF pages.

No third-party decoder: each image format keeps its width and height in a
fixed place near the start (PNG's IHDR chunk, JPEG's SOFn segment, GIF's
logical screen, WebP's VP8/VP8L/VP8X chunk), which is all the API's limits
need. Pages are counted roughly, as ``/Type /Page`` objects (not ``/Pages``,
the tree's inner nodes); a compressed object stream hides its pages, so such
a PDF counts as one page.
"""

from __future__ import annotations

import re
import struct
from typing import NamedTuple

# Media type -> the short name the answer uses.
IMAGE_TYPES = {"image/jpeg": "jpeg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}
PDF_MAGIC = b"%PDF-"

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# SOF0-SOF15 carry the frame size, except DHT (C4), JPG (C8) and DAC (CC), which share the range.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers that stand alone, without a length: TEM, RST0-7, SOI, EOI.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xDA)})
_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


class Size(NamedTuple):
    width: int
    height: int


def sniff(data: bytes) -> str | None:
    """The image media type ``data`` really is, by its magic bytes; None if it is none of the four."""
    if data.startswith(_PNG_MAGIC):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_size(data: bytes, media_type: str) -> Size | None:
    """Width and height from the header of an image of ``media_type``; None if the header is broken."""
    try:
        if media_type == "image/png":
            return _png(data)
        if media_type == "image/jpeg":
            return _jpeg(data)
        if media_type == "image/gif":
            return _gif(data)
        if media_type == "image/webp":
            return _webp(data)
    except (struct.error, IndexError):
        return None
    return None


def pdf_pages(data: bytes) -> int:
    """Page objects in a PDF, at least 1."""
    return max(1, len(_PAGE.findall(data)))


def _valid(width: int, height: int) -> Size | None:
    return Size(width, height) if width > 0 and height > 0 else None


def _png(data: bytes) -> Size | None:
    if data[12:16] != b"IHDR":
        return None
    return _valid(*struct.unpack(">II", data[16:24]))


def _gif(data: bytes) -> Size | None:
    return _valid(*struct.unpack("<HH", data[6:10]))


def _jpeg(data: bytes) -> Size | None:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _SOF:
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return _valid(width, height)
        if marker == 0xDA:  # start of scan: entropy-coded data follows, no frame header came first
            return None
        i += 2 + length
    return None


def _webp(data: bytes) -> Size | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":  # lossy: a key frame's start code, then 14-bit width and height
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack("<HH", data[26:30])
        return _valid(width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L":  # lossless: a signature byte, then width-1 and height-1 in 14 bits each
        if data[20] != 0x2F:
            return None
        (bits,) = struct.unpack("<I", data[21:25])
        return _valid((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":  # extended: the canvas size, 24 bits each, less one
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return _valid(width, height)
    return None
