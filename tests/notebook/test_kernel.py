"""The magics in a real ipykernel, driven by nbclient, against the local server."""

import asyncio
import sqlite3

import pytest
from kernels import answered, interrupt_when, kernel_client, messages, notebook, run, text_of

pytestmark = pytest.mark.timeout(180)


def test_blocking_cells_and_cached_rerun(kernel_env, tmp_path):
    nb = run(
        notebook(
            "%load_ext claude_force_nb",
            "%%agent explainer -o first\nWhat is a monad?",
            "%%agents explainer summarizer -o both --no-panel\nWhat is a monad?",
            "%%agent explainer -o again\nWhat is a monad?",
            "print(first.cached, again.cached, again.output == first.output, [r.status for r in both])",
        ),
        tmp_path,
    )
    assert "synthetic" in text_of(nb.cells[1])
    assert text_of(nb.cells[4]).strip() == "False True True ['cached', 'ok']"
    assert len(messages(kernel_env)) == 2


def test_cache_survives_a_kernel_restart(kernel_env, tmp_path):
    cells = ("%load_ext claude_force_nb", "%%agent explainer -o r\nPersist me", "print(r.cached, r.source)")
    first = run(notebook(*cells), tmp_path)
    second = run(notebook(*cells), tmp_path)
    assert text_of(first.cells[2]).strip() == "False api"
    assert text_of(second.cells[2]).strip() == "True file"
    assert len(messages(kernel_env)) == 1


def test_background_sweep_progresses_between_cells(kernel_env, tmp_path):
    nb = notebook(
        "%load_ext claude_force_nb\nitems = list(range(8))",
        "%%agents explainer --over items -c 4 --background -o run --no-panel\nCount to {item}",
        "print('done at start:', run.done)",
        "results = await run\nprint(len(results), all(r.success for r in results), run.done)",
    )
    client = kernel_client(nb, tmp_path)

    async def drive():
        async with client.async_setup_kernel():
            kernel_env.latency = 60  # held until the cells before the wait have run
            for index in range(3):
                await client.async_execute_cell(nb.cells[index], index)
            kernel_env.latency = 0.05
            kernel_env.wake()
            await client.async_execute_cell(nb.cells[3], 3)

    asyncio.run(drive())
    assert "done at start: False" in text_of(nb.cells[2])
    assert text_of(nb.cells[3]).strip() == "8 True True"
    assert len(messages(kernel_env)) == 8


def test_background_sweep_runs_while_the_kernel_is_idle(kernel_env, tmp_path, until):
    kernel_env.latency = 0.1
    nb = notebook(
        "%load_ext claude_force_nb\nitems = list(range(6))",
        "%%agents explainer --over items -c 3 --background -o run --no-panel\nItem {item}",
        "results = run.wait()\nprint(len(results), all(r.success for r in results))",
    )
    client = kernel_client(nb, tmp_path)
    seen = {}

    async def drive():
        async with client.async_setup_kernel():
            await client.async_execute_cell(nb.cells[0], 0)
            await client.async_execute_cell(nb.cells[1], 1)
            # Nothing executes now. Three calls at a time: the last three requests can only
            # be sent once the kernel has taken in answers to the first three.
            await until(lambda: len(messages(kernel_env)) == 6)
            seen["requests while idle"] = len(messages(kernel_env))
            await client.async_execute_cell(nb.cells[2], 2)

    asyncio.run(drive())
    assert seen["requests while idle"] == 6
    assert text_of(nb.cells[2]).strip() == "6 True"


def test_awaiting_a_background_sweep_saves_its_final_panel(kernel_env, tmp_path):
    kernel_env.latency = 0.05
    nb = run(
        notebook(
            "%load_ext claude_force_nb\nitems = list(range(4))",
            "%%agents explainer --over items -c 2 --background -o run\nItem {item}",
            "results = await run",
        ),
        tmp_path,
    )
    assert "Sweep: 4/4 done" in text_of(nb.cells[1])


# A cell that keeps the kernel's main thread busy, as a long computation does.
BUSY = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass"


def test_a_background_sweep_keeps_going_while_a_cell_computes(kernel_env, tmp_path):
    kernel_env.latency = 0.3
    nb = run(
        notebook(
            "%load_ext claude_force_nb\nitems = list(range(4))",
            "%%agents explainer --over items --timeout 1 --background -o run --no-panel\nItem {item}",
            BUSY.format(seconds=2),
            "results = await run\nprint([r.status for r in results])",
        ),
        tmp_path,
    )
    # Each answer took 0.3 s of the 1 s allowed; the busy cell must not count against it.
    assert text_of(nb.cells[3]).strip() == "['ok', 'ok', 'ok', 'ok']"


