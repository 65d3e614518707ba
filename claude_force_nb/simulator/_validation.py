"""A request body as the API checks it: 400 ``invalid_request_error``, or 404 for an unknown model.

The basics (model, sampling, max_tokens, messages, system) are checked
here; each feature's own rules live with it: images and documents in
``_media``, tools in ``_tools``, thinking and effort in ``_thinking``, JSON
schemas in ``_schema``, prefill in ``_conversation``, cache marks in
``_prompt``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._models import KNOWN_MODELS, REJECTS_SAMPLING
from . import _conversation, _media, _prompt, _schema, _thinking, _tools


class InvalidRequest(ValueError):
    """A request body the real API would reject with 400 ``invalid_request_error``."""


class UnknownModel(LookupError):
    """A model the API does not serve: 404 ``not_found_error``."""


def validate(body: Any, *, count_only: bool = False) -> None:
    """Raise :class:`InvalidRequest` where the API would return 400, :class:`UnknownModel` for 404."""
    if not isinstance(body, dict):
        raise InvalidRequest("Request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: Field required (a non-empty string).")
    if model not in KNOWN_MODELS:
        raise UnknownModel(f"model: {model}")
    _check_sampling(model, body)
    if not count_only:
        _check_generation(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: at least one message is required.")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise InvalidRequest(f"messages.{i}.role: Input should be 'user' or 'assistant'.")
        if not _is_content(message.get("content")):
            raise InvalidRequest(f"messages.{i}.content: Input should be a string or a list of content blocks.")
    system = body.get("system")
    if system is not None and not _is_system(system):
        raise InvalidRequest("system: Input should be a string or a list of text blocks.")
    try:
        _conversation.check(model, messages)
        _media.attachments(body)
        _tools.check(body)
        _thinking.check(body, count_only=count_only)
        _schema.check_request(body)
        _prompt.blocks(body)  # cache_control: a bad mark, or too many
    except InvalidRequest:
        raise
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc


def _check_sampling(model: str, body: Mapping[str, Any]) -> None:
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1
        ):
            raise InvalidRequest(f"{name}: Input should be less than or equal to 1 and greater than or equal to 0.")
    top_k = body.get("top_k")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
        raise InvalidRequest("top_k: Input should be a non-negative integer.")
    # The API's own rules: the newest models take no sampling parameters at
    # all, the others one of temperature and top_p.
    if model in REJECTS_SAMPLING:
        for name in ("temperature", "top_p", "top_k"):
            if body.get(name) is not None:
                raise InvalidRequest(f"`{name}` is deprecated for this model.")
    elif body.get("temperature") is not None and body.get("top_p") is not None:
        raise InvalidRequest("`temperature` and `top_p` cannot both be specified for this model. Please use only one.")


def _check_generation(body: Mapping[str, Any]) -> None:
    max_tokens = body.get("max_tokens")
    # bool is an int subclass; the API rejects true/false here.
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        raise InvalidRequest("max_tokens: Field required (an integer).")
    if max_tokens < 1:
        raise InvalidRequest("max_tokens: must be greater than or equal to 1.")
    if not isinstance(body.get("stream", False), bool):
        raise InvalidRequest("stream: Input should be a valid boolean.")
    stops = body.get("stop_sequences", [])
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise InvalidRequest("stop_sequences: Input should be a list of non-empty strings.")


def _is_system(system: Any) -> bool:
    if isinstance(system, str):
        return True
    return isinstance(system, list) and all(
        isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str) for b in system
    )


def _is_content(content: Any) -> bool:
    if isinstance(content, str):
        return True
    return isinstance(content, list) and all(isinstance(b, dict) and isinstance(b.get("type"), str) for b in content)
