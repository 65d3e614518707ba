"""Helpers for tests that run notebooks in real kernels (nbclient): build, run and read them."""

import asyncio

from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook


def notebook(*sources):
    return new_notebook(cells=[new_code_cell(s) for s in sources])


def text_of(cell):
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("display_data", "execute_result"):
            parts.append(out.data.get("text/plain", ""))
        elif out.output_type == "error":
            parts.append(f"{out.ename}: {out.evalue}")
    return "".join(parts)


def kernel_client(nb, tmp_path, **options):
    """A client that runs ``nb`` in a fresh kernel whose working directory is ``tmp_path``."""
    return NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}, **options
    )


def run(nb, tmp_path, **options):
    kernel_client(nb, tmp_path, **options).execute()
    return nb


async def interrupt_when(client, nb, index, condition):
    """Run cell ``index``, interrupt the kernel once ``condition`` (an awaitable) is met, and let the cell end."""
    running = asyncio.ensure_future(client.async_execute_cell(nb.cells[index], index))
    await condition
    await client.km.interrupt_kernel()
    await running


def messages(server):
    return [r for r in server.log if r.path == "/v1/messages"]


def answered(server):
    return sum(r.status == 200 for r in messages(server))
