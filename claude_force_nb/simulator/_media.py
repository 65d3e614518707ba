"""Image and document blocks: checked against the API's limits, sized for token counting, described.

Limits, from the vision and PDF guides: the four image types, at most 5 MB
of base64 per image, 8000×8000 px (2000×2000 px once a request has more
than 20 images), 100 images and 100 PDF pages per request. Sources given by
URL are accepted and never fetched; ``file`` sources need the Files API,
which this server does not serve, so they are refused.

Token estimates: an image costs width×height/750 tokens once scaled to the
model's limits (``_capabilities.image_limits``); one given by URL costs the
most an image can. A PDF page costs ``PDF_TOKENS_PER_PAGE`` (the PDF guide
puts a page at 1,500-3,000 tokens of text and page image); a PDF by URL
counts as one page. Text documents count their characters, as text does.
Sizes are in characters, ``CHARS_PER_TOKEN`` to the token, so the prompt
adds them up with its text.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from . import _capabilities, _formats
from ._conversation import blocks_of

CHARS_PER_TOKEN = 4
MAX_IMAGE_BASE64 = 5 * 1024 * 1024
MAX_IMAGE_EDGE = 8000
MANY_IMAGES = 20
MAX_IMAGE_EDGE_MANY = 2000
MAX_IMAGES = 100
MAX_PDF_PAGES = 100
PDF_TOKENS_PER_PAGE = 2000
PIXELS_PER_TOKEN = 750

_IMAGE_TYPES = "'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"


class Attachment(NamedTuple):
    """An image or document as received: its kind, what the answer says of it, its size in characters."""

    kind: str  # "image", "image URL", "PDF", "PDF URL", "text document", "content document"
    detail: str  # "640×480 png", "3 pages", or ""
    chars: int
    pages: int = 0
    edge: int = 0  # the longer side of an image, in pixels


def walk(body: Mapping[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """Every content block of the messages, with its path, including those inside tool results and documents."""

    def inside(blocks: list[dict[str, Any]], where: str) -> Iterator[tuple[dict[str, Any], str]]:
        for j, block in enumerate(blocks):
            path = f"{where}.{j}"
            yield block, path
            nested = block.get("content")
            if block.get("type") == "tool_result" and isinstance(nested, list):
                yield from inside(blocks_of(nested), f"{path}.content")
            source = block.get("source")
            if block.get("type") == "document" and isinstance(source, dict) and source.get("type") == "content":
                yield from inside(blocks_of(source.get("content")), f"{path}.document.source.content")

    for i, message in enumerate(body.get("messages") or ()):
        if isinstance(message, dict):
            yield from inside(blocks_of(message.get("content")), f"messages.{i}.content")


def attachments(body: Mapping[str, Any]) -> list[Attachment]:
    """The request's images and documents, checked: ValueError, worded as the API's 400, for a bad one."""
    model = str(body.get("model"))
    found = [a for block, where in walk(body) if (a := attachment(block, model, where)) is not None]
    images = [a for a in found if a.kind.startswith("image")]
    if len(images) > MAX_IMAGES:
        raise ValueError(f"Too many images in request: {len(images)}. A request may carry at most {MAX_IMAGES}.")
    if len(images) > MANY_IMAGES and any(a.edge > MAX_IMAGE_EDGE_MANY for a in images):
        raise ValueError(
            "At least one of the image dimensions exceed max allowed size for many-image requests: "
            f"{MAX_IMAGE_EDGE_MANY} pixels"
        )
    pages = sum(a.pages for a in found)
    if pages > MAX_PDF_PAGES:
        raise ValueError(f"A maximum of {MAX_PDF_PAGES} PDF pages may be provided. Found {pages}.")
    return found


def attachment(block: Mapping[str, Any], model: str, where: str) -> Attachment | None:
    """One block as an attachment (None for other blocks); ValueError if it is malformed."""
    kind = block.get("type")
    if kind not in ("image", "document"):
        return None
    source = block.get("source")
    if not isinstance(source, dict):
        raise ValueError(f"{where}.{kind}.source: Field required (an object).")
    origin = source.get("type")
    if origin == "url":
        if not isinstance(source.get("url"), str) or not source["url"]:
            raise ValueError(f"{where}.{kind}.source.url: Field required (a URL string).")
        if kind == "image":
            return Attachment("image URL", "", _capabilities.image_limits(model).tokens * CHARS_PER_TOKEN)
        return Attachment("PDF URL", "", PDF_TOKENS_PER_PAGE * CHARS_PER_TOKEN, pages=1)
    if origin == "file":
        raise ValueError(f"{where}.{kind}.source.file_id: File sources need the Files API; send the data as base64.")
    if kind == "image":
        if origin != "base64":
            raise ValueError(f"{where}.image.source.type: Input should be 'base64', 'url' or 'file'.")
        return _image(source, model, f"{where}.image.source")
    _check_document_fields(block, where)
    if origin == "base64":
        return _pdf(source, f"{where}.document.source")
    if origin == "text":
        if source.get("media_type") != "text/plain":
            raise ValueError(f"{where}.document.source.text.media_type: Input should be 'text/plain'.")
        if not isinstance(source.get("data"), str):
            raise ValueError(f"{where}.document.source.text.data: Field required (a string).")
        return Attachment("text document", "", len(source["data"]) + _label_chars(block))
    if origin == "content":
        content = source.get("content")
        if not isinstance(content, (str, list)):
            raise ValueError(f"{where}.document.source.content: Input should be a string or a list of blocks.")
        inner = blocks_of(content)
        text = sum(len(b["text"]) for b in inner if isinstance(b.get("text"), str))
        images = sum(
            a.chars
            for i, b in enumerate(inner)
            if (a := attachment(b, model, f"{where}.document.source.content.{i}")) is not None
        )
        return Attachment("content document", "", text + images + _label_chars(block))
    raise ValueError(f"{where}.document.source.type: Input should be 'base64', 'text', 'content', 'url' or 'file'.")


def describe(found: list[Attachment]) -> str:
    """What a request carried, e.g. "1 image 640×480 png, 1 PDF of 3 pages"; "" for nothing."""
    parts = []
    for kind in ("image", "image URL", "PDF", "PDF URL", "text document", "content document"):
        some = [a for a in found if a.kind == kind]
        if not some:
            continue
        noun = kind.split()[0] if kind.endswith("URL") else kind
        counted = f"{len(some)} {noun}{'s' if len(some) > 1 else ''}"
        if kind == "image":
            details = [a.detail for a in some[:3]] + (["\u2026"] if len(some) > 3 else [])
            parts.append(f"{counted} {details[0]}" if len(some) == 1 else f"{counted} ({', '.join(details)})")
        elif kind == "PDF":
            pages = sum(a.pages for a in some)
            parts.append(f"{counted} of {pages} page{'s' if pages > 1 else ''}{' in all' if len(some) > 1 else ''}")
        elif kind.endswith("URL"):
            parts.append(f"{counted} by URL")
        else:
            parts.append(counted)
    return ", ".join(parts)


def image_tokens(width: int, height: int, limits: _capabilities.ImageLimits) -> int:
    """width×height/750, after scaling the long edge down to the model's limit; at most its token cap."""
    scale = min(1.0, limits.long_edge / max(width, height))
    scaled = max(1, round(width * scale)) * max(1, round(height * scale))
    return min(limits.tokens, math.ceil(scaled / PIXELS_PER_TOKEN))


