"""Conversations: turns sent with the whole history before them, so every turn is a request the cache can key.

A turn may carry a ``key`` (in a notebook, the cell that sent it). Sending
again with a key the conversation already holds rewinds it to just before that
turn: the turn is asked again with the history it had, and the turns after it,
which followed the old answer, are dropped. Re-running a cell therefore never
forks nor duplicates a conversation, and re-running a notebook top to bottom
rebuilds each turn, from the cache when nothing changed.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol

from ._call import Call, PreparedCall
from ._errors import AgentNotFoundError
from ._options import CallOptions
from ._results import AgentResult, failure


class Engine(Protocol):
    """What a conversation needs of the orchestrator: to prepare a call, and to answer it."""

    def prepare(self, agent: str, task: str, options: CallOptions | None = None) -> PreparedCall: ...
    async def run(self, call: PreparedCall, *, on_text: Callable[[str], object] | None = None) -> AgentResult: ...


@dataclass(frozen=True, slots=True)
class Turn:
    """One exchange: what was asked, by which agent, and the answer."""

    task: str
    result: AgentResult
    key: Hashable | None = None
    content: Any = None  # what the turn sent, images and documents included; else the task's text

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The turn as the Messages API takes it in a later request's history."""
        # The answer as text: earlier turns' thinking and tool blocks are not needed to go on, and an
        # empty answer (a refusal) still needs its place for the roles to alternate.
        return [
            {"role": "user", "content": self.task if self.content is None else self.content},
            {"role": "assistant", "content": self.result.output or "(no answer)"},
        ]


class Conversation:
    """Turns with an agent; each :meth:`send` goes with the history of the turns before it.

    >>> chat = orchestrator.conversation("explainer")
    >>> await chat.send("What is a monad?")
    >>> await chat.send("Show one in Python.")
    """

    def __init__(self, orchestrator: Engine, agent: str, *, name: str = "", options: CallOptions | None = None):
        self.orchestrator = orchestrator
        self.agent = agent
        self.name = name or agent
        self.options = options or CallOptions()
        self.turns: list[Turn] = []

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The whole history, as the next turn would send it."""
        return [message for turn in self.turns for message in turn.messages]

    def prepare(
        self, task: str, *, key: Hashable | None = None, agent: str | None = None, options: CallOptions | None = None
    ) -> PreparedCall:
        """The next turn's call (or, for a ``key`` already here, that turn's again); nothing is sent.

        ``options`` go over the conversation's own; the history is the turns before this one.
        """
        history = tuple(message for turn in self.turns[: self._position(key)] for message in turn.messages)
        merged = CallOptions(history=history).over((options or CallOptions()).over(self.options))
        return self.orchestrator.prepare(agent or self.agent, task, merged)

    def record(self, call: PreparedCall, result: AgentResult, *, key: Hashable | None = None) -> None:
        """Add an answered turn (rewinding to ``key``'s place first); a failed one leaves the history as it was."""
        if not result.success:
            return
        del self.turns[self._position(key) :]
        content = call.request.messages[-1]["content"]  # what the turn sent, images and documents included
        self.turns.append(Turn(call.task, result, key, content))

    async def send(
        self,
        task: str,
        *,
        key: Hashable | None = None,
        agent: str | None = None,
        on_text: Callable[[str], object] | None = None,
        **options: Any,
    ) -> AgentResult:
        """Ask the next turn (see the module's note on ``key``); failures come back as results."""
        try:
            call = self.prepare(task, key=key, agent=agent, options=CallOptions.of(**options))
        except AgentNotFoundError:
            raise
        except Exception as exc:  # as execute_agent: options that cannot be sent fail this turn only
            return failure(Call(agent or self.agent, task), exc)
        result = await self.orchestrator.run(call, on_text=on_text)
        self.record(call, result, key=key)
        return result

    def reset(self) -> None:
        """Forget every turn."""
        self.turns.clear()

    def after(self, key: Hashable | None) -> int:
        """How many turns sending under ``key`` would drop: those after the turn it names."""
        return len(self.turns) - self._position(key) - 1 if key is not None and self._position(key) < len(self) else 0

    def _position(self, key: Hashable | None) -> int:
        if key is not None:
            for index, turn in enumerate(self.turns):
                if turn.key == key:
                    return index
        return len(self.turns)

    def __len__(self) -> int:
        return len(self.turns)

    def __repr__(self) -> str:
        return f"<Conversation {self.name!r}: {len(self.turns)} turns>"
