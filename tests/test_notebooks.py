"""The tutorials as files: executed in order, stored statically, sanitized narrowly, with a clean recorded cache.

nbval (configured in pyproject.toml) runs the notebooks and compares their
outputs; these tests cover what it cannot see. It skips the comparison for a
cell that was never executed, so a notebook saved without outputs would pass it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbval.plugin import get_sanitize_patterns

from claude_force_nb import ResponseCache

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
EXPECTED = [
    "01-quickstart",
    "02-parallel-agents-and-sweeps",
    "03-the-cache",
    "04-reproducible-notebooks-in-ci",
    "05-custom-agents",
    "06-large-sweeps",
    "07-conversations-and-data",
    "08-evaluating-prompts-and-models",
]


def load_execute_module():
    spec = importlib.util.spec_from_file_location("notebooks_execute", NOTEBOOKS / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


execute = load_execute_module()


def sanitize(text: str) -> str:
    for regex, replace in get_sanitize_patterns((NOTEBOOKS / "sanitize.cfg").read_text()):
        text = re.sub(regex, replace, text)
    return text


def test_the_tutorials_are_there():
    assert [p.stem for p in PATHS] == EXPECTED


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_every_code_cell_was_executed_top_to_bottom(path):
    nb = nbformat.read(path, as_version=4)
    counts = [cell.execution_count for cell in nb.cells if cell.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), "re-run: python notebooks/execute.py " + path.stem


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_outputs_render_without_a_kernel(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert "widgets" not in nb.metadata
    for cell in nb.cells:
        assert "execution" not in cell.metadata
        for output in cell.get("outputs", ()):
            assert output.output_type != "error", cell.source
            assert execute.WIDGET_VIEW not in output.get("data", {}), cell.source


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_no_output_is_exempt_from_comparison(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        assert "NBVAL" not in cell.source
        assert not {"nbval-ignore-output", "nbval-skip", "raises-exception"} & set(cell.metadata.get("tags", ()))


def test_sanitize_rules_normalise_only_what_varies():
    footer = (
        "explainer · claude-sonnet-4-6 · 114 in / 81 out tokens · $0.0016 · 397 µs · cached (memory), saved 565.6 ms"
    )
    assert sanitize(footer) == footer.replace("397 µs", "T").replace("565.6 ms", "T")
    stats = (
        "Agent cache: 50.0 % hit rate (1 memory, 0 file), 1 hits, 1 misses\n"
        "Saved: 0.566 s, 195 tokens, $0.0016; speedup 2.0x"
    )
    assert sanitize(stats) == stats.replace("0.566 s", "T").replace("2.0x", "Sx")
    first = stats + "\nSweep: 0/2 done, 0 cached\nMedian latency: no calls finished yet"
    last = stats.replace("1 misses", "3 misses") + "\nSweep: 2/2 done, 0 cached\nMedian latency: a 0.311 s (1)"
    assert sanitize(first) == sanitize(last) == "Agent cache: (panel of a sweep)"
    table = (
        "#  agent      status  latency   answer\n0  explainer  ok      311.0 ms  Hello\n"
        "1  explainer  cached  41 µs     Hello"
    )
    assert (
        sanitize(table)
        == sanitize(table.replace("311.0 ms", "1.02 s  "))
        == ("#  agent  status  latency  answer\n0  explainer  ok  T  Hello\n1  explainer  cached  T  Hello")
    )
    assert sanitize("path: /tmp/cache-demo-a1b2c3/cache.sqlite\nsize: 57,568 bytes") == (
        "path: $SCRATCH/cache.sqlite\nsize: N bytes"
    )
    assert sanitize("| /home/me/repo/notebooks/.claude/agents/x.md |") == "| $PROJECT/.claude/agents/x.md |"
    warning = (
        "/site-packages/claude_force_nb/_orchestrator.py:142: CacheIntegrityWarning: 1 cached answer failed.\n"
        "  completion, source = await self.cache.fetch(request)\n"
    )
    assert sanitize(warning) == "claude_force_nb/_orchestrator.py: CacheIntegrityWarning: 1 cached answer failed.\n"
    nested = warning.replace("_orchestrator.py:142", "_cache/store.py:90")
    assert sanitize(nested) == "claude_force_nb/_cache/store.py: CacheIntegrityWarning: 1 cached answer failed.\n"


def test_kernel_environment_is_hermetic(tmp_path):
    outer = {
        "PATH": "/usr/bin",
        "ANTHROPIC_API_KEY": "sk-ant-real",
        "ANTHROPIC_BASE_URL": "https://proxy",
        "CLAUDE_FORCE_NB_MODEL": "claude-opus-4-6",
        "CLAUDE_CACHE_SECRET": "from-ci",
        "CLAUDE_CACHE_OLD_SECRETS": "old",
        "PYTHONWARNINGS": "error",
        "HOME": "/home/me",
    }
    env = execute.kernel_environment(NOTEBOOKS / "01-quickstart.ipynb", tmp_path, outer)
    assert not {k for k in env if k.startswith(("ANTHROPIC_", "CLAUDE_CACHE_"))}
    assert env["PATH"] == "/usr/bin" and "PYTHONWARNINGS" not in env
    assert {k: Path(env[k]).parent for k in ("HOME", "IPYTHONDIR", "CLAUDE_FORCE_NB_HOME")} == dict.fromkeys(
        ("HOME", "IPYTHONDIR", "CLAUDE_FORCE_NB_HOME"), tmp_path
    )
    assert "CLAUDE_FORCE_NB_MODEL" not in env and "CLAUDE_FORCE_NB_CACHE_MODE" not in env
    replay = execute.kernel_environment(NOTEBOOKS / execute.REPLAY_NOTEBOOK, tmp_path, outer)
    assert replay["CLAUDE_FORCE_NB_CACHE_MODE"] == "replay"
    assert replay["CLAUDE_CACHE_SECRET"] == "from-ci"  # as CI provides it
    assert "ANTHROPIC_API_KEY" not in replay and "CLAUDE_CACHE_OLD_SECRETS" not in replay


def demo_secret() -> str:
    source = "".join(c.source for c in nbformat.read(NOTEBOOKS / execute.REPLAY_NOTEBOOK, as_version=4).cells)
    return re.search(r'os\.environ\["CLAUDE_CACHE_SECRET"\] = "([^"]+)"', source).group(1)


@pytest.fixture
def recorded_copy(tmp_path):
    # Opening the committed file would create -wal/-shm files beside it.
    copy = tmp_path / "cache.sqlite"
    shutil.copyfile(execute.RECORDED_CACHE, copy)
    return copy


def test_recorded_cache_is_small_checkpointed_and_holds_no_key(recorded_copy):
    data = recorded_copy.read_bytes()
    assert len(data) <= 32 * 1024
    assert data[18:20] == b"\x02\x02"  # WAL mode, as the cache opens it: opening it does not rewrite the header
    for needle in (b"sk-ant", b"x-api-key", b"authorization", b"local-simulator"):
        assert needle not in data.lower()
    db = sqlite3.connect(recorded_copy)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA freelist_count").fetchall() == [(0,)]  # vacuumed
        assert db.execute("SELECT count(*), min(expires) FROM responses").fetchall() == [(2, float("inf"))]
    finally:
        db.close()


def test_recorded_cache_verifies_under_the_demo_secret_only(recorded_copy):
    with ResponseCache(recorded_copy, secrets=[demo_secret()]) as cache:
        report = cache.verify()
    assert (report.ok, report.total, report.secret_mismatch) == (2, 2, False)
    with ResponseCache(recorded_copy, secrets=["another-secret"]) as cache:
        assert cache.verify().secret_mismatch


def test_recorded_cache_side_files_are_ignored_by_git():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for suffix in ("-wal", "-shm"):
        path = f"notebooks/recorded/cache.sqlite{suffix}"
        assert subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT).returncode == 0, path
    assert subprocess.run(["git", "check-ignore", "-q", "notebooks/recorded/cache.sqlite"], cwd=ROOT).returncode == 1


@pytest.mark.timeout(180)
def test_quickstart_command_executes_the_first_notebook(tmp_path, isolated_env, monkeypatch):
    monkeypatch.setenv("CLAUDE_FORCE_NB_SIMULATOR_LATENCY", "0.05")
    out = tmp_path / "out"
    # Run from a directory that is not the checkout: the notebook is found beside the package.
    result = subprocess.run(
        [sys.executable, "-m", "claude_force_nb", "quickstart", "--out", str(out)],
        cwd=isolated_env["work"],
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert result.returncode == 0, result.stderr
    target = out / "01-quickstart.ipynb"
    assert f"jupyter lab {target}" in result.stdout
    nb = nbformat.read(target, as_version=4)
    texts = [o.get("data", {}).get("text/plain", "") for c in nb.cells for o in c.get("outputs", ())]
    assert any("cached (memory)" in t for t in texts)
    assert any(t.startswith("Agent cache: 50.0 % hit rate") for t in texts)


@pytest.mark.timeout(180)
def test_the_sweep_tutorial_runs_as_a_papermill_template(tmp_path, monkeypatch):
    import papermill

    source = NOTEBOOKS / "02-parallel-agents-and-sweeps.ipynb"
    environment = execute.kernel_environment(source, tmp_path, os.environ)
    for name in set(os.environ) - set(environment):
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "swept.ipynb"
    with open(os.devnull, "w") as quiet:  # the cells' stderr (the panel's notices) is not under test
        papermill.execute_notebook(
            str(source),
            str(out),
            parameters={"topics": ["Rust ownership"], "models": "claude-haiku-4-5"},
            cwd=str(NOTEBOOKS),
            progress_bar=False,
            stderr_file=quiet,
        )
    nb = nbformat.read(out, as_version=4)
    texts = ["".join(o.get("data", {}).get("text/plain", "")) for c in nb.cells for o in c.get("outputs", ())]
    [table] = [t for t in texts if t.startswith("#  agent") and "explainer" in t and "Rust" in t]
    assert "Rust ownership" in table and "asyncio" not in table
    [frame] = [t for t in texts if "output_tokens" in t and "input" in t]
    assert "claude-haiku-4-5" in frame and "claude-sonnet-4-6" not in frame
