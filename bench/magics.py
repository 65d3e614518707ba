"""Kernel time of a %%agent cell that hits the cache, against the Python API hit.

Run: python bench/magics.py [--cells 300]

Starts a real ipykernel (nbclient) on the bundled local server and times,
inside the kernel and in one run: a whole cell through ``run_cell`` (with
and without the rendered answer), the magic alone, ``execute_agent`` on a
hit, and ``ResponseCache.lookup``. Prints medians in a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

KERNEL_CODE = r"""
import asyncio, json, statistics, time
%load_ext claude_force_nb
ip = get_ipython()
magics = ip.magics_manager.registry["AgentMagics"]
TASK = "What is a monad?"
ip.run_cell_magic("agent", "explainer -o r;", TASK)  # the one real call
assert not r.cached

def timed(fn, n):
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6

N = {cells}
quiet_cell = lambda: ip.run_cell("%%agent explainer -o r;\n" + TASK, store_history=False)
shown_cell = lambda: ip.run_cell("%%agent explainer -o r\n" + TASK, store_history=False)
magic_only = lambda: ip.run_cell_magic("agent", "explainer -o r;", TASK)
orchestrator = magics.orchestrator
loop = asyncio.get_running_loop()
call = orchestrator.prepare("explainer", TASK)
api_hit = lambda: loop.run_until_complete(orchestrator.execute_agent("explainer", TASK))
lookup = lambda: orchestrator.cache.lookup(call.key, call.origin)
figures = {{}}
for _ in range(2):  # the second round is the one reported; the first warms up
    figures = {{
        "empty cell `pass` (run_cell), for scale": timed(lambda: ip.run_cell("pass", store_history=False), N),
        "cell printing one line (run_cell), for scale": timed(
            lambda: ip.run_cell("print('x')", store_history=False), N
        ),
        "cell, answer shown (run_cell)": timed(shown_cell, N),
        "cell, silenced with ; (run_cell)": timed(quiet_cell, N),
        "magic only (run_cell_magic)": timed(magic_only, N),
        "execute_agent hit (Python API)": timed(api_hit, N),
        "ResponseCache.lookup": timed(lookup, N),
    }}
assert r.cached
print("FIGURES" + json.dumps(figures))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["CLAUDE_FORCE_NB_HOME"] = home
        os.environ.pop("ANTHROPIC_API_KEY", None)
        nb = new_notebook(cells=[new_code_cell(KERNEL_CODE.format(cells=args.cells))])
        NotebookClient(nb, timeout=600, kernel_name="python3").execute()
    text = "".join(o.get("text", "") for o in nb.cells[0].outputs if o.output_type == "stream")
    figures = json.loads(text.split("FIGURES", 1)[1].splitlines()[0])
    base = figures["execute_agent hit (Python API)"]
    print(f"python {sys.version.split()[0]}, medians of {args.cells} cells in one ipykernel\n")
    print("| what | median | vs execute_agent hit |")
    print("|---|---|---|")
    for name, micros in figures.items():
        print(f"| {name} | {micros:.0f} µs | {micros / base:.2f}x |")
    print("\n" + json.dumps(figures))


if __name__ == "__main__":
    main()
