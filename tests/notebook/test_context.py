"""--context and --allow-run in real kernels: what the model may read, what it never sees, and code that runs
only when the user says so."""

import json

from kernels import messages, notebook, run, text_of

SECRET = "sk-proj-" + "Hk3_" * 16

SETUP = (
    "import math\nimport numpy as np\nimport pandas as pd\n"
    "df = pd.DataFrame({'tenure': range(30), 'churned': [i % 4 == 0 for i in range(30)]})\n"
    "arr = np.linspace(0, 1, 9)\n"
    "def score(x: float) -> float:\n    '''How likely x is to churn.'''\n    return 1 - x\n"
)


def sent(server):
    """Every request body the kernel sent, as text."""
    return "\n".join(json.dumps(r.body) for r in messages(server))


def runs(variable):
    return f"print([(r['name'], r['input']) for r in {variable}.tool_runs]); print({variable}.tool_runs[-1]['result'])"


def test_the_read_only_tools_look_at_a_frame_an_array_a_function_and_a_module(kernel_env, tmp_path):
    nb = run(
        notebook(
            "%load_ext claude_force_nb",
            SETUP,
            "%%agent explainer --context -o a\nWhich columns explain churn in df?",
            runs("a"),
            "%%agent explainer --context -o b;\nWhat range does arr cover?",
            runs("b"),
            "%%agent explainer --context -o c;\nIs score a good model?",
            runs("c"),
            "%%agent explainer --context -o d;\nWhat does math offer?",
            runs("d"),
        ),
        tmp_path,
    )
    shown = text_of(nb.cells[2])
    assert "Tool call: list_variables() returned" in shown or "[tool] list_variables()" in shown
    assert "2 tool calls" in shown
    frame = text_of(nb.cells[3])
    assert "[('list_variables', {}), ('describe_variable', {'name': 'df'})]" in frame
    assert "shape: 30 rows x 2 columns" in frame and "nulls per column" in frame and "first 5 rows" in frame
    assert "shape: (9,), dtype float64, 9 elements" in text_of(nb.cells[5])
    function = text_of(nb.cells[7])
    assert "signature: score(x: float) -> float" in function and "How likely x is to churn." in function
    assert "return 1 - x" in function
    assert "public names: " in text_of(nb.cells[9]) and "sqrt" in text_of(nb.cells[9])
    listing = messages(kernel_env)[1].body["messages"][-1]["content"][0]["content"]
    assert "In:" not in str(listing) and "get_ipython" not in str(listing) and "a: " not in str(listing).split("arr")[0]


def test_excluded_names_and_secrets_never_reach_the_api(kernel_env, tmp_path):
    run(
        notebook(
            "%load_ext claude_force_nb\n%config AgentMagics.context_exclude = ['raw_*']",
            SETUP + f"raw_emails = ['ada@example.com']\nOPENAI_API_KEY = '{SECRET}'\nnote = 'key {SECRET}'\n_x = 1",
            "%%agent explainer --context;\nDescribe raw_emails, OPENAI_API_KEY and note",
        ),
        tmp_path,
    )
    body = sent(kernel_env)
    assert SECRET not in body and "ada@example.com" not in body
    assert "OPENAI_API_KEY: str (hidden: it looks like a secret)" in body
    assert "raw_emails" not in body.split('"content": "')[-1] and "_x:" not in body


def test_the_same_question_with_a_changed_frame_is_a_miss(kernel_env, tmp_path):
    nb = run(
        notebook(
            "%load_ext claude_force_nb",
            SETUP,
            "%%agent explainer --context -o first;\nHow many rows has df?",
            "%%agent explainer --context -o again;\nHow many rows has df?",
            "df = df.head(10)",
            "%%agent explainer --context -o changed;\nHow many rows has df?",
            "print(first.cached, again.cached, changed.cached, '10 rows' in changed.output)",
        ),
        tmp_path,
    )
    assert text_of(nb.cells[6]).strip() == "False True False True"
    assert len(messages(kernel_env)) == 6  # three replies each for the first ask and the changed frame


def test_snippets_need_an_explicit_yes_where_no_one_can_answer(kernel_env, tmp_path):
    nb = run(
        notebook(
            "%load_ext claude_force_nb\n%config AgentMagics.snippet_seconds = 1",
            SETUP,
            "%%agent explainer --allow-run -o asked;\nCheck df with `df.churned.mean()`",
            "print(asked.tool_runs[-1]['result'])",
            "%%agent explainer --allow-run=yes -o ran;\nCheck df with `df.churned.mean()`",
            "print(ran.tool_runs[-1]['result'])",
            "%%agent explainer --allow-run=yes -o failed;\nCheck df with `df.missing_column`",
            "print(failed.tool_runs[-1]['result'])",
            "%%agent explainer --allow-run=yes -o hung;\nCheck df with `__import__('time').sleep(60)`",
            "print(hung.tool_runs[-1]['result'])\nprint('kernel alive')",
        ),
        tmp_path,
    )
    assert "this front end cannot ask the user" in text_of(nb.cells[2])
    assert "--allow-run=yes" in text_of(nb.cells[3])
    shown = text_of(nb.cells[4])
    assert "Claude asks to run this in the kernel:\ndf.churned.mean()" in shown and "It ran. Result:" in shown
    assert text_of(nb.cells[5]).strip().startswith("value: np.float64(0.26666")
    assert "AttributeError" in text_of(nb.cells[7]) and "missing_column" in text_of(nb.cells[7])
    assert text_of(nb.cells[9]).strip() == "Stopped: interrupted after its time limit of 1 s.\nkernel alive"