# Computes until the sweep has every answer, never yielding to the kernel's loop: whatever the
# sweep gets done meanwhile, its worker thread does while this cell holds the GIL. The limit is a
# hang guard, not a speed check; bench/background.py measures the speed.
COMPUTE_UNTIL_ANSWERED = (
    "import sys, time\n"
    "interval = sys.getswitchinterval()\n"
    "end = time.monotonic() + 120\n"
    "while run.progress.succeeded < len(items) and time.monotonic() < end:\n"
    "    pass\n"
    "print(run.progress.succeeded, interval)"
)


@pytest.mark.parametrize("where", ["test server", "offline"])
def test_a_background_sweep_is_answered_while_a_cell_computes(kernel_env, tmp_path, monkeypatch, where):
    kernel_env.latency = 0.3
    if where == "offline":  # the bundled server, in the kernel, sharing its GIL with the computing cell
        monkeypatch.delenv("ANTHROPIC_BASE_URL")
        monkeypatch.delenv("ANTHROPIC_API_KEY")
        monkeypatch.setenv("CLAUDE_FORCE_NB_SIMULATOR_LATENCY", "0.3")
    nb = run(
        notebook(
            "%load_ext claude_force_nb\nitems = list(range(40))",
            # The kernel's first sweep: nothing loaded before it.
            "%%agents explainer --over items -c 10 --background -o run --no-panel\nItem {item}",
            COMPUTE_UNTIL_ANSWERED,
            "import sys\nresults = await run\nprint(len(results), all(r.success for r in results), "
            "sys.getswitchinterval())",
        ),
        tmp_path,
    )
    # Every answer came in while the cell computed, with the GIL handed over within 1 ms
    # rather than CPython's 5 ms; once the sweep ends, the interval is the kernel's own again.
    assert text_of(nb.cells[2]).strip() == "40 0.001"
    assert text_of(nb.cells[3]).strip() == "40 True 0.005"
    assert len(messages(kernel_env)) == (40 if where == "test server" else 0)


@pytest.mark.parametrize("wait", ["results = run.wait()", "results = await run"])
def test_interrupting_a_wait_cancels_the_background_sweep_and_keeps_what_finished(kernel_env, tmp_path, wait, until):
    kernel_env.latency = 0.3
    nb = notebook(
        "%load_ext claude_force_nb\nitems = list(range(12))",
        "%%agents explainer --over items -c 2 --background -o run --no-panel\nItem {item}",
        wait,
        "finished = [r.item for r in run.results if r.success]\n"
        "cancelled = [r.item for r in run.results if r.cancelled]\nprint(run.done, len(finished), len(cancelled))",
        "%%agents explainer --over finished --replay -o again --no-panel\nItem {item}",
        "print(all(r.cached for r in again))",
    )
    client = kernel_client(nb, tmp_path, allow_errors=True)

    async def drive():
        async with client.async_setup_kernel():
            for index in (0, 1):
                await client.async_execute_cell(nb.cells[index], index)

            async def three_finished():
                # Two calls at a time: a fifth request goes out only once three calls have finished.
                await until(lambda: len(messages(kernel_env)) >= 5)
                kernel_env.latency = 60  # what is sent from now on is still in flight at the interrupt

            await interrupt_when(client, nb, 2, three_finished())
            for index in (3, 4, 5):
                await client.async_execute_cell(nb.cells[index], index)

    asyncio.run(drive())
    assert "Interrupted: " in text_of(nb.cells[2])
    done, finished, cancelled = text_of(nb.cells[3]).split()
    assert done == "True" and int(finished) >= 3 and int(cancelled) >= 1 and int(finished) + int(cancelled) == 12
    assert text_of(nb.cells[5]).strip() == "True"
    assert len(messages(kernel_env)) < 12


def test_cancelling_a_background_sweep_keeps_what_finished(kernel_env, tmp_path, until):
    kernel_env.latency = 0.3
    nb = notebook(
        "%load_ext claude_force_nb\nitems = list(range(12))",
        "%%agents explainer --over items -c 2 --background -o run --no-panel\nItem {item}",
        "run.cancel()\nresults = await run\nprint(sum(r.success for r in results) + sum(r.cancelled for r in results),"
        " sum(r.cancelled for r in results) > 0)",
    )
    client = kernel_client(nb, tmp_path)

    async def drive():
        async with client.async_setup_kernel():
            for index in (0, 1):
                await client.async_execute_cell(nb.cells[index], index)
            await until(lambda: answered(kernel_env) >= 2)
            kernel_env.latency = 60  # what is sent from now on is still in flight at the cancel
            await client.async_execute_cell(nb.cells[2], 2)

    asyncio.run(drive())
    assert text_of(nb.cells[2]).strip() == "12 True"


