"""Where the magics' coroutines run: the running loop, or the worker loop in its own thread."""

import asyncio
import threading

from claude_force_nb._notebook import loop as _loop


async def test_calls_from_another_thread_are_delivered_on_this_loop_and_coalesced():
    seen = []
    wrapper = _loop.on_this_loop(lambda value: seen.append((value, threading.get_ident())))
    wrapper("direct")  # from this loop's own thread: at once
    sender = threading.Thread(target=lambda: [wrapper(i) for i in range(100)])
    sender.start()
    sender.join()  # this loop could not run meanwhile, so the hundred calls became one
    for _ in range(100):
        if len(seen) == 2:
            break
        await asyncio.sleep(0.01)
    assert seen == [("direct", threading.get_ident()), (99, threading.get_ident())]


def test_without_a_running_loop_coroutines_run_on_the_worker():
    async def where():
        return threading.current_thread().name

    assert _loop.run(where()) == "claude-force-nb-loop"
    assert _loop.in_worker(where()).result(10) == "claude-force-nb-loop"
