"""The evaluation figure, drawn by matplotlib from a real graded sweep."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from claude_force_nb import AsyncAgentOrchestrator, Call


@pytest.fixture
def orch(server):
    orchestrator = AsyncAgentOrchestrator(api_key="test-key", base_url=server.url, max_retries=0)
    yield orchestrator
    orchestrator.cache.close()


def sweep():
    return [
        Call(agent, f"Explain how to {item}", model=model, item=item)
        for agent in ("explainer", "python-expert")
        for model in ("claude-haiku-4-5", "claude-opus-4-6")
        for item in ("sort a dict", "parse a date")
    ]


async def test_the_matrix_and_the_cost_chart_name_the_cheapest_cell_good_enough(orch, tmp_path):
    run = await orch.evaluate(sweep(), grade="synthetic")
    figure = run.plot()
    matrix, costs = figure.axes[:2]
    assert matrix.get_title() == "mean grade (95 % CI)"
    assert [label.get_text() for label in matrix.get_xticklabels()] == ["claude-haiku-4-5", "claude-opus-4-6"]
    assert matrix.images[0].get_array().tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert "1.00\n[1.00, 1.00]" in [text.get_text() for text in matrix.texts]
    assert costs.get_title().startswith("cheapest at 0.70 or more:") and "claude-haiku-4-5" in costs.get_title()
    assert plt.get_fignums() == []  # returned, not left open to be shown twice
    figure.savefig(tmp_path / "evaluation.png")
    assert (tmp_path / "evaluation.png").stat().st_size > 10_000


async def test_plotting_needs_scores_and_a_known_scorer(orch):
    plain = await orch.evaluate(sweep()[:1], checks=[lambda answer, item: True])
    with pytest.raises(ValueError, match="No scorer named 'grade'"):
        plain.plot(scorer="grade")
    unscored = await orch.evaluate(sweep()[:1])
    with pytest.raises(ValueError, match="no scores"):
        unscored.plot()
