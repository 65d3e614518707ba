"""Start-up cost: importing the package, its CLI, and %load_ext in a fresh kernel.

Run: python bench/startup.py [--repeats 15]

Each figure is the median over fresh processes (or fresh kernels), beside a
baseline measured in the same run: a bare interpreter for the commands, and
for the kernel an empty cell. ``import anthropic`` is timed too, for what the
package no longer pays until a request needs the API.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

KERNEL_CODE = """
import time
start = time.perf_counter()
pass
empty = time.perf_counter() - start
start = time.perf_counter()
get_ipython().run_line_magic("load_ext", "claude_force_nb")
load_ext = time.perf_counter() - start
import sys, json
print("FIGURES" + json.dumps({"empty": empty, "load_ext": load_ext, "anthropic": "anthropic" in sys.modules}))
"""


def command_seconds(args: list[str], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def kernel_figures(repeats: int) -> dict[str, float]:
    loads, empties = [], []
    for _ in range(repeats):
        nb = new_notebook(cells=[new_code_cell(KERNEL_CODE)])
        NotebookClient(nb, timeout=120, kernel_name="python3").execute(stderr=subprocess.DEVNULL)
        text = "".join(o.get("text", "") for o in nb.cells[0].outputs if o.output_type == "stream")
        figures = json.loads(text.split("FIGURES", 1)[1].splitlines()[0])
        assert not figures["anthropic"], "%load_ext imported the SDK"
        loads.append(figures["load_ext"])
        empties.append(figures["empty"])
    return {"load_ext": statistics.median(loads), "empty": statistics.median(empties)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory() as home:
        os.environ["CLAUDE_FORCE_NB_HOME"] = home
        bare = command_seconds([python, "-c", "pass"], args.repeats)
        rows = [
            ("`python -c pass`, for scale", bare, None),
            ("`import claude_force_nb`", command_seconds([python, "-c", "import claude_force_nb"], args.repeats), 0.5),
            (
                "`python -m claude_force_nb --help`",
                command_seconds([python, "-m", "claude_force_nb", "--help"], args.repeats),
                0.5,
            ),
            (
                "`import anthropic`, for comparison",
                command_seconds([python, "-c", "import anthropic"], args.repeats),
                None,
            ),
        ]
        kernel = kernel_figures(max(3, args.repeats // 3))
    print(
        f"python {sys.version.split()[0]}, medians of {args.repeats} processes, {max(3, args.repeats // 3)} kernels\n"
    )
    print("| what | median | added to a bare interpreter | target |")
    print("|---|---:|---:|---:|")
    for name, seconds, target in rows:
        added = seconds - bare
        goal = f"≤ {target:.1f} s" if target is not None else ""
        print(f"| {name} | {seconds:.3f} s | {added:+.3f} s | {goal} |")
    print(
        f"| `%load_ext claude_force_nb` in a fresh kernel | {kernel['load_ext']:.3f} s | "
        f"{kernel['load_ext'] - kernel['empty']:+.3f} s (vs an empty statement) | ≤ 0.3 s |"
    )


if __name__ == "__main__":
    main()
