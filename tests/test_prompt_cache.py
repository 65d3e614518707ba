"""Prompt caching in sweeps: shared long prefixes are marked, and one call writes each before the rest read it."""

from __future__ import annotations

from claude_force_nb import AsyncAgentOrchestrator
from claude_force_nb._agents import AgentRegistry

LONG = "You review code for a team that cares about correctness. " * 120  # about 1,700 tokens
SHORT = "Be brief."


def registry(tmp_path):
    folder = tmp_path / ".claude" / "agents"
    folder.mkdir(parents=True)
    for name, prompt in (("long", LONG), ("short", SHORT)):
        (folder / f"{name}.md").write_text(f"---\nname: {name}\nmodel: claude-sonnet-4-6\n---\n{prompt}\n")
    return AgentRegistry(cwd=tmp_path, user_home=tmp_path / "home")


def messages(server):
    return [r for r in server.log if r.path == "/v1/messages"]


def marked(record):
    system = record.body.get("system")
    return isinstance(system, list) and "cache_control" in system[-1]


async def test_a_sweep_sharing_a_long_prompt_marks_it_and_writes_it_once_first(server, tmp_path):
    server.latency = 0.05
    async with AsyncAgentOrchestrator(base_url=server.url, api_key="k", agents=registry(tmp_path)) as orchestrator:
        results = await orchestrator.execute_multiple([("long", f"item {i}") for i in range(6)])
    assert all(r.success for r in results)
    sent = messages(server)
    assert all(marked(r) for r in sent)
    first = min(sent, key=lambda r: r.started)
    # The others went out only once the first had answered: they read what it wrote.
    assert all(r.started >= first.finished for r in sent if r is not first)


async def test_short_prompts_single_calls_and_cached_calls_are_not_marked(server, tmp_path):
    async with AsyncAgentOrchestrator(base_url=server.url, api_key="k", agents=registry(tmp_path)) as orchestrator:
        await orchestrator.execute_multiple([("short", f"item {i}") for i in range(3)])
        await orchestrator.execute_agent("long", "alone")
        await orchestrator.execute_multiple([("long", "alone"), ("long", "another")])  # one hit, one to send
    assert not any(marked(r) for r in messages(server))


async def test_marking_keeps_the_cache_key(server, tmp_path):
    async with AsyncAgentOrchestrator(base_url=server.url, api_key="k", agents=registry(tmp_path)) as orchestrator:
        await orchestrator.execute_multiple([("long", "a"), ("long", "b")])
        again = await orchestrator.execute_agent("long", "a")  # unmarked now: a single call
    assert again.cached


async def test_prompt_caching_can_be_turned_off(server, tmp_path):
    async with AsyncAgentOrchestrator(
        base_url=server.url, api_key="k", agents=registry(tmp_path), prompt_caching=False
    ) as orchestrator:
        await orchestrator.execute_multiple([("long", f"item {i}") for i in range(3)])
    assert not any(marked(r) for r in messages(server))
