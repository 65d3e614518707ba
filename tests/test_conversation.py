"""Conversations: each turn goes with the turns before it, and re-asking a turn rewinds instead of forking."""

from __future__ import annotations

import pytest

from claude_force_nb import AgentNotFoundError, AsyncAgentOrchestrator, Conversation


def messages(server):
    return [r.body["messages"] for r in server.log if r.path == "/v1/messages"]


@pytest.fixture
async def orchestrator(server):
    async with AsyncAgentOrchestrator(base_url=server.url, api_key="k") as made:
        yield made


async def test_each_turn_is_sent_with_the_turns_before_it(server, orchestrator):
    chat = orchestrator.conversation("explainer")
    first = await chat.send("What is a monad?")
    second = await chat.send("Show one in Python.")
    assert first.success and second.success and len(chat) == 2
    assert messages(server)[1] == [
        {"role": "user", "content": "What is a monad?"},
        {"role": "assistant", "content": first.output},
        {"role": "user", "content": "Show one in Python."},
    ]
    assert second.output != (await orchestrator.execute_agent("explainer", "Show one in Python.")).output
    assert chat.messages[-1] == {"role": "assistant", "content": second.output}


async def test_asking_a_keyed_turn_again_rewinds_to_it(server, orchestrator):
    chat = orchestrator.conversation("explainer", name="monads")
    await chat.send("What is a monad?", key="cell-1")
    await chat.send("Show one in Python.", key="cell-2")
    again = await chat.send("What is a functor?", key="cell-1")  # cell 1 edited and run again
    assert [turn.task for turn in chat.turns] == ["What is a functor?"]
    assert messages(server)[-1] == [{"role": "user", "content": "What is a functor?"}]
    assert again.success and chat.turns[0].key == "cell-1"


async def test_a_conversation_replays_from_the_cache(server, orchestrator):
    for _ in range(2):
        chat = orchestrator.conversation("explainer")
        results = [await chat.send(task) for task in ("What is a monad?", "Show one.", "And a functor?")]
    assert [r.cached for r in results] == [True, True, True]
    assert len(messages(server)) == 3


async def test_a_failed_turn_leaves_the_history_as_it_was(server, orchestrator):
    chat = orchestrator.conversation("explainer")
    await chat.send("What is a monad?")
    failed = await chat.send("Again?", temperature=7)
    assert not failed.success and "temperature" in failed.errors[0]
    assert len(chat) == 1
    with pytest.raises(AgentNotFoundError):
        orchestrator.conversation("no-such-agent")
    assert isinstance(chat, Conversation) and "1 turns" in repr(chat)
