"""How a call is made, beyond its agent and task: named options from the magic line to the request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

# The options that are not API parameters; any other name is one (temperature, stop_sequences, thinking...).
_NAMED = (
    "model",
    "max_tokens",
    "system",
    "cache_mode",
    "timeout",
    "item",
    "attachments",
    "history",
    "schema",
    "sample",
    "context",
    "allow_run",
)


@dataclass(frozen=True, slots=True)
class CallOptions:
    """One call's options; what is left unset (None, empty) falls back to the agent's, then the orchestrator's.

    ``history`` holds earlier turns' messages (a conversation's); ``attachments``
    image and document blocks sent before the task; ``schema`` a pydantic
    model or JSON schema the answer is read with; ``tools`` functions (run by
    the SDK's tool loop, for at most ``max_turns`` replies) or tool
    definitions; ``sample`` which repeat of the same ask this is (each is a distinct cached call);
    ``context`` what the model may look at in the kernel (True, a namespace, or a workspace), and
    ``allow_run`` whether it may run code there (True: asking first; "yes": without asking);
    ``params`` the other Messages API parameters.
    """

    model: str | None = None
    max_tokens: int | None = None
    system: str | None = None
    cache_mode: str | None = None
    timeout: float | None = None
    item: Any = None
    attachments: tuple[dict[str, Any], ...] = ()
    history: tuple[dict[str, Any], ...] = ()
    schema: Any = None
    tools: tuple[Any, ...] = ()
    max_turns: int | None = None
    sample: int | None = None
    context: Any = None
    allow_run: Any = None
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, options: CallOptions | Mapping[str, Any] | None = None, /, **more: Any) -> CallOptions:
        """Options from keyword arguments over ``options`` (options, or a mapping of them): API parameters go to
        ``params``, and None is unset, so it never hides a value ``options`` sets."""
        if isinstance(options, CallOptions):
            return cls.of(**more).over(options) if more else options
        given = {**(options or {}), **{name: value for name, value in more.items() if value is not None}}
        named: dict[str, Any] = {}
        params: dict[str, Any] = {}
        for name, value in given.items():
            if value is None:
                continue
            if name in ("attachments", "history", "tools"):
                named[name] = _sequence(name, value)
            elif name in _NAMED or name == "max_turns":
                named[name] = value
            else:
                params[name] = value
        return cls(**named, params=params)

    def over(self, base: CallOptions) -> CallOptions:
        """These options where set, ``base``'s elsewhere; API parameters are merged, these winning."""
        if _empty(base):  # the common case, once per call of a sweep: nothing to merge
            return self
        if _empty(self):
            return base
        changes = {name: getattr(self, name) for name in _FIELDS if _set(self, name)}
        return replace(base, **changes, params={**base.params, **self.params})


_FIELDS = tuple(f.name for f in fields(CallOptions) if f.name != "params")


def _empty(options: CallOptions) -> bool:
    # Read on every call a cell or sweep prepares, so spelled out rather than looped over the fields; and
    # ``is None`` for the values, never ==: an item may be a pandas row, whose == is elementwise.
    o = options
    return (
        o.model is None
        and o.max_tokens is None
        and o.system is None
        and o.cache_mode is None
        and o.timeout is None
        and o.item is None
        and o.schema is None
        and o.max_turns is None
        and o.sample is None
        and o.context is None
        and o.allow_run is None
        and not (o.attachments or o.history or o.tools or o.params)
    )


def _set(options: CallOptions, name: str) -> bool:
    value = getattr(options, name)
    return value != () if isinstance(value, tuple) else value is not None


def _sequence(name: str, value: Any) -> tuple[Any, ...]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a list, not {type(value).__name__}.")
    return tuple(value)
