"""What scores add up to, from results made by hand: models as asked, and how few items a verdict needs."""

from claude_force_nb import AgentResult, Results, Score


def scored(agent, model, item, score, success=True):
    scores = (Score("grade", score, score >= 0.7),) if success else (Score("grade", None, None, error="no answer"),)
    return AgentResult(agent, success, model=model, item=item, scores=scores, original_cost=0.001)


def test_a_dated_snapshot_counts_as_the_model_asked():
    run = Results(
        [
            scored("a", "claude-haiku-4-5-20251001", 1, 1.0),
            scored("a", "claude-haiku-4-5", 2, 0.0, success=False),
            scored("a", "claude-opus-4-6", 1, 0.5),
        ]
    )
    summary = run.summary()
    assert summary.model.tolist() == ["claude-haiku-4-5", "claude-opus-4-6"]
    assert summary["items"].tolist() == [2, 1] and summary.errors.tolist() == [1, 0]
    (row,) = run.compare("claude-haiku-4-5", "claude-opus-4-6").to_dict("records")
    assert row["difference"] == 0.5 and row["items"] == 1


def test_a_verdict_needs_five_items_in_common():
    few = Results([scored("a", "m", i, 1.0) for i in range(4)] + [scored("b", "m", i, 0.0) for i in range(4)])
    assert few.compare("a", "b").verdict.tolist() == ["too few items in common to tell (4)"]
    enough = Results([scored("a", "m", i, 1.0) for i in range(5)] + [scored("b", "m", i, 0.0) for i in range(5)])
    assert enough.compare("a", "b").verdict.tolist() == ["a better"]


def test_pass_rate_and_cost_per_item_count_each_item_once():
    run = Results([scored("a", "m", 1, 1.0), scored("a", "m", 1, 1.0), scored("a", "m", 2, 0.0)])
    (row,) = run.summary().to_dict("records")
    assert row["pass_rate"] == 0.5 and row["mean"] == 0.5
    assert row["cost_per_item"] == 0.0015  # three answers' cost over two items
