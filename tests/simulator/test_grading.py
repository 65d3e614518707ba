"""The local server's grader: deterministic from the answer's content, through the real SDK."""

import json

import anthropic

from claude_force_nb._eval.grade import GRADE_SCHEMA


async def grade(server, rubric, answer, reference=None):
    async with anthropic.AsyncAnthropic(api_key="k", base_url=server.url, max_retries=0) as client:
        task = f"<task>\nQ\n</task>\n\n<answer>\n{answer}\n</answer>"
        if reference is not None:
            task += f"\n\n<reference>\n{reference}\n</reference>"
        message = await client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=200,
            system=f"Grade it.\n\n<rubric>\n{rubric}\n</rubric>",
            messages=[{"role": "user", "content": task}],
            extra_body={"output_config": {"format": {"type": "json_schema", "schema": GRADE_SCHEMA}}},
        )
    return json.loads(message.content[0].text)


async def test_the_score_is_the_share_of_rubric_terms_the_answer_holds(server):
    found = await grade(server, "Names the queue, the worker and the retry policy.", "A queue feeds each worker.")
    # Terms: names, queue, worker, retry, policy (five letters or more); the answer holds two.
    assert found == {
        "score": 4,
        "passed": False,
        "reason": "Holds 2 of the 5 rubric terms; missing names, policy, retry.",
    }


async def test_a_reference_replaces_the_rubric_terms_and_seven_passes(server):
    found = await grade(
        server,
        "Matches.",
        "alpha bravo charlie delta echoes",
        reference="alpha bravo charlie delta kilos foxtrot golfs hotel india juliet",
    )
    assert found["score"] == 4 and "of the 10 reference terms" in found["reason"]
    passing = await grade(
        server,
        "alpha bravo charlie delta kilos foxtrot golfs hotel india juliet",
        "alpha bravo charlie delta kilos foxtrot golfs",
    )
    assert (passing["score"], passing["passed"]) == (7, True)


async def test_a_schema_that_is_not_the_graders_gets_an_ordinary_structured_answer(server):
    schema = {**GRADE_SCHEMA, "title": "Other"}
    async with anthropic.AsyncAnthropic(api_key="k", base_url=server.url, max_retries=0) as client:
        message = await client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=200,
            messages=[{"role": "user", "content": "<answer>\nx\n</answer>"}],
            extra_body={"output_config": {"format": {"type": "json_schema", "schema": schema}}},
        )
    assert "terms" not in json.loads(message.content[0].text)["reason"]
