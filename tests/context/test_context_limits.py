"""The time limit: code that does not return is interrupted, on the main thread and off it."""

import threading
import time

import pytest

from claude_force_nb._context.limits import TimeLimit, limited


def test_a_sleep_on_the_main_thread_is_interrupted():
    start = time.monotonic()
    with pytest.raises(TimeLimit, match=r"time limit of 0\.2 s"):
        limited(lambda: time.sleep(30), 0.2)
    assert time.monotonic() - start < 10


def test_a_busy_loop_off_the_main_thread_is_interrupted():
    outcome = []

    def spin():
        while True:
            pass

    def run():
        try:
            limited(spin, 0.2)
        except TimeLimit as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(20)
    assert len(outcome) == 1


def test_what_returns_in_time_comes_back_and_errors_keep_their_type():
    assert limited(lambda: 42, 5) == 42

    def fails():
        raise KeyError("missing")

    with pytest.raises(KeyError):
        limited(fails, 5)


def test_limits_nest_and_an_outer_one_ends_the_inner_code_too():
    import signal

    before = signal.getitimer(signal.ITIMER_REAL)[0]  # pytest-timeout's own alarm, if it set one

    def inner_sleeps():
        return limited(lambda: time.sleep(30), 20)

    start = time.monotonic()
    with pytest.raises(TimeLimit, match=r"of 0\.3 s"):
        limited(inner_sleeps, 0.3)
    assert time.monotonic() - start < 10
    assert limited(lambda: limited(lambda: 5, 0.5), 5) == 5
    with pytest.raises(TimeLimit, match=r"of 0\.2 s"):
        limited(lambda: limited(lambda: time.sleep(30), 0.2), 20)
    left = signal.getitimer(signal.ITIMER_REAL)[0]
    assert (left == 0) if not before else (0 < left <= before)  # an earlier alarm is put back, less the time spent


def test_code_that_catches_exception_is_still_stopped():
    def stubborn():
        while True:
            try:
                time.sleep(10)
            except Exception:
                pass

    with pytest.raises(TimeLimit):
        limited(stubborn, 0.2)
