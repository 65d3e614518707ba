"""Evaluating sweeps through the real SDK and the local server, whose grader counts the rubric's terms."""

import pytest

from claude_force_nb import AsyncAgentOrchestrator, Call, Grade, QualityGateError
from claude_force_nb.simulator import LocalServer

# The local grader's score is the share of the rubric's words (five letters or more) an answer holds:
# every synthetic answer says "synthetic" and none says "zebra".
ALL = "synthetic"
HALF = "synthetic zebra"
ITEMS = ["reverse a list", "sort a dict", "parse a date"]
POLL = 0.05


@pytest.fixture
def orch(server):
    orchestrator = AsyncAgentOrchestrator(api_key="test-key", base_url=server.url, max_retries=0)
    yield orchestrator
    orchestrator.cache.close()


def tasks(agents=("explainer", "python-expert")):
    return [Call(agent, f"Explain how to {item}", item=item) for agent in agents for item in ITEMS]


def graders(server):
    return [r for r in server.log if r.path == "/v1/messages" and "<rubric>" in str(r.body.get("system"))]


def answers(server):
    return [r for r in server.log if r.path == "/v1/messages" and "<rubric>" not in str(r.body.get("system"))]


def mentions_item(answer, item):
    return item in answer


async def test_a_graded_sweep_scores_every_answer_with_exact_aggregates(orch, server):
    run = await orch.evaluate(tasks(), grade=HALF, checks=[mentions_item])
    summary = run.summary()
    assert list(summary.scorer) == ["mentions_item", "grade"] * 2
    grades = summary[summary.scorer == "grade"]
    assert list(grades["mean"]) == [0.5, 0.5] and list(grades.ci_low) == [0.5, 0.5]
    assert list(grades.pass_rate) == [0.0, 0.0] and list(grades["items"]) == [3, 3]
    assert list(summary[summary.scorer == "mentions_item"]["mean"]) == [1.0, 1.0]
    scores = run.scores
    assert len(scores) == 12 and set(scores.columns) >= {"agent", "model", "item", "sample", "scorer", "score"}
    assert scores[scores.scorer == "grade"].reason.str.contains("Holds 1 of the 2 rubric terms").all()
    assert len(answers(server)) == 6 and len(graders(server)) == 6


async def test_grader_calls_are_cached_counted_and_billed_like_answers(orch, server):
    first = await orch.evaluate(tasks(), grade=ALL)
    spent = orch.spent()
    grade_costs = sum(s.cost for r in first for s in r.scores)
    assert grade_costs > 0 and spent.calls == 12
    again = await orch.evaluate(tasks(), grade=ALL)
    assert len(server.log) == 12  # the second run sent nothing: answers and grades came from the cache
    assert [s.score for r in again for s in r.scores] == [1.0] * 6
    assert orch.spent().calls == 12


async def test_samples_are_distinct_cached_calls(orch, server):
    run = await orch.evaluate(tasks(("explainer",)), samples=3, checks=[mentions_item])
    assert [r.sample for r in run] == [0, 1, 2] * 3
    assert len(answers(server)) == 9
    await orch.evaluate(tasks(("explainer",)), samples=3, checks=[mentions_item])
    assert len(answers(server)) == 9
    assert run.summary()["items"].tolist() == [3]


async def test_rescoring_generates_nothing_and_grades_only_what_is_new(orch, server):
    run = await orch.evaluate(tasks(), grade=ALL)
    sent = len(server.log)

    def short(answer, item):
        return len(answer) < 10

    checked = await run.rescore(checks=[short])
    assert len(server.log) == sent
    assert list(checked.summary().scorer.unique()) == ["short"]
    regraded = await run.rescore(grade=HALF)
    assert len(answers(server)) == 6  # never generated again
    assert len(graders(server)) == 12  # one new grade per answer
    assert set(regraded.scores.score) == {0.5}


async def test_the_quality_gate_lists_each_cell_below_the_bar(orch):
    run = await orch.evaluate(tasks(), grade=HALF)
    assert run.require(min_score=0.5) is run
    with pytest.raises(QualityGateError) as raised:
        run.require(min_score=0.6, scorer="grade")
    message = str(raised.value)
    assert "2 below the bar" in message
    assert "explainer × claude-sonnet-4-6 · grade: mean 0.50" in message
    with pytest.raises(QualityGateError, match="no scores"):
        (await orch.evaluate(tasks())).require(min_score=0.1)


async def test_the_gate_works_in_replay_from_recorded_answers_and_grades(monkeypatch):
    # Tutorial 04's route: record against an endpoint, then replay with no key, as CI does.
    monkeypatch.setenv("CLAUDE_FORCE_NB_SIMULATOR_LATENCY", "0")
    with LocalServer(mark_synthetic=False) as claude:
        async with AsyncAgentOrchestrator(base_url=claude.url, api_key="k") as recording:
            recorded = await recording.evaluate(tasks(), grade=HALF)
    async with AsyncAgentOrchestrator(cache_mode="replay") as ci:
        replayed = await ci.evaluate(tasks(), grade=HALF)
    assert all(r.cached for r in replayed)
    assert replayed.scores.score.tolist() == recorded.scores.score.tolist() == [0.5] * 6
    with pytest.raises(QualityGateError, match="pass rate 0% < 50%"):
        replayed.require(min_pass_rate=0.5)


async def test_a_reference_column_is_what_the_grader_holds_the_answer_to(orch):
    items = [{"q": "sort a dict", "ref": "synthetic zebra walrus narwhal"}]
    calls = [Call("explainer", "Explain how to sort a dict", item=item) for item in items]
    run = await orch.evaluate(calls, grade=Grade("Matches the reference.", reference="ref"))
    (score,) = run[0].scores
    assert score.score == 0.3 and "1 of the 4 reference terms" in score.reason
    missing = await orch.evaluate(calls, grade="Matches.", reference="nope")
    assert "no reference 'nope'" in missing[0].scores[0].error


