"""Evaluating a sweep from the magic line, in a real kernel: scorers, samples, rescoring and the gate."""

import pytest
from kernels import kernel_client, messages, notebook, run, text_of

pytestmark = pytest.mark.timeout(180)

SETUP = """%load_ext claude_force_nb
questions = ["reverse a list", "sort a dict"]
half = "synthetic zebra"
def mentions(answer, item):
    return item in answer
def broken(answer, item):
    return {}['missing']"""


def graders(server):
    return [r for r in messages(server) if "<rubric>" in str(r.body.get("system"))]


def test_a_graded_sweep_from_the_magic_line(kernel_env, tmp_path):
    nb = notebook(
        SETUP,
        "%%agents explainer python-expert --over questions --grade half --check mentions,broken --samples 2 "
        "--no-panel -o run\nExplain how to {item}",
        "print(run.summary()[['agent', 'scorer', 'mean', 'items']].to_string(index=False))",
        "%agent rescore run --check mentions -o checked",
        "print(len(checked.scores), checked.scores.scorer.unique().tolist(), len(run.scores))",
        "run.require(min_score=0.9, scorer='half')",
        "%agent rescore run --grade half",
    )
    kernel_client(nb, tmp_path, allow_errors=True).execute()
    table = text_of(nb.cells[1])
    assert "half" in table and "0.50 fail" in table and "error" in table
    summary = text_of(nb.cells[2]).split("\n")
    assert "    explainer     half   0.5      2" in summary
    assert text_of(nb.cells[3]).strip() == (
        "Rescored 8 answers with mentions: nothing generated, 0 grader calls sent; the results are in checked."
    )
    assert text_of(nb.cells[4]).strip() == "8 ['mentions'] 24"
    assert "Rescored 8 answers with half: nothing generated, 0 grader calls sent; the results are in run." in (
        text_of(nb.cells[6])
    )
    gate = text_of(nb.cells[5])
    assert gate.startswith("QualityGateError: Quality gate failed, 2 below the bar")
    assert "explainer × claude-sonnet-4-6 · half: mean 0.50" in gate
    # 2 agents × 2 questions × 2 samples answered, and each distinct answer graded once.
    assert len(messages(kernel_env)) - len(graders(kernel_env)) == 8
    assert len(graders(kernel_env)) == 4


def test_a_rerun_evaluation_sends_nothing(kernel_env, tmp_path):
    cells = (
        SETUP,
        "%%agents explainer --over questions --grade half --no-panel -o run\n{item}",
        "print(run.summary()['mean'].tolist())",
    )
    first = run(notebook(*cells), tmp_path)
    sent = len(messages(kernel_env))
    second = run(notebook(*cells), tmp_path)
    assert len(messages(kernel_env)) == sent == 4
    assert text_of(first.cells[2]) == text_of(second.cells[2]) == "[0.5]\n"


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("--grade nothing_here", "no string variable and no agent named 'nothing_here'"),
        ("--grade questions", "expected a string holding the rubric, got list"),
        ("--check nope", "--check nope: no function named 'nope'"),
        ("--grader-model haiku", "--grader-model picks the model of --grade"),
        ("--grade half --grader-model gpt-4", "--grader-model:"),
        ("--samples 0", "--samples must be at least 1"),
    ],
)
def test_bad_scorer_options_are_one_line_usage_errors(kernel_env, tmp_path, line, said):
    nb = notebook(SETUP, f"%%agents explainer --over questions {line}\n{{item}}")
    kernel_client(nb, tmp_path, allow_errors=True).execute()
    said_back = text_of(nb.cells[1]).strip()
    assert said_back.startswith("UsageError:") and said in said_back and "\n" not in said_back
    assert not messages(kernel_env)


def test_an_agent_can_be_the_rubric_and_rescoring_needs_results(kernel_env, tmp_path):
    nb = notebook(
        SETUP,
        "%%agents explainer --over questions --grade summarizer --no-panel -o run\n{item}",
        "print(run.scores.scorer.unique().tolist())",
        "%agent rescore questions --check mentions",
    )
    client = kernel_client(nb, tmp_path, allow_errors=True)
    client.execute()
    assert text_of(nb.cells[2]).strip() == "['summarizer']"
    assert "expected the results of %%agents -o VAR, got list" in text_of(nb.cells[3])


def test_a_dry_run_counts_the_grades_it_would_ask(kernel_env, tmp_path):
    nb = run(notebook(SETUP, "%%agents explainer --over questions --grade half --dry-run\n{item}"), tmp_path)
    said = text_of(nb.cells[1])
    assert "calls: 2; answered by the cache: 0; to send: 2" in said
    assert "grader calls: 2; answered by the cache: 0; to send: 2" in said
    assert not [r for r in messages(kernel_env) if r.status == 200]


def test_offline_the_notice_comes_above_the_panel_and_the_table(monkeypatch, tmp_path):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    monkeypatch.setenv("CLAUDE_FORCE_NB_SIMULATOR_LATENCY", "0")
    nb = run(notebook(SETUP, "%%agents explainer --over questions --grade half\n{item}"), tmp_path)
    kinds = [
        "notice" if out.output_type == "stream" and "ANTHROPIC_API_KEY is not set" in out.text else out.output_type
        for out in nb.cells[1].outputs
    ]
    assert kinds[0] == "notice" and kinds.count("display_data") == 2
    table = nb.cells[1].outputs[-1].data["text/html"]
    assert '<td style="text-align:right;white-space:nowrap">' in table and "0.50 fail" in table


def test_grades_with_a_reference_go_through_message_batches(kernel_env, tmp_path):
    nb = run(
        notebook(
            SETUP + "\nimport pandas as pd\nrows = pd.DataFrame({'q': questions, 'ref': ['synthetic zebra'] * 2})",
            "%config AgentMagics.batch_poll_seconds = 0.05",
            "%%agents explainer --over rows --grade half --reference ref --batch --no-panel -o run\nExplain {item.q}",
            "print(sorted(set(run.scores.reason)))",
        ),
        tmp_path,
    )
    assert text_of(nb.cells[3]).strip() == "['Holds 1 of the 2 reference terms; missing zebra.']"
    created = [r for r in kernel_env.log if r.method == "POST" and r.path == "/v1/messages/batches"]
    assert len(created) == 2  # the answers, then their grades
    assert not [r for r in messages(kernel_env) if r.status == 200]


def test_a_background_evaluation_can_be_rescored(kernel_env, tmp_path):
    nb = run(
        notebook(
            SETUP,
            "%%agents explainer --over questions --grade half --background -f text -o handle --no-panel\n{item}",
            "results = handle.wait()\nchecked = await results.rescore(checks=[mentions])",
            "print(results.format, checked.format, checked.scores.scorer.unique().tolist())",
        ),
        tmp_path,
    )
    assert text_of(nb.cells[3]).strip() == "text text ['mentions']"
