"""Python functions as tools, run by the SDK's tool runner against the local server."""

from __future__ import annotations

import pytest

from claude_force_nb import AsyncAgentOrchestrator
from claude_force_nb._render import Answer
from claude_force_nb.simulator import LocalServer

calls_made: list[tuple[float, float]] = []


def area(width: float, height: float) -> float:
    """The area of a rectangle.

    Args:
        width: its width, in metres
        height: its height, in metres
    """
    calls_made.append((width, height))
    return width * height


def broken(city: str) -> str:
    """The weather in a city.

    Args:
        city: the city's name
    """
    raise ConnectionError(f"no weather service for {city}")


def requests(server):
    return [r.body for r in server.log if r.path == "/v1/messages"]


@pytest.fixture
async def orchestrator(server):
    async with AsyncAgentOrchestrator(base_url=server.url, api_key="k") as made:
        yield made


async def test_the_model_calls_a_python_function_and_answers_with_its_result(server, orchestrator):
    calls_made.clear()
    result = await orchestrator.execute_agent("explainer", "How big is a 3 by 4 room?", tools=[area])
    assert result.success and result.status == "ok" and len(calls_made) == 1
    (run,) = result.tool_runs
    assert run["name"] == "area" and run["is_error"] is False
    assert float(run["result"]) == calls_made[0][0] * calls_made[0][1]
    sent = requests(server)
    assert len(sent) == 2 and sent[0]["tools"][0]["name"] == "area"
    assert "The area of a rectangle." in sent[0]["tools"][0]["description"]
    assert sent[1]["messages"][-1]["content"][0]["type"] == "tool_result"
    assert result.input_tokens > 0 and result.cost > 0  # both replies billed


async def test_a_tool_that_raises_hands_its_error_to_the_model(server, orchestrator):
    result = await orchestrator.execute_agent("explainer", "Weather in Oslo?", tools=[broken])
    (run,) = result.tool_runs
    assert run["is_error"] is True and "no weather service for" in run["result"]
    assert result.success


async def test_a_runaway_loop_stops_at_max_turns():
    with LocalServer(tool_turns=10) as server:
        async with AsyncAgentOrchestrator(base_url=server.url, api_key="k") as orchestrator:
            result = await orchestrator.execute_agent("explainer", "Keep measuring", tools=[area], max_turns=3)
        assert len(requests(server)) == 3
    assert result.status == "tool use" and "stopped after 3 replies; raise --max-turns" in result.hint


async def test_a_cached_tool_answer_says_its_tools_did_not_run_again(server, orchestrator):
    calls_made.clear()
    await orchestrator.execute_agent("explainer", "How big is a 2 by 5 room?", tools=[area])
    again = await orchestrator.execute_agent("explainer", "How big is a 2 by 5 room?", tools=[area])
    assert again.cached and len(calls_made) == 1 and again.tool_runs
    assert "its tools were not run again (--refresh runs them)" in Answer(again)._repr_mimebundle_()["text/plain"]
    await orchestrator.execute_agent("explainer", "How big is a 2 by 5 room?", tools=[area], cache_mode="refresh")
    assert len(calls_made) == 2


def test_a_tool_must_be_callable(orchestrator):
    with pytest.raises(TypeError, match="A tool must be a function or a tool definition"):
        orchestrator.prepare("explainer", "x", tools=[area, 3])


def test_tools_cannot_go_through_a_message_batch(orchestrator):
    with pytest.raises(ValueError, match="a Message Batch cannot hold: drop --batch, or the tools"):
        orchestrator.message_batch([("explainer", "How big?")], tools=[area])


async def test_the_turn_limit_is_part_of_the_cache_key():
    with LocalServer(tool_turns=3) as server:
        async with AsyncAgentOrchestrator(base_url=server.url, api_key="k") as orchestrator:
            short = await orchestrator.execute_agent("explainer", "Measure it", tools=[area], max_turns=1)
            longer = await orchestrator.execute_agent("explainer", "Measure it", tools=[area], max_turns=8)
            definition = {"name": "area", "description": "d", "input_schema": {"type": "object", "properties": {}}}
            plain = await orchestrator.execute_agent("explainer", "Measure it", tools=[definition])
    assert short.status == "tool use" and not longer.cached and longer.status == "ok"
    assert not plain.cached  # one reply to the same definitions is not the loop's answer


async def test_a_plain_function_runs_off_the_event_loop(server, orchestrator):
    import threading

    threads = []

    def where(city: str) -> str:
        """Which thread ran this.

        Args:
            city: any city
        """
        threads.append(threading.current_thread())
        return "here"

    await orchestrator.execute_agent("explainer", "Where?", tools=[where])
    assert threads and threads[0] is not threading.main_thread()
