"""Interrupting a blocking sweep in a real kernel keeps, and caches, the calls that finished."""

import asyncio

import pytest
from test_kernel import answered, interrupt_when, kernel_client, notebook, text_of

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

    async def drive():
        async with client.async_setup_kernel():
            await client.async_execute_cell(nb.cells[0], 0)
            await interrupt_when(client, nb, 1, until(lambda: answered(kernel_env) >= 3))
            for index in (2, 3, 4):
                await client.async_execute_cell(nb.cells[index], index)

    asyncio.run(drive())
    sweep_text = text_of(nb.cells[1])
    assert "KeyboardInterrupt" in sweep_text and "cancelled" in sweep_text
    finished, cancelled = map(int, text_of(nb.cells[2]).split())
    figures(f"12 calls, 2 at a time, interrupted: {finished} finished and kept, {cancelled} cancelled")
    # A response the server sent just before the interrupt may still be cancelled on the client.
    assert finished >= 1 and cancelled >= 1 and finished + cancelled == 12
    assert text_of(nb.cells[4]).strip() == "True True"
