"""Calls with ``context=``: the model looks at the namespace through the SDK's tool runner, and the cache keeps
an answer only while the kernel still shows what the model saw."""

import pandas as pd
import pytest

from claude_force_nb import AsyncAgentOrchestrator
from claude_force_nb._context import Workspace
from claude_force_nb._render import footer

TASK = "Which columns explain churn in df?"


def frame(rows=12):
    return pd.DataFrame({"tenure": range(rows), "churned": [i % 3 == 0 for i in range(rows)]})


def messages(server):
    return [r for r in server.log if r.path == "/v1/messages"]


@pytest.fixture
async def orch(server):
    async with AsyncAgentOrchestrator(base_url=server.url, api_key="k") as o:
        yield o


async def test_the_model_lists_then_describes_the_variable_the_task_names_then_answers(orch, server):
    namespace = {"df": frame(), "threshold": 0.5}
    result = await orch.execute_agent("explainer", TASK, context=namespace)
    assert result.success and not result.cached
    assert [(run["name"], run["input"]) for run in result.tool_runs] == [
        ("list_variables", {}),
        ("describe_variable", {"name": "df"}),
    ]
    assert result.tool_runs[0]["result"] == "df: pandas.DataFrame (12 rows x 2 columns)\nthreshold: float (= 0.5)"
    assert "shape: 12 rows x 2 columns" in result.tool_runs[1]["result"]
    assert "The kernel holds 2 variables: df, threshold." in result.output
    assert "Looking closer, df: pandas.DataFrame; shape: 12 rows x 2 columns" in result.output
    assert len(messages(server)) == 3  # list, describe, answer
    assert "2 tool calls" in footer(result)


async def test_the_same_question_is_a_hit_until_the_frame_changes(orch, server):
    namespace = {"df": frame()}
    first = await orch.execute_agent("explainer", TASK, context=namespace)
    again = await orch.execute_agent("explainer", TASK, context=namespace)
    assert again.cached and again.output == first.output and len(messages(server)) == 3
    assert again.tool_runs == first.tool_runs  # what it saw, replayed
    assert "its 2 reads of the kernel gave the same again" in footer(again)
    namespace["df"] = frame(15)  # a changed DataFrame: a new answer
    changed = await orch.execute_agent("explainer", TASK, context=namespace)
    assert not changed.cached and "15 rows x 2 columns" in changed.output and len(messages(server)) == 6
    refreshed = await orch.execute_agent("explainer", TASK, context=namespace, cache_mode="refresh")
    assert not refreshed.cached and len(messages(server)) == 9  # --refresh looks again


async def test_a_secret_in_the_namespace_never_reaches_the_api(orch, server):
    key = "sk-ant-api03-" + "Qw7-" * 20
    namespace = {"df": frame(), "ANTHROPIC_API_KEY": key, "config": {"anthropic": key}}
    result = await orch.execute_agent("explainer", "Describe config and df", context=namespace)
    assert result.success
    sent = "".join(str(r.body) for r in messages(server))
    assert key not in sent and "hidden: it looks like a secret" in sent


async def test_snippets_run_only_as_allowed_and_the_model_gets_their_errors(orch, server):
    namespace = {"df": frame()}
    shown = []
    workspace = Workspace(namespace, allow_run="yes", show=shown.append, snippet_seconds=0.5)
    result = await orch.execute_agent("explainer", "Check df with `df.churned.mean()`", context=workspace)
    assert [run["name"] for run in result.tool_runs] == ["list_variables", "describe_variable", "run_python"]
    assert result.tool_runs[2]["result"].startswith("value: ")
    assert shown[0] == "Claude asks to run this in the kernel:\ndf.churned.mean()"
    failing = await orch.execute_agent("explainer", "Check df with `df.no_such_column`", context=workspace)
    assert (
        "AttributeError" in failing.tool_runs[2]["result"] and "Running the code gave: AttributeError" in failing.output
    )
    hanging = await orch.execute_agent("explainer", "Check df with `__import__('time').sleep(30)`", context=workspace)
    assert hanging.tool_runs[2]["result"] == "Stopped: interrupted after its time limit of 0.5 s."


async def test_context_options_are_checked_before_anything_is_sent(orch, server):
    result = await orch.execute_agent("explainer", TASK, allow_run=True)
    assert not result.success and "allow_run needs context" in result.errors[0]
    assert messages(server) == []


async def test_a_team_cache_never_hands_one_kernels_context_answer_to_another(server, tmp_path, team_url):
    options = {"base_url": server.url, "api_key": "k", "cache_url": team_url}
    async with AsyncAgentOrchestrator(cache_path=tmp_path / "one.sqlite", **options) as one:
        mine = await one.execute_agent("explainer", TASK, context={"df": frame(12)})
    async with AsyncAgentOrchestrator(cache_path=tmp_path / "two.sqlite", **options) as two:
        theirs = await two.execute_agent("explainer", TASK, context={"df": frame(15)})
        same = await two.execute_agent("explainer", TASK, context={"df": frame(15)})
    assert "12 rows" in mine.output and not theirs.cached and "15 rows" in theirs.output
    assert "12 rows" not in str(theirs.tool_runs)
    assert same.cached


async def test_a_sweep_looks_at_the_same_namespace_for_every_call(orch, server):
    namespace = {"df": frame(), "sales": frame(20)}
    results = await orch.execute_multiple(
        [("explainer", "Summarise df"), ("summarizer", "Summarise sales"), ("explainer", "Summarise df")],
        context=namespace,
    )
    assert [r.status for r in results] == ["ok", "ok", "cached"]
    assert [r.tool_runs[1]["input"] for r in results] == [{"name": "df"}, {"name": "sales"}, {"name": "df"}]