def test_a_kernel_with_a_sweep_running_shuts_down_cleanly(kernel_env, tmp_path, until, isolated_env):
    nb = notebook(
        "%load_ext claude_force_nb\nitems = list(range(6))",
        "%%agents explainer --over items -o done --no-panel\nDone {item}",
        "%%agents explainer --over items --background -o run\nPending {item}",
    )
    client = kernel_client(nb, tmp_path)
    exited = {}

    async def drive(log):
        async with client.async_setup_kernel(stderr=log):
            for index in (0, 1):
                await client.async_execute_cell(nb.cells[index], index)
            kernel_env.latency = 60  # the second sweep would outlive the test
            await client.async_execute_cell(nb.cells[2], 2)
            await until(lambda: kernel_env.in_flight == 6)
            await client.km.request_shutdown()
            # A hang guard, not a speed check: a kernel that does not exit is killed after this.
            for _ in range(600):
                if not await client.km.is_alive():
                    break
                await asyncio.sleep(0.05)
            exited["by itself"] = not await client.km.is_alive()

    with open(tmp_path / "kernel.log", "w") as log:
        asyncio.run(drive(log))
    assert exited["by itself"]
    log = (tmp_path / "kernel.log").read_text()
    for trouble in ("Traceback", "Exception ignored", "Task was destroyed", "Could not"):
        assert trouble not in log, log
    # The test server's answers are synthetic: they go to the offline file, never to Claude's.
    with sqlite3.connect(isolated_env["nb-home"] / "offline-cache.sqlite") as db:
        assert db.execute("SELECT count(*) FROM responses WHERE task LIKE 'Done %'").fetchone() == (6,)


def test_a_notebook_served_entirely_from_the_cache_never_imports_the_sdk(kernel_env, tmp_path, monkeypatch):
    cells = (
        "%load_ext claude_force_nb\nitems = ['a', 'b', 'c']",
        "%%agent explainer -o one\nWhat is a monad?",
        "%%agents explainer summarizer --over items -o many\nExplain {item}.",
        "%%agents explainer --over items --background -o later\nLater {item}.",
        "%agent stats",
        "import sys\nresults = await later\n"
        "print(one.cached, all(r.cached for r in [*many, *results]), 'anthropic' in sys.modules)",
    )
    recorded = run(notebook(*cells), tmp_path)
    assert text_of(recorded.cells[5]).strip() == "False False True"
    monkeypatch.setenv("CLAUDE_FORCE_NB_CACHE_MODE", "replay")
    replayed = run(notebook(*cells), tmp_path)
    assert text_of(replayed.cells[5]).strip() == "True True False"
    monkeypatch.setenv("CLAUDE_FORCE_NB_CACHE_MODE", "normal")  # every answer cached: still nothing to send
    again = run(notebook(*cells), tmp_path)
    assert text_of(again.cells[5]).strip() == "True True False"
    assert len(messages(kernel_env)) == 10


def test_a_nan_timeout_is_a_one_line_error_and_the_kernel_lives(kernel_env, tmp_path):
    nb = run(
        notebook(
            "%load_ext claude_force_nb",
            "%%agent explainer --timeout nan\nhello",
            "%config AgentMagics.timeout = float('nan')",
            "%%agent explainer -o r;\nhello",
            "print('alive', r.success)",
        ),
        tmp_path,
        allow_errors=True,
    )
    assert text_of(nb.cells[1]).strip() == "UsageError: --timeout must be a positive, finite number, got nan."
    assert "AgentMagics.timeout must be a positive, finite number" in text_of(nb.cells[2])
    assert text_of(nb.cells[4]).strip() == "alive True"


async def test_a_conversation_across_cells_and_a_re_run_cell_in_a_kernel(kernel_env, tmp_path):
    nb = notebook(
        "%load_ext claude_force_nb",
        "%%agent explainer -o first;\nWhat is a monad?",
        "%%agent explainer --continue -o second;\nShow one in Python.",
        "%agent history explainer",
    )
    client = kernel_client(nb, tmp_path)
    async with client.async_setup_kernel():
        for index in range(4):
            await client.async_execute_cell(nb.cells[index], index)
        await client.async_execute_cell(nb.cells[2], 2)  # the follow-up cell run again
        await client.async_execute_cell(nb.cells[3], 3)
    sent = [r.body["messages"] for r in messages(kernel_env)]
    assert [len(m) for m in sent] == [1, 3]  # the re-run was answered from the cache, with the same history
    history = text_of(nb.cells[3])
    assert history.count("You:") == 2 and "1. You: What is a monad?" in history


