"""Structured output: a pydantic model or JSON schema in the request, the answer read back with it."""

from __future__ import annotations

import pydantic
import pytest

from claude_force_nb import AsyncAgentOrchestrator
from claude_force_nb._resultset import Results


class Person(pydantic.BaseModel):
    name: str
    age: int


PERSON_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "born": {"type": "integer"}},
    "required": ["name", "born"],
    "additionalProperties": False,
}


def bodies(server):
    return [r.body for r in server.log if r.path == "/v1/messages"]


@pytest.fixture
async def orchestrator(server):
    async with AsyncAgentOrchestrator(base_url=server.url, api_key="k") as made:
        yield made


async def test_a_pydantic_model_comes_back_as_an_instance(server, orchestrator):
    result = await orchestrator.execute_agent("explainer", "Ada Lovelace, 36", schema=Person)
    assert result.success and isinstance(result.parsed, Person)
    sent = bodies(server)[-1]["output_config"]["format"]
    assert sent["type"] == "json_schema" and set(sent["schema"]["properties"]) == {"name", "age"}
    again = await orchestrator.execute_agent("explainer", "Ada Lovelace, 36", schema=Person)
    assert again.cached and again.parsed == result.parsed  # read again from the cached text


async def test_a_json_schema_dict_comes_back_as_json_and_keys_the_cache(server, orchestrator):
    result = await orchestrator.execute_agent("explainer", "Grace Hopper", schema=PERSON_SCHEMA)
    assert set(result.parsed) == {"name", "born"} and isinstance(result.parsed["born"], int)
    plain = await orchestrator.execute_agent("explainer", "Grace Hopper")
    assert not plain.cached and plain.parsed is None  # another request: no schema


async def test_an_answer_that_does_not_validate_is_a_failed_call(server, orchestrator):
    server.shape_next(invalid_json=True)
    result = await orchestrator.execute_agent("explainer", "Alan Turing", schema=Person)
    assert not result.success and result.status == "failed"
    assert result.errors[0].startswith("The answer does not match the schema:")
    field = result.error.__cause__.errors()[0]["loc"][0]
    assert f" {field} " in result.errors[0]  # the message names the field that is wrong
    assert isinstance(result.error.__cause__, pydantic.ValidationError)


async def test_a_sweep_with_a_schema_gives_one_column_per_field(server, orchestrator):
    people = ["Ada Lovelace", "Grace Hopper", "Alan Turing"]
    results = Results(await orchestrator.execute_multiple([("explainer", p) for p in people], schema=Person))
    frame = results.to_dataframe()
    assert list(frame.columns[-2:]) == ["name", "age"] and len(frame) == 3
    assert frame["age"].dtype.kind == "i"


def test_a_schema_must_be_a_model_or_a_dict(orchestrator):
    with pytest.raises(TypeError, match="schema must be a pydantic model class or a JSON-schema dict, not int"):
        orchestrator.prepare("explainer", "x", schema=3)


async def test_an_answer_that_breaks_the_schema_is_billed_but_not_kept(server, orchestrator):
    server.shape_next(invalid_json=True)
    first = await orchestrator.execute_agent("explainer", "Edsger Dijkstra", schema=Person)
    assert not first.success and first.cost > 0 and orchestrator.spent().calls == 1
    again = await orchestrator.execute_agent("explainer", "Edsger Dijkstra", schema=Person)
    assert again.success and not again.cached and len(bodies(server)) == 2
