"""Interrupting a blocking sweep in a real kernel keeps, and caches, the calls that finished."""

import asyncio

import pytest
from kernels import interrupt_when, kernel_client, messages, notebook, text_of

pytestmark = pytest.mark.timeout(180)


def test_interrupt_keeps_and_caches_finished_calls(kernel_env, tmp_path, until, figures):
    kernel_env.latency = 0.3
    nb = notebook(
        "%load_ext claude_force_nb\nitems = list(range(12))",
        "%%agents explainer --over items -c 2 -o rs --no-panel\nItem {item}",
        "finished = [r.item for r in rs if r.success]\ncancelled = [r.item for r in rs if r.cancelled]\n"
        "print(len(finished), len(cancelled))",
        "%%agents explainer --over finished --replay -o again --no-panel\nItem {item}",
        "print(all(r.cached for r in again), len(again) == len(finished))",
    )
    client = kernel_client(nb, tmp_path, allow_errors=True)

    async def three_finished():
        # Two calls at a time: a fifth request goes out only once three calls have finished.
        await until(lambda: len(messages(kernel_env)) >= 5)
        kernel_env.latency = 60  # what is sent from now on is still in flight at the interrupt

    async def drive():
        async with client.async_setup_kernel():
            await client.async_execute_cell(nb.cells[0], 0)
            await interrupt_when(client, nb, 1, three_finished())
            for index in (2, 3, 4):
                await client.async_execute_cell(nb.cells[index], index)

    asyncio.run(drive())
    sweep_text = text_of(nb.cells[1])
    assert "KeyboardInterrupt" in sweep_text and "cancelled" in sweep_text
    finished, cancelled = map(int, text_of(nb.cells[2]).split())
    figures(f"12 calls, 2 at a time, interrupted: {finished} finished and kept, {cancelled} cancelled")
    assert finished >= 3 and cancelled >= 1 and finished + cancelled == 12
    assert text_of(nb.cells[4]).strip() == "True True"