def test_a_snippet_the_user_declines_does_not_run(kernel_env, tmp_path):
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    asked = []

    def answer(message):
        asked.append(message["content"]["prompt"])
        kc.input("n" if len(asked) == 1 else "y")

    try:
        kc.execute_interactive("%load_ext claude_force_nb\nimport pandas as pd\ndf = pd.DataFrame({'a': [1]})")
        for _ in range(2):
            kc.execute_interactive(
                "%%agent explainer --allow-run -o r;\nChange df with `df.insert(1, 'b', 2)`",
                allow_stdin=True,
                stdin_hook=answer,
                timeout=60,
            )
            kc.execute_interactive("print(list(df.columns), r.tool_runs[-1]['result'])", output_hook=asked.append)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert asked[0] == "Run this snippet in the kernel? [y/N] "
    printed = [m["content"]["text"] for m in asked[1:] if isinstance(m, dict) and m.get("msg_type") == "stream"]
    assert printed[0].strip() == "['a'] The user declined to run this snippet."
    assert printed[1].startswith("['a', 'b'] ")  # asked again, allowed, run


HOSTILE = """
class Hostile:
    def __init__(self, mode):
        self.mode = mode
    def __repr__(self):
        if self.mode == "raises":
            raise RuntimeError("repr refuses")
        if self.mode == "hangs":
            import time
            time.sleep(120)
        if self.mode == "huge":
            return "z" * 10_000_000
        return "Hostile()"
    def __len__(self):
        raise ValueError("no length")
    def __getattr__(self, name):
        return lambda *a, **k: "a lie"
bad_raises, bad_hangs, bad_huge, bad_lies = (Hostile(m) for m in ("raises", "hangs", "huge", "lies"))
"""


def test_hostile_objects_leave_the_kernel_alive_and_the_answer_says_what_failed(kernel_env, tmp_path):
    cells = ["%load_ext claude_force_nb", HOSTILE]
    for name in ("bad_raises", "bad_hangs", "bad_huge", "bad_lies"):
        cells += [f"%%agent explainer --context -o {name}_r;\nWhat is {name}?", f"print({name}_r.output)"]
    cells.append("print(len(bad_huge_r.tool_runs[-1]['result']), bad_huge_r.tool_runs[-1]['result'][-40:])")
    cells.append("print('kernel alive')")
    nb = run(notebook(*cells), tmp_path)
    assert "repr() raised RuntimeError: repr refuses" in text_of(nb.cells[3])
    assert "did not finish within 2 s" in text_of(nb.cells[5])
    size, tail = text_of(nb.cells[10]).split(" ", 1)
    assert int(size) < 7_000 and "more characters cut]" in tail and "zzzz" * 2000 not in text_of(nb.cells[7])
    assert "Hostile()" in text_of(nb.cells[9]) and "a lie" not in text_of(nb.cells[9])
    assert text_of(nb.cells[11]).strip() == "kernel alive"


def test_a_snippet_cannot_close_its_own_code_block_or_hide_past_the_edge(ip):
    from IPython.utils.capture import capture_output

    from claude_force_nb._context.snippets import visible
    from claude_force_nb._notebook.context import show

    sneaky = 'q = """\n```\n<!--\n"""\nimport os; os.system("true")\x1b[2K' + " " * 200 + "; print('hidden')"
    with capture_output() as shown:
        show(f"Claude asks to run this in the kernel:\n{visible(sneaky)}")
    markdown = shown.outputs[0].data["text/markdown"]
    assert markdown.split("\n")[2] == "````" and markdown.endswith("\n````")  # longer than any run inside
    assert "\\x1b[2K" in markdown and "\x1b" not in markdown
    assert "(line 5 runs past 160 characters: scroll to read it all)" in markdown


def test_allow_run_keeps_the_agent_after_it_and_refuses_a_background_sweep(ip):
    import pytest
    from IPython.core.error import UsageError

    ip.run_cell_magic("agent", "--allow-run explainer -o r;", "What is 2 + 2?")
    assert ip.user_ns["r"].agent_name == "explainer"
    with pytest.raises(UsageError, match="Drop --background"):
        ip.run_cell_magic("agents", "explainer --context --background -o run", "What is in df?")