def _image(source: Mapping[str, Any], model: str, where: str) -> Attachment:
    media_type, data = source.get("media_type"), source.get("data")
    if media_type not in _formats.IMAGE_TYPES:
        raise ValueError(f"{where}.base64.media_type: Input should be {_IMAGE_TYPES}.")
    if not isinstance(data, str):
        raise ValueError(f"{where}.base64.data: Field required (a base64 string).")
    if len(data) > MAX_IMAGE_BASE64:
        raise ValueError(f"{where}.base64: image exceeds 5 MB maximum: {len(data)} bytes > {MAX_IMAGE_BASE64} bytes")
    raw = _decoded(data, f"{where}.base64.data", "image")
    actual = _formats.sniff(raw)
    if actual is None:
        raise ValueError(
            f"{where}.base64.data: Could not process image: the data is not a jpeg, png, gif or webp image."
        )
    if actual != media_type:
        raise ValueError(
            f"{where}.base64.data: The image was specified using the {media_type} media type, "
            f"but the image appears to be a {actual} image"
        )
    size = _formats.image_size(raw, media_type)
    if size is None:
        raise ValueError(f"{where}.base64.data: Could not process image: its {actual} header is damaged.")
    if max(size) > MAX_IMAGE_EDGE:
        exceeded = f"At least one of the image dimensions exceed max allowed size: {MAX_IMAGE_EDGE} pixels"
        raise ValueError(f"{where}.base64.data: {exceeded}")
    tokens = image_tokens(size.width, size.height, _capabilities.image_limits(model))
    detail = f"{size.width}\u00d7{size.height} {_formats.IMAGE_TYPES[media_type]}"
    return Attachment("image", detail, tokens * CHARS_PER_TOKEN, edge=max(size))


def _pdf(source: Mapping[str, Any], where: str) -> Attachment:
    if source.get("media_type") != "application/pdf":
        raise ValueError(f"{where}.base64.media_type: Input should be 'application/pdf'.")
    data = source.get("data")
    if not isinstance(data, str):
        raise ValueError(f"{where}.base64.data: Field required (a base64 string).")
    raw = _decoded(data, f"{where}.base64.data", "PDF")
    if not raw.startswith(_formats.PDF_MAGIC):
        raise ValueError(f"{where}.base64.data: The PDF specified was not valid.")
    pages = _formats.pdf_pages(raw)
    detail = f"{pages} page{'s' if pages > 1 else ''}"
    return Attachment("PDF", detail, pages * PDF_TOKENS_PER_PAGE * CHARS_PER_TOKEN, pages=pages)


def _decoded(data: str, where: str, what: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{where}: The {what} data is not valid base64 ({exc}).") from exc


def _check_document_fields(block: Mapping[str, Any], where: str) -> None:
    for name in ("title", "context"):
        if block.get(name) is not None and not isinstance(block[name], str):
            raise ValueError(f"{where}.document.{name}: Input should be a valid string.")
    citations = block.get("citations")
    if citations is not None and not (
        isinstance(citations, dict) and isinstance(citations.get("enabled", False), bool)
    ):
        raise ValueError(f"{where}.document.citations: Input should be an object like {{'enabled': true}}.")


def _label_chars(block: Mapping[str, Any]) -> int:
    # A document's title and context are read as text alongside it.
    return sum(len(block[name]) for name in ("title", "context") if isinstance(block.get(name), str))
