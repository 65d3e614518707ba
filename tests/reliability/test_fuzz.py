"""Generated magic lines and cells in one real kernel: each gives a result or a one-line UsageError, never worse."""

import os
import queue
import time
from collections import Counter
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jupyter_client.manager import start_new_kernel

from claude_force_nb.simulator import LocalServer

pytestmark = pytest.mark.timeout(300)

# A hang guard, not a speed check: how long a reply may stay missing after the kernel logged its own traceback.
TROUBLE_GRACE = 2.0

# Run before every example, with the liveness check: the names examples use, fresh, whatever the last one did.
SETUP = """
s = "\\ud83d"  # half an emoji, as json.loads makes of a cut "\\ud83d\\ude00"; no kernel message can carry one
n, i, d, text, items, empty = None, 7, {"a": 1, "b": 2}, "abc", [1, 2], []
g = (x for x in range(2))
big = "x" * 1_000_000
get_ipython = __import__("IPython").get_ipython  # -o get_ipython hides it, with a note saying so
"""

NUMBERS = st.one_of(
    st.sampled_from(["nan", "NaN", "inf", "-inf", "infinity", "-1", "0", "-0", "1e309", "1e-320", "0x10", "1_0", "ab"]),
    st.integers(-(10**30), 10**30).map(str),
    st.floats().map(repr),
)
NUMERIC_FLAGS = ("-c", "--concurrency", "--timeout", "--max-tokens", "-t", "--temperature")
# Names -o assigns, IPython's own among them.
NAMES = (
    "res",
    "def",
    "class",
    "None",
    "True",
    "1x",
    "a-b",
    "x.y",
    "list",
    "_",
    "get_ipython",
    "s",
    "''",
    "_oh",
    "__builtins__",
)
VALUES = {
    "-o": NAMES,
    "--out": NAMES,
    "--over": ("items", "d", "g", "n", "i", "text", "empty", "s", "nowhere", "{n}"),
    "--models": ("sonnet,haiku", ",", "sonnet,,", "nope", "opus,opus,haiku"),
    "-m": ("haiku", "nope", "claude-not-a-model-9"),
    "--system": ("'Be brief.'", "''", "{text}", "a\x00b"),
    "-f": ("markdown", "text", "code", "json", "html"),
}
SWITCHES = ("--no-cache", "--refresh", "--replay", "--raw", "--fence", "--stream", "--background", "--no-panel")
JUNK = (
    *("--bogus", "-z", "--", "-", "---", "-h", "--timeout=", "-c=2", "--over=items", "-o=res", "?"),
    *("'", '"', "'a b'", '"unterminated', "\\", "\x00", "a\x00b", "\t"),
    *("$text", "{n}", "{s}", "{1/0}", "{", "}", "${x}", "%", "%%agent", "ünïcödé"),
)
# Where IPython ends a line (str.splitlines does), so after %agent they start Python code: IPython's syntax.
LINE_BREAKS = ("\x0b", "\u2028")
AGENTS = ("explainer", "summarizer", "code-reviewer", "no-such-agent", "EXPLAINER")
WORD = st.one_of(
    st.tuples(st.sampled_from(NUMERIC_FLAGS), NUMBERS).map(" ".join),
    st.sampled_from(sorted(VALUES)).flatmap(lambda flag: st.sampled_from(VALUES[flag]).map(f"{flag} {{}}".format)),
    st.sampled_from(SWITCHES),
    st.sampled_from(JUNK + LINE_BREAKS),
    st.sampled_from(AGENTS),
)
# Mostly an agent first and a few options, so that many lines are valid and reach the API.
LINE = st.tuples(st.sampled_from((*AGENTS[:2], "")), st.lists(WORD, max_size=4), st.sampled_from(["", ";"])).map(
    lambda parts: " ".join([parts[0], *parts[1]]) + parts[2]
)
COMMAND = st.lists(
    st.one_of(
        st.sampled_from(["list", "show", "stats", "cache", "info", "verify", "prune", "clear", "--yes", "config"]),
        st.sampled_from(["help", "--help", "bogus", "{s}", *AGENTS]),  # %agent quotes what it repeats
        st.sampled_from(JUNK),
    ),
    max_size=3,
).map(" ".join)
MEGABYTE = 1_000_000
CELL = st.one_of(
    st.sampled_from(("hi", "Item {item}", "{item}", "", "   ", "{s}", "{big}", "a\x00b {item}", "{n}", "{d['a']}")),
    st.sampled_from(("{{item}}", "{undefined}", "{item.attr}", "{text} {item}")),
    st.just(MEGABYTE).map(lambda size: "y" * size),  # built, not listed: the strategy's repr stays short
)