def test_an_error_explained_and_code_into_the_next_cell_in_a_kernel(kernel_env, tmp_path):
    nb = run(
        notebook(
            "%load_ext claude_force_nb",
            "ratios = {'a': 1}\nratios['b'] / 2",
            "%agent error",
            "%%agent explainer -o why;\nWhy did cell 2 fail?\n{Err[2]}",
        ),
        tmp_path,
        allow_errors=True,
    )
    sent = [r.body["messages"][-1]["content"] for r in messages(kernel_env)]
    assert "ratios['b'] / 2" in sent[0] and "KeyError: 'b'" in sent[0]
    assert "synthetic" in text_of(nb.cells[2])
    assert "KeyError: 'b'" in sent[1] and "Cell [2]" in sent[1]


def test_next_cell_sends_the_code_to_the_front_end(kernel_env, tmp_path):
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        kc.execute_interactive("%load_ext claude_force_nb", timeout=60)
        reply = kc.execute_interactive("%%agent explainer --next-cell;\nWrite a function.", timeout=60)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    (payload,) = reply["content"]["payload"]
    assert payload["source"] == "set_next_input" and payload["replace"] is False
    assert payload["text"].startswith("[synthetic]")


def test_structured_output_in_a_kernel(kernel_env, tmp_path):
    nb = run(
        notebook(
            "%load_ext claude_force_nb",
            "import pydantic\nclass Person(pydantic.BaseModel):\n    name: str\n    age: int",
            "%%agent explainer --schema Person -o who;\nAda Lovelace, 36",
            "print(type(who.parsed).__name__, isinstance(who.parsed.age, int))",
        ),
        tmp_path,
    )
    assert text_of(nb.cells[3]).strip() == "Person True"


def test_a_tool_call_in_a_kernel(kernel_env, tmp_path):
    nb = run(
        notebook(
            "%load_ext claude_force_nb",
            "def area(width: float, height: float) -> float:\n"
            "    '''The area of a rectangle.'''\n"
            "    return width * height",
            "%%agent explainer --tools area -o room;\nHow big is a 3 by 4 room?",
            "print([run['name'] for run in room.tool_runs], room.status)",
        ),
        tmp_path,
    )
    assert text_of(nb.cells[3]).strip() == "['area'] ok"


def test_a_figure_explained_in_a_kernel(kernel_env, tmp_path):
    nb = run(
        notebook(
            "%load_ext claude_force_nb",
            "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
            "fig, ax = plt.subplots()\nax.plot([1, 2, 3], [3, 1, 2]);",
            "%%agent explainer -o seen;\nWhat does {fig} show?",
            "%%agent explainer --figure -o open_figures;\nAnd the open figures?",
        ),
        tmp_path,
    )
    sent = [r.body["messages"][-1]["content"] for r in messages(kernel_env)]
    assert [[block["type"] for block in content] for content in sent] == [["image", "text"], ["image", "text"]]
    assert sent[0][0]["source"]["media_type"] == "image/png" and nb.cells[2].outputs == []


def test_the_same_error_asks_the_same_question_in_every_kernel(kernel_env, tmp_path):
    cells = ("%load_ext claude_force_nb", "d = {}\nd['x']", "%agent error")
    for _ in range(2):  # two kernels, one after the other, on one cache
        run(notebook(*cells), tmp_path, allow_errors=True)
    (asked,) = [r.body["messages"][-1]["content"] for r in messages(kernel_env)]
    assert 'File "<cell>", line 2' in asked and "ipykernel_" not in asked  # the second kernel's was a hit


def test_thinking_and_effort_in_a_kernel(kernel_env, tmp_path):
    nb = run(
        notebook(
            "%load_ext claude_force_nb",
            "%%agent explainer -m claude-opus-4-6 --thinking --effort low -o r\nWhy is the sky blue?",
            "print(len(r.thinking) > 0, r.status)",
        ),
        tmp_path,
    )
    body = messages(kernel_env)[-1].body
    assert body["thinking"] == {"type": "adaptive"} and body["output_config"] == {"effort": "low"}
    assert "[thinking: " in text_of(nb.cells[1]) and text_of(nb.cells[2]).strip() == "True ok"
