"""Execute the tutorials the way their tests run them, and store the outputs.

    python notebooks/execute.py                  # every notebook
    python notebooks/execute.py 03-the-cache     # just these
    python notebooks/execute.py --record         # re-record recorded/cache.sqlite first

Each notebook runs in a fresh kernel of this Python, in an environment from
:func:`kernel_environment`: no API key (answers come from the bundled local
server and are the same on every run) and fresh, empty home, IPython and
claude-force-nb directories. ``notebooks/conftest.py`` gives nbval's kernels
the same environment, so the stored outputs are what the tests expect.

Re-run it when a change to the package changes what a notebook shows (nbval
then fails with the difference). Re-record when 04's requests change, for
example after editing a built-in agent it uses: replay then reports a miss.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The notebook that replays a committed cache, and that cache.
REPLAY_NOTEBOOK = "04-reproducible-notebooks-in-ci.ipynb"
RECORDED_CACHE = HERE / "recorded" / "cache.sqlite"
# Variables that would make a run depend on the machine: keys, endpoints, this
# package's settings, warning filters.
CLEARED_PREFIXES = ("ANTHROPIC_", "CLAUDE_FORCE_NB_", "CLAUDE_CACHE_")
CLEARED = ("IPYTHONDIR", "PYTHONWARNINGS")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# Files the notebooks write (and notebooks/.gitignore ignores); removed before a
# run so that the stored outputs are those of a first run.
WRITTEN_BY_NOTEBOOKS = tuple(
    HERE / ".claude" / "agents" / f"{name}.md" for name in ("sql-reviewer", "terse", "thorough")
)


def kernel_environment(notebook: Path, scratch: Path, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The environment a tutorial's kernel starts with; ``scratch`` is an empty directory it may use."""
    env = {k: v for k, v in environ.items() if not k.startswith(CLEARED_PREFIXES) and k not in CLEARED}
    for name, sub in (("HOME", "home"), ("IPYTHONDIR", "ipython"), ("CLAUDE_FORCE_NB_HOME", "claude-force-nb")):
        (scratch / sub).mkdir(parents=True, exist_ok=True)
        env[name] = str(scratch / sub)
    if notebook.name == REPLAY_NOTEBOOK:
        # As in CI: answers only from the committed file, verified with the
        # secret the job provides (the notebook falls back to its demo secret).
        env["CLAUDE_FORCE_NB_CACHE_MODE"] = "replay"
        if environ.get("CLAUDE_CACHE_SECRET"):
            env["CLAUDE_CACHE_SECRET"] = environ["CLAUDE_CACHE_SECRET"]
    return env


def strip_widget_views(nb) -> None:
    """Drop live-widget views from outputs: without a kernel they render as errors; the HTML beside them does not."""
    for cell in nb.cells:
        for output in cell.get("outputs", ()):
            output.get("data", {}).pop(WIDGET_VIEW, None)


def execute(path: Path, *, record: bool = False) -> None:
    import nbformat

    from claude_force_nb.__main__ import execute_notebook

    nb = nbformat.read(path, as_version=4)
    for written in WRITTEN_BY_NOTEBOOKS:
        written.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="claude-force-nb-notebook-") as scratch:
        env = kernel_environment(path, Path(scratch))
        if record:
            env.pop("CLAUDE_FORCE_NB_CACHE_MODE", None)  # normal mode: every answer missing from the file is recorded
        execute_notebook(nb, cwd=path.parent, env=env, store_widget_state=False)
    strip_widget_views(nb)
    if not record:
        nbformat.write(nb, path)


def record() -> None:
    """Re-record the committed cache from scratch, then leave it compact and without -wal/-shm files."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{RECORDED_CACHE}{suffix}").unlink(missing_ok=True)
    execute(HERE / REPLAY_NOTEBOOK, record=True)
    # The kernel may take a moment to exit; SQLite removes the side files only
    # when the last connection to the file closes.
    for _ in range(50):
        db = sqlite3.connect(RECORDED_CACHE, isolation_level=None)
        try:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            db.execute("VACUUM")
        finally:
            db.close()
        leftovers = sorted(p.name for p in RECORDED_CACHE.parent.glob(RECORDED_CACHE.name + "-*"))
        if not leftovers:
            break
        time.sleep(0.2)
    else:
        raise SystemExit(f"{RECORDED_CACHE} still has side files: {', '.join(leftovers)}")
    print(f"Recorded {RECORDED_CACHE} ({RECORDED_CACHE.stat().st_size:,} bytes)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebooks to run (default: all), with or without .ipynb")
    parser.add_argument("--record", action="store_true", help=f"re-record {RECORDED_CACHE.relative_to(HERE)} first")
    args = parser.parse_args(argv)
    paths = [HERE / (n if n.endswith(".ipynb") else n + ".ipynb") for n in args.names] or sorted(HERE.glob("*.ipynb"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    if args.record:
        record()
    for path in paths:
        print(f"Executing {path.name}", flush=True)
        execute(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
