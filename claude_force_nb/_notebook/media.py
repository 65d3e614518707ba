"""Figures, images and files as content blocks: real images and documents, within the API's limits.

A matplotlib Figure, a PIL image or an IPython ``Image`` becomes a base64
image block (PNG, or the JPEG an ``Image`` already holds); one larger than the
API takes (5 MB, 8,000 pixels a side) is made smaller, with a note: a figure is
drawn again at a lower resolution, a PIL image resized (Pillow). ``--file``
sends a PDF as a document block and a text file as a text document. Nothing
here imports matplotlib or Pillow unless the value is one of theirs.
"""

from __future__ import annotations

import base64
import io
import sys
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError

MAX_IMAGE_BYTES = 5 * 1024 * 1024  # of base64 text, as the API measures it
MAX_IMAGE_EDGE = 8000
MAX_PDF_BYTES = 32 * 1024 * 1024
MAX_TEXT_BYTES = 10 * 1024 * 1024
_MEDIA = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF8": "image/gif"}
_FIT_ATTEMPTS = 4


def image_block(value: Any, name: str) -> tuple[dict[str, Any], str | None]:
    """An image content block for ``value``, and a note when it had to be made smaller."""
    kind = type(value).__module__.split(".")[0]
    if kind == "matplotlib":
        data, note = _figure_png(value, name)
    elif kind == "PIL":
        data, note = _pil_png(value, name)
    else:  # IPython.display.Image
        data, note = _ipython_image(value, name), None
    media_type = _media_type(data)
    if media_type is None:
        raise UsageError(f"{{{name}}} holds no PNG, JPEG, GIF or WebP image to send.")
    encoded = base64.b64encode(data).decode("ascii")
    if len(encoded) > MAX_IMAGE_BYTES:
        raise UsageError(
            f"{{{name}}} is {len(encoded) / 2**20:.1f} MB as base64; the API takes images of at most 5 MB. "
            "Save it smaller."
        )
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": encoded}}, note


def current_figures() -> list[tuple[str, Any]]:
    """The open matplotlib figures, as (label, figure); none unless pyplot is in use."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None:
        return []
    return [(f"figure {number}", pyplot.figure(number)) for number in pyplot.get_fignums()]


def file_block(path_text: str) -> dict[str, Any]:
    """``--file PATH``: a PDF as a document block, a text file as a text document."""
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise UsageError(f"--file {path_text}: no such file.")
    size = path.stat().st_size
    if size > MAX_PDF_BYTES:  # checked before reading: nothing larger goes, PDF or text
        raise UsageError(f"--file {path_text}: {size / 2**20:.1f} MB; the API takes files of at most 32 MB.")
    data = path.read_bytes()
    if data.startswith(b"%PDF-"):
        source = {"type": "base64", "media_type": "application/pdf", "data": base64.b64encode(data).decode("ascii")}
        return {"type": "document", "source": source, "title": path.name}
    if size > MAX_TEXT_BYTES:
        raise UsageError(f"--file {path_text}: {size / 2**20:.1f} MB is too large to send as text.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"--file {path_text}: neither a PDF nor UTF-8 text, so it cannot be sent.") from None
    return {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": text},
        "title": path.name,
    }


def _figure_png(figure: Any, name: str) -> tuple[bytes, str | None]:
    dpi = float(figure.get_dpi())
    width, height = figure.get_size_inches()
    note = None
    edge = max(width, height) * dpi
    if edge > MAX_IMAGE_EDGE:
        dpi = MAX_IMAGE_EDGE / max(width, height)
        note = f"{{{name}}} was drawn at {dpi:.0f} dpi to fit the API's {MAX_IMAGE_EDGE} pixels a side."
    for _ in range(_FIT_ATTEMPTS):
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=dpi)
        data = buffer.getvalue()
        if _fits(data):
            return data, note
        dpi /= 2
        note = f"{{{name}}} was drawn at {dpi:.0f} dpi to fit the API's 5 MB per image."
    return data, note


def _pil_png(image: Any, name: str) -> tuple[bytes, str | None]:
    note = None
    if image.mode not in ("RGB", "RGBA", "L", "LA", "P", "1", "I;16"):  # CMYK, YCbCr...: no PNG for those
        image = image.convert("RGBA" if "A" in image.mode else "RGB")
    scale = min(1.0, MAX_IMAGE_EDGE / max(image.size))
    for _ in range(_FIT_ATTEMPTS):
        sized = (
            image
            if scale >= 1.0
            else image.resize((max(1, int(image.width * scale)), max(1, int(image.height * scale))))
        )
        buffer = io.BytesIO()
        try:
            sized.save(buffer, format="PNG")
        except OSError as exc:
            raise UsageError(f"{{{name}}} could not be written as PNG: {exc}.") from None
        if scale < 1.0:
            note = f"{{{name}}} was resized to {sized.width}×{sized.height} to fit the API's limits."
        if _fits(buffer.getvalue()):
            break
        scale *= 0.5
    return buffer.getvalue(), note


def _ipython_image(image: Any, name: str) -> bytes:
    data = getattr(image, "data", None)
    if not data and getattr(image, "url", None):  # an Image made from a URL keeps the URL, not the bytes
        raise UsageError(f"{{{name}}} is an image by URL, not bytes; make it with Image(data=...) or a file name.")
    return bytes(data) if isinstance(data, (bytes, bytearray)) else b""


def _media_type(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((media for magic, media in _MEDIA.items() if data.startswith(magic)), None)


def _fits(data: bytes) -> bool:
    return 4 * -(-len(data) // 3) <= MAX_IMAGE_BYTES  # the base64 text's length
