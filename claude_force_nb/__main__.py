"""The command line: ``demo`` runs agents from a plain script, ``quickstart`` the first tutorial headless."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._orchestrator import AsyncAgentOrchestrator
from ._results import AgentResult

DEMO_TASKS = [
    ("code-reviewer", "def mean(xs):\n    return sum(xs) / len(xs)"),
    ("python-expert", "How do I read a large CSV file in chunks?"),
    ("explainer", "What does Python's GIL do?"),
    ("summarizer", "Caching stores the answers to expensive calls so repeated calls return at once."),
    ("test-writer", "def clamp(x, lo, hi):\n    return max(lo, min(x, hi))"),
]


def _row(result: AgentResult) -> str:
    first = (result.output.strip().splitlines() or [""])[0] if result.success else result.errors[0]
    return (
        f"  {result.agent_name:<14} {result.status:<9} {result.latency * 1000:>9.1f} ms "
        f"{result.tokens:>6} tok  {first[:60]}"
    )


async def demo(runs: int) -> int:
    async with AsyncAgentOrchestrator(max_concurrent=10) as orchestrator:
        for run in range(1, runs + 1):
            start = time.perf_counter()
            results = await orchestrator.execute_multiple(DEMO_TASKS)
            wall = time.perf_counter() - start
            print(
                f"Run {run}: {len(results)} agents concurrently in {wall * 1000:.1f} ms "
                f"(sum of call times {sum(r.latency for r in results) * 1000:.1f} ms)"
            )
            for result in results:
                print(_row(result))
        stats = orchestrator.stats()
        print(
            f"Cache: {stats.hits} hits, {stats.misses} misses, hit rate {stats.hit_rate:.0%}, "
            f"speedup {stats.speedup:.1f}x, time saved {stats.time_saved:.2f} s"
        )
        if orchestrator.cache is not None:
            print(f"Cache file: {orchestrator.cache.info().path}")
        return 0 if all(r.success for r in results) else 1


QUICKSTART = "01-quickstart.ipynb"
NOTEBOOKS_EXTRA = "pip install -e '.[notebooks]'"


def find_notebook(name: str) -> Path | None:
    """``notebooks/NAME`` under the working directory, else in the source checkout this package runs from."""
    for root in (Path.cwd(), Path(__file__).resolve().parent.parent):
        path = root / "notebooks" / name
        if path.is_file():
            return path
    return None


def execute_notebook(
    nb: Any, *, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 600, store_widget_state: bool = True
) -> Any:
    """Run every cell of ``nb`` in a fresh kernel of this Python (not whatever "python3" kernelspec is installed).

    ``env`` replaces the kernel's environment; by default it inherits this process's.
    """
    from ipykernel.kernelspec import RESOURCES, get_kernel_dict
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    class ThisPython(KernelSpecManager):
        def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
            return KernelSpec(resource_dir=RESOURCES, **get_kernel_dict())

    client = NotebookClient(
        nb,
        km=AsyncKernelManager(kernel_name="python3", kernel_spec_manager=ThisPython()),
        timeout=timeout,
        record_timing=False,
        store_widget_state=store_widget_state,
        resources={"metadata": {"path": str(cwd)}},
    )
    # cleanup_kc: shut the kernel down afterwards, which nbclient skips for a kernel manager it was given.
    # The kernel's own log lines are not part of the notebook; errors in cells still arrive as outputs.
    # Without env, the kernel inherits this process's environment.
    options = {} if env is None else {"env": dict(env)}
    client.execute(cleanup_kc=True, stderr=subprocess.DEVNULL, **options)
    return nb


def quickstart(out_dir: Path) -> int:
    try:
        import nbformat
        from nbclient.exceptions import CellExecutionError, DeadKernelError
    except ImportError as exc:
        print(f"quickstart needs the notebook tools ({exc.name} is missing): {NOTEBOOKS_EXTRA}", file=sys.stderr)
        return 1
    source = find_notebook(QUICKSTART)
    if source is None:
        print(
            f"Cannot find notebooks/{QUICKSTART}: run this from the root of a claude-force-nb checkout.",
            file=sys.stderr,
        )
        return 1
    print(f"Running {source} ...", flush=True)
    nb = nbformat.read(source, as_version=4)
    failure = None
    try:
        execute_notebook(nb, cwd=source.parent)
    except (CellExecutionError, DeadKernelError) as exc:
        failure = exc
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / QUICKSTART
    nbformat.write(nb, target)  # also after a failure: the copy shows how far it got
    if failure is not None:
        print(f"{failure}\nThe notebook stopped at the cell above; what ran is in {target}.", file=sys.stderr)
        return 1
    print(f"Executed copy: {target}\nOpen it in JupyterLab:\n  jupyter lab {target}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m claude_force_nb",
        description="Run Claude agents from Jupyter. demo runs a few agents concurrently from a plain script; "
        "quickstart runs the first tutorial notebook headless.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo_parser = sub.add_parser("demo", help="run a few agents concurrently, twice, and show the cache at work")
    demo_parser.add_argument("--runs", type=int, default=2, help="how many times to run the agents (default 2)")
    quickstart_parser = sub.add_parser(
        "quickstart", help=f"run notebooks/{QUICKSTART} headless and save the executed copy to open in JupyterLab"
    )
    quickstart_parser.add_argument(
        "--out",
        type=Path,
        default=Path("out"),
        metavar="DIR",
        help="where to write the executed notebook (default: out)",
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        return asyncio.run(demo(args.runs))
    if args.command == "quickstart":
        return quickstart(args.out)
    return 2


if __name__ == "__main__":
    sys.exit(main())
