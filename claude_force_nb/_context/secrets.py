"""What looks like a secret, narrowly: a variable named like one that holds text, a value in a known key format,
and this process's own secrets from its environment. None of it is ever shown to the model.

The formats are the published shapes of API keys and tokens (Anthropic,
OpenAI, AWS, GitHub, Google, Slack, Hugging Face, Stripe), private key blocks
and JSON web tokens; ordinary text never matches them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .._config import environment_secrets

# A name that says its value is a secret (a whole word of it: not ``tokenizer``); only text is hidden for it.
_NAME = re.compile(
    r"(?i)(?:^|_)(?:api_?key|apikey|secret|secret_?key|token|access_?token|auth_?token|password|passwd|pwd"
    r"|credentials?|private_?key)(?:_|$)"
)
# Whatever the names, values in these formats are secrets.
FORMATS = {
    "an Anthropic API key": r"\bsk-ant-[a-z]+\d*-[A-Za-z0-9_\-]{16,}",
    "an OpenAI API key": r"\bsk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}|[A-Za-z0-9]{32,})",
    "an AWS access key id": r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    "a GitHub token": r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})",
    "a Google API key": r"\bAIza[0-9A-Za-z_\-]{35}",
    "a Slack token": r"\bxox[abposr]-[A-Za-z0-9\-]{10,}",
    "a Hugging Face token": r"\bhf_[A-Za-z0-9]{30,}",
    "a Stripe key": r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}",
    "a private key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?:.|\n)*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)",
    "a JSON web token": r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
}
_FORMAT = re.compile("|".join(f"(?P<f{i}>{pattern})" for i, pattern in enumerate(FORMATS.values())))
_LABELS = list(FORMATS)


def secret_name(name: str, value: Any) -> bool:
    """Whether a variable is hidden for its name: named like a secret, and holding text."""
    return issubclass(type(value), (str, bytes)) and _NAME.search(name) is not None


def secret_value(value: Any) -> bool:
    """Whether a text value is, or holds, a secret in a known format or one of this process's."""
    text = as_text(value)
    return text is not None and redact(text) != text


def as_text(value: Any) -> str | None:
    """A text value as a plain ``str`` (a subclass's methods are the user's code, never called); None otherwise."""
    kind = type(value)  # never value.__class__, which an object may fake
    if issubclass(kind, bytes):
        return bytes.decode(value, "utf-8", "replace")
    if issubclass(kind, str):
        return str.__str__(value)
    return None


def redact(text: str, also: Iterable[str] = ()) -> str:
    """``text`` with every secret in it replaced by what it looks like; ``also`` names more secrets (values)."""
    text = _FORMAT.sub(_label, text)
    for value in environment_secrets():
        text = _replace(text, value, "[redacted: a secret from the environment]")
    for value in also:
        text = _replace(text, value, "[redacted: a secret-named variable]")
    return text


def _replace(text: str, secret: str, label: str) -> str:
    # As written, and as a repr writes it (escaped): a value shown inside a dict or list is its repr.
    for form in {secret, repr(secret)[1:-1]}:
        if form and form in text:
            text = text.replace(form, label)
    return text


def _label(match: re.Match[str]) -> str:
    index = int(next(name for name, value in match.groupdict().items() if value is not None)[1:])
    return f"[redacted: {_LABELS[index]}]"
