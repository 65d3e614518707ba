"""A call to an agent: as the caller describes it, and prepared to run."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._context import Workspace
from ._options import CallOptions
from ._request import Request


@dataclass(frozen=True)
class Call:
    """One call of a batch: an agent, its task, and per-call options (a mapping of them is taken too)."""

    agent: str
    task: str
    model: str | None = None
    item: Any = None
    options: CallOptions = field(default_factory=CallOptions)

    def __post_init__(self) -> None:
        options = self.options
        if not isinstance(options, CallOptions) or self.model is not None or self.item is not None:
            options = CallOptions.of(options, model=self.model, item=self.item)
        object.__setattr__(self, "options", options)
        object.__setattr__(self, "model", options.model)
        object.__setattr__(self, "item", options.item)


@dataclass(frozen=True, slots=True)
class PreparedCall:
    """A call ready to run: its agent resolved, its request built and keyed, once.

    ``key`` is the request's cache fingerprint, None when the call bypasses
    the cache; ``origin`` the endpoint it goes to (answers are cached under
    both); ``mode`` is the cache mode it runs in; ``timeout`` its deadline in
    seconds; ``schema`` the pydantic model or JSON schema the answer is read
    with, if any; ``tools`` the SDK function tools its tool loop runs (their
    definitions are in the request), for at most ``max_turns`` replies;
    ``sample`` which repeat of the same ask it is (its own cache entry);
    ``context`` the workspace its ``--context`` tools read (a cached answer is
    served only while every read gives what the model saw).
    """

    agent: str
    task: str
    request: Request
    key: str | None
    mode: str
    timeout: float
    item: Any = None
    origin: str = ""
    schema: Any = None
    tools: tuple[Any, ...] = ()
    max_turns: int = 8
    sample: int = 0
    context: Workspace | None = None

    @property
    def model(self) -> str:
        return self.request.model


def as_calls(tasks: Iterable[Call | Sequence[Any]]) -> list[Call]:
    """Accept Call objects, ``(agent, task)`` or ``(agent, task, options)`` tuples."""
    calls = []
    for entry in tasks:
        if isinstance(entry, Call):
            calls.append(entry)
        elif len(entry) == 2:
            calls.append(Call(entry[0], entry[1]))
        elif len(entry) == 3 and isinstance(entry[2], (Mapping, CallOptions)):
            calls.append(Call(entry[0], entry[1], options=CallOptions.of(entry[2])))
        else:
            raise TypeError(f"Expected Call, (agent, task) or (agent, task, options); got {entry!r}.")
    return calls
