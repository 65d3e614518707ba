"""Conversations in a notebook: named threads, each agent's latest conversation, and the cells behind the turns.

Every ``%%agent`` cell starts a conversation with its agent, which becomes that
agent's latest; ``--continue`` adds a turn to it, ``--thread NAME`` to the
thread of that name. A turn is keyed by the cell that sent it, so re-running a
cell asks its turn again with the history it had and drops the turns after
it: a thread never forks nor repeats itself, and running the notebook again
top to bottom rebuilds each thread turn by turn.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from IPython.core.error import UsageError

from .._call import PreparedCall
from .._conversation import Conversation
from .._orchestrator import AsyncAgentOrchestrator
from .._results import AgentResult


class Threads:
    """The kernel's conversations: by thread name, and the latest with each agent."""

    def __init__(self) -> None:
        self.named: dict[str, Conversation] = {}
        self.latest: dict[str, Conversation] = {}

    def find(
        self, orchestrator: AsyncAgentOrchestrator, agent: str, *, thread: str | None, continuing: bool
    ) -> Conversation:
        """The conversation a cell adds its turn to: a named thread, the agent's latest, or a new one."""
        if thread is not None:
            conversation = self.named.get(thread)
            if conversation is None:
                conversation = self.named[thread] = Conversation(orchestrator, agent, name=thread)
        elif continuing:
            found = self.latest.get(agent)
            if found is None:
                raise UsageError(
                    f"No conversation with {agent} in this kernel to continue: "
                    f"run a %%agent {agent} cell first, or name a thread with --thread NAME."
                )
            conversation = found
        else:
            conversation = Conversation(orchestrator, agent)
        conversation.orchestrator = orchestrator  # the settings may have changed since it began
        return conversation

    def record(
        self, conversation: Conversation, call: PreparedCall, result: AgentResult, *, key: Hashable, agent: str
    ) -> None:
        """Add the cell's turn; a conversation that answered becomes its agent's latest."""
        conversation.record(call, result, key=key)
        if result.success:
            self.latest[agent] = conversation

    def get(self, name: str) -> Conversation:
        """A thread by name, else an agent's latest conversation; a one-line error naming what there is."""
        found = self.named.get(name) or self.latest.get(name)
        if found is None:
            known = ", ".join(sorted({*self.named, *self.latest})) or "none yet"
            raise UsageError(f"No thread or agent conversation named {name!r} (known: {known}).")
        return found

    def reset(self, name: str | None = None) -> int:
        """Forget one thread (or agent's conversation), or all of them; how many were forgotten."""
        if name is None:
            count = len({id(c) for c in (*self.named.values(), *self.latest.values())})
            self.named.clear()
            self.latest.clear()
            return count
        self.get(name)
        removed = [c for c in (self.named.pop(name, None), self.latest.pop(name, None)) if c is not None]
        # The thread may also be an agent's latest conversation: forgotten there too.
        for agent, conversation in list(self.latest.items()):
            if any(conversation is gone for gone in removed):
                del self.latest[agent]
        return len({id(c) for c in removed})

    def summary(self) -> list[tuple[str, str, int]]:
        """(kind, name, turns) for each thread and each agent's latest conversation."""
        rows = [("thread", name, len(c)) for name, c in self.named.items()]
        rows += [
            ("latest with agent", agent, len(c)) for agent, c in self.latest.items() if c not in self.named.values()
        ]
        return rows


def transcript(conversation: Conversation) -> tuple[str, str]:
    """(Markdown, plain text) of a conversation's turns."""
    markdown, text = [], []
    for number, turn in enumerate(conversation.turns, 1):
        agent = turn.result.agent_name
        markdown.append(f"**{number}. You:** {_quote(turn.task)}\n\n**{agent}:** {turn.result.output}")
        text.append(f"{number}. You: {turn.task}\n   {agent}: {turn.result.output}")
    if not conversation.turns:
        return "(no turns yet)", "(no turns yet)"
    return "\n\n---\n\n".join(markdown), "\n\n".join(text)


def _quote(text: str) -> str:
    return text if "\n" not in text else "\n\n" + "\n".join(f"> {line}" for line in text.splitlines())


def turn_key(cell_id: Any, line: str, cell: str) -> Hashable:
    """What identifies the cell sending a turn: its id where the front end gives one, else its source."""
    return ("cell", cell_id) if cell_id else ("source", line.strip(), cell)