def sources(magic: str) -> st.SearchStrategy[str]:
    """What runs in a cell: ``magic`` with a line, and a cell for a cell magic."""
    if magic == "%agent":
        return COMMAND.map("%agent {}".format)
    return st.tuples(LINE, CELL).map(lambda parts: f"{magic} {parts[0]}\n{parts[1]}")


SOURCE = st.sampled_from(["%%agent", "%%agents", "%agent"]).flatmap(sources)


@contextmanager
def started_kernel(root):
    """A kernel with the extension loaded, talking to its own local server, in private directories under ``root``."""
    for name in ("nb-home", "user-home", "work"):
        (root / name).mkdir(parents=True)
    cleared = ("ANTHROPIC_", "CLAUDE_CACHE_", "CLAUDE_FORCE_NB_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(cleared)}
    with LocalServer() as server:
        env.update(
            ANTHROPIC_BASE_URL=server.url,
            ANTHROPIC_API_KEY="test-key",
            CLAUDE_FORCE_NB_HOME=str(root / "nb-home"),
            HOME=str(root / "user-home"),
            NO_PROXY="127.0.0.1,localhost",
        )
        manager, client = start_new_kernel(kernel_name="python3", env=env, cwd=str(root / "work"))
        try:
            reply, _ = execute(client, "%load_ext claude_force_nb")
            assert reply["status"] == "ok", reply
            yield client
        finally:
            client.stop_channels()
            manager.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """One kernel for every generated example: starting one takes longer than running a hundred."""
    with started_kernel(tmp_path_factory.mktemp("fuzz")) as client:
        yield client


@pytest.fixture
def fresh_kernel(tmp_path):
    """A kernel of its own, for a test that leaves it unwell."""
    with started_kernel(tmp_path / "kernel") as client:
        yield client


def execute(client, code, timeout=30.0):
    """Run ``code``; the execute_reply's content and the messages published while it ran.

    The kernel replies, then says it is idle. Once it has logged a traceback of its own, a reply or an
    idle still missing after a short grace is one it could not send: that cell would stay busy for ever.
    """
    msg_id = client.execute(code, store_history=False, allow_stdin=False)
    give_up = time.monotonic() + timeout
    published, reply, idle = [], None, False
    while reply is None or not idle:
        if time.monotonic() > give_up:
            missing = "no reply" if reply is None else "never idle again"
            raise AssertionError(f"{code[:300]!r}: {missing}; the kernel said:\n{stderr_of(published)}")
        try:
            msg = client.get_iopub_msg(timeout=0.02)
        except queue.Empty:
            pass
        else:
            if msg["parent_header"].get("msg_id") == msg_id:
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    idle = True
                else:
                    published.append(msg)
                    if "Traceback" in stderr_of([msg]):
                        give_up = min(give_up, time.monotonic() + TROUBLE_GRACE)
        if reply is None:
            try:
                answer = client.get_shell_msg(timeout=0)
            except queue.Empty:
                continue
            if answer["parent_header"].get("msg_id") == msg_id:
                reply = answer["content"]
    return reply, published


def stderr_of(published):
    return "".join(
        m["content"]["text"] for m in published if m["msg_type"] == "stream" and m["content"]["name"] == "stderr"
    )


def verdict(code, reply, published):
    """What an execution gave: "output", or the UsageError's first words. A traceback or other error fails."""
    tracebacks = [m["content"] for m in published if m["msg_type"] == "error"]
    assert not tracebacks, f"{code[:300]!r} gave a traceback: {tracebacks[0]['ename']}: {tracebacks[0]['evalue']}"
    stderr = stderr_of(published)
    assert "Traceback" not in stderr, f"{code[:300]!r} logged a traceback:\n{stderr}"
    if reply["status"] == "ok":
        return "output"
    assert (reply["status"], reply.get("ename")) == ("error", "UsageError"), f"{code[:300]!r}: {reply}"
    # A warning may come first (an unknown model, say); the error itself is the one last line.
    lines = stderr.rstrip("\n").split("\n")
    assert lines[-1] == f"UsageError: {reply['evalue']}", f"{code[:300]!r}: not one line: {stderr!r}"
    assert sum(line.startswith("UsageError") for line in lines) == 1, f"{code[:300]!r}: {stderr!r}"
    return " ".join(reply["evalue"].split()[:2])


def assert_alive(client):
    reply, published = execute(client, SETUP + "1 + 1")
    results = [m["content"]["data"]["text/plain"] for m in published if m["msg_type"] == "execute_result"]
    assert (reply["status"], results) == ("ok", ["2"]), (reply, stderr_of(published))


@pytest.fixture
def tally(figures):
    """Outcomes by kind, over all the examples of the test that uses it: hypothesis sets it up once per test."""
    counts: Counter[str] = Counter()
    start = time.perf_counter()
    yield counts
    usage = {k: v for k, v in counts.most_common() if k != "output"}
    figures(f"{sum(counts.values())} examples in {time.perf_counter() - start:.1f} s, one kernel")
    figures(f"normal output: {counts['output']}; one-line UsageError: {sum(usage.values())}")
    figures(f"UsageErrors by their first words: {dict(list(usage.items())[:8])}")


@settings(
    max_examples=500,
    deadline=None,
    derandomize=True,
    database=None,
    # One kernel serves every example, which is the point: it must survive them all.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(source=SOURCE)
@example(source="%%agent explainer --timeout nan\nhi")
@example(source="%%agent explainer -t inf --max-tokens -1\nhi")
@example(source="%%agent explainer\n{s}")
@example(source="%%agents explainer summarizer --over items --fence\n{s} {item}")
@example(source="%%agent explainer --no-cache\nNUL \x00 in the task")
@example(source="%%agent explainer\n" + "y" * MEGABYTE)
@example(source="%%agents explainer --over i\n{item}")
@example(source="%%agents explainer --over n\n{item}")
@example(source="%%agents explainer --over g\n{item}")
@example(source="%%agents explainer summarizer --over d -c 3 --no-panel\n{item}")
@example(source="%%agents explainer --over items -o class\n{item}")
@example(source="%%agents explainer --over items --background -o res --timeout 1e-300\n{item}")
@example(source="%agent cache clear --yes")
def test_every_magic_gives_a_result_or_one_usage_error_and_the_kernel_lives(kernel, tally, source):
    reply, published = execute(kernel, source)
    tally[verdict(source, reply, published)] += 1
    assert_alive(kernel)


@pytest.mark.parametrize("name", ["__builtins__", "_oh"])
def test_out_never_breaks_the_cells_after_it(fresh_kernel, name):
    reply, published = execute(fresh_kernel, f"%%agent explainer -o {name};\nhi")
    if reply["status"] == "error":
        assert verdict("-o", reply, published) != "output"  # refused, in one line: what a fix would do
        return
    after, _ = execute(fresh_kernel, "print(len('ab'))\n1 + 1")
    assert after["status"] == "ok", f"-o {name}, then print(len('ab')): {after['ename']}: {after['evalue']}"


@pytest.mark.parametrize(
    "source",
    [
        # Unquoted, the prompt's words after the first are "unrecognized arguments", repeated as they are.
        "%%agent explainer --system {prompt}\nhi",
        "%%agents explainer --over {s}\n{item}",  # "--over <s>: no variable named ..."
    ],
)
def test_a_usage_error_about_a_lone_surrogate_still_ends_the_cell(fresh_kernel, source):
    execute(fresh_kernel, SETUP + "prompt = f'Answer {s} briefly'")
    reply, published = execute(fresh_kernel, source)
    assert verdict(source, reply, published) != "output"


def test_a_sweep_over_items_with_a_lone_surrogate_shows_its_table(fresh_kernel):
    execute(fresh_kernel, SETUP + "words = [s, 'fine']")
    source = "%%agents explainer --over words --no-panel -o rs\nSay {item}"
    reply, published = execute(fresh_kernel, source)
    assert verdict(source, reply, published) == "output"
