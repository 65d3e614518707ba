"""What each model accepts beyond the basics: thinking modes, effort levels, prefill, image resolution.

From the API's model pages (adaptive thinking, effort, vision). The
generation that rejects sampling parameters (Opus 4.7 and later, every 5.x
model, Mythos Preview) is also the one that thinks only adaptively, shows
its thinking only when asked, and reads images at a higher resolution;
one set in ``.._models`` names it.
"""

from __future__ import annotations

from typing import NamedTuple

from .._models import KNOWN_MODELS, REJECTS_SAMPLING

EFFORTS = ("low", "medium", "high", "xhigh", "max")
THINKING_TYPES = ("enabled", "adaptive", "disabled", "between_tools")

# Before 4.6: manual thinking only, and (Opus 4.5 aside) no effort.
_BEFORE_ADAPTIVE = frozenset(m for m in KNOWN_MODELS if m.startswith(("claude-haiku-4-5", "claude-sonnet-4-5")))
_OPUS_4_5 = frozenset(m for m in KNOWN_MODELS if m.startswith("claude-opus-4-5"))
PRE_ADAPTIVE = _BEFORE_ADAPTIVE | _OPUS_4_5
ADAPTIVE_ONLY = REJECTS_SAMPLING
# Thinking cannot be turned off on these.
ALWAYS_THINKS = frozenset(m for m in KNOWN_MODELS if m.startswith(("claude-fable", "claude-mythos"))) | {
    "claude-opus-4-7"
}
NO_EFFORT = _BEFORE_ADAPTIVE
NO_MAX_EFFORT = NO_EFFORT | _OPUS_4_5
NO_XHIGH_EFFORT = NO_MAX_EFFORT | {"claude-opus-4-6", "claude-sonnet-4-6", "claude-mythos-preview", "claude-haiku-5-5"}
# "This model does not support assistant message prefill."
NO_PREFILL = REJECTS_SAMPLING | {"claude-opus-4-6"}
# Thinking text is left out of the answer unless ``display: "summarized"`` asks for it.
OMITS_THINKING = REJECTS_SAMPLING


class ImageLimits(NamedTuple):
    """An image larger than this is scaled down before the model reads it (and is billed as scaled)."""

    long_edge: int
    tokens: int


STANDARD_IMAGES = ImageLimits(1568, 1600)
HIGH_RESOLUTION_IMAGES = ImageLimits(2576, 4784)


def image_limits(model: str) -> ImageLimits:
    return HIGH_RESOLUTION_IMAGES if model in REJECTS_SAMPLING else STANDARD_IMAGES


def efforts(model: str) -> tuple[str, ...]:
    """The effort levels ``model`` takes; empty if it takes none."""
    if model in NO_EFFORT:
        return ()
    left_out = {"xhigh"} if model in NO_XHIGH_EFFORT else set()
    if model in NO_MAX_EFFORT:
        left_out.add("max")
    return tuple(level for level in EFFORTS if level not in left_out)