async def test_a_failed_answer_is_not_scored_and_the_others_keep_theirs(orch, server):
    server.faults.push("500")
    run = await orch.evaluate(tasks(("explainer",)), grade=ALL)
    failed = [r for r in run if not r.success]
    assert len(failed) == 1 and failed[0].scores[0].error == "no answer to score"
    assert [s.score for r in run if r.success for s in r.scores] == [1.0, 1.0]


async def test_a_paired_comparison_names_the_better_side(orch):
    run = await orch.evaluate(tasks(), grade=HALF)
    (row,) = run.compare("explainer", "python-expert").to_dict("records")
    assert (row["difference"], row["items"], row["verdict"]) == (0.0, 3, "too few items in common to tell (3)")
    with pytest.raises(ValueError, match="Nothing answered as 'nobody'"):
        run.compare("nobody", "explainer")


async def test_grades_go_through_message_batches_with_batch(orch, server):
    run = await orch.evaluate(tasks(("explainer",)), grade=ALL, batch=True, poll_seconds=POLL)
    created = [r for r in server.log if r.method == "POST" and r.path == "/v1/messages/batches"]
    assert len(created) == 2  # the answers, then their grades
    assert [s.score for r in run for s in r.scores] == [1.0] * 3
    assert not [r for r in server.log if r.path == "/v1/messages"]


async def test_scorers_are_checked_before_anything_is_sent(orch, server):
    with pytest.raises(ValueError, match="Two scorers are named 'grade'"):
        orch.batch(tasks(), grade=ALL, checks=[_named("grade")])
    with pytest.raises(ValueError, match="go with grade"):
        orch.batch(tasks(), grader_model="haiku")
    assert not server.log


def _named(name):
    def check(answer, item):
        return True

    check.__name__ = name
    return check


async def test_a_dry_run_counts_the_grader_calls_and_what_they_cost(orch, server):
    await orch.evaluate(tasks(), grade=ALL)  # answers and grades to go by, and to find in the cache
    sweep = [*tasks(), Call("explainer", "Explain how to merge two lists", item="merge two lists")]
    batch = orch.batch(sweep, grade=ALL)
    estimate = await orch.estimate(batch.calls, scoring=batch.scoring)
    grading = estimate.grading
    assert (estimate.calls, estimate.cached, estimate.to_send) == (7, 6, 1)
    assert (grading.calls, grading.cached, grading.to_send) == (7, 6, 1)
    assert "grader calls: 7; answered by the cache: 6; to send: 1" in estimate.describe()
    spent_before = orch.spent().cost
    await batch.wait()
    spent = orch.spent().cost - spent_before
    assert estimate.cost == pytest.approx(spent, rel=0.25)
    assert grading.cost > 0 and estimate.cost > grading.cost


async def test_a_budget_counts_the_grades_it_would_buy(orch, server):
    from claude_force_nb import BudgetExceededError

    answers_only = (await orch.estimate(orch.batch(tasks()).calls)).cost
    batch = orch.batch(tasks(), grade=ALL)
    with_grades = (await orch.estimate(batch.calls, scoring=batch.scoring)).cost
    assert with_grades > answers_only
    with pytest.raises(BudgetExceededError, match="Not started"):
        await orch.evaluate(tasks(), grade=ALL, budget=(answers_only + with_grades) / 2)
    assert not answers(server) and not graders(server)


async def test_a_budget_holds_a_message_batches_evaluation_before_it_is_submitted(orch, server):
    from claude_force_nb import BudgetExceededError

    with pytest.raises(BudgetExceededError, match="Not started"):
        await orch.evaluate(tasks(), grade=ALL, batch=True, budget=0.000001, poll_seconds=POLL)
    assert not [r for r in server.log if r.path.startswith("/v1/messages/batches")]
    run = await orch.evaluate(tasks(("explainer",)), grade=ALL, batch=True, budget=1.0, poll_seconds=POLL)
    assert [s.score for r in run for s in r.scores] == [1.0] * 3


async def test_rescoring_through_message_batches_keeps_every_answer_and_holds_a_budget(orch, server):
    from claude_force_nb import BudgetExceededError, Results

    run = await orch.evaluate(tasks(("explainer",)), checks=[mentions_item])
    with pytest.raises(BudgetExceededError):
        await orch.rescore(run, grade=ALL, batch=True, budget=0.000001)
    assert not [r for r in server.log if r.path.startswith("/v1/messages/batches")]
    # A reference the items (plain strings) lack is each grade's error, not the rescore's.
    missing = await orch.rescore(Results(list(run), fmt="text"), grade=ALL, reference="answer", batch=True)
    assert missing.format == "text"
    assert {s.error for r in missing for s in r.scores} == {
        "KeyError: \"no reference 'answer' in the item 'reverse a list'\"",
        "KeyError: \"no reference 'answer' in the item 'sort a dict'\"",
        "KeyError: \"no reference 'answer' in the item 'parse a date'\"",
    }
    graded = await orch.rescore(run, grade=ALL, batch=True)
    assert [s.score for r in graded for s in r.scores] == [1.0] * 3


async def test_options_of_the_other_sender_are_refused_not_sent(orch, server):
    with pytest.raises(TypeError, match="concurrency= does not apply with batch=True"):
        await orch.evaluate(tasks(), grade=ALL, batch=True, concurrency=4)
    with pytest.raises(TypeError, match="poll_seconds= does not apply with batch=False"):
        await orch.evaluate(tasks(), grade=ALL, poll_seconds=1)
    assert not server.log
