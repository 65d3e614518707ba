"""Running the model's code: shown, asked for, limited in time, and its errors handed back."""

from claude_force_nb._context.snippets import CANNOT_ASK, OFF_MAIN_THREAD, CannotAsk, Runner


def runner(**options):
    shown = []
    return Runner(show=shown.append, **options), shown


def test_a_snippet_runs_in_the_namespace_and_returns_what_it_printed_and_its_value():
    namespace = {"numbers": [3, 1, 2]}
    run, shown = runner(ask=False)
    result = run.run("print('sorting')\ntotal = sum(numbers)\nsorted(numbers)", namespace)
    assert result == "printed:\nsorting\n\nvalue: [1, 2, 3]"
    assert namespace["total"] == 6
    assert shown[0] == "Claude asks to run this in the kernel:\nprint('sorting')\ntotal = sum(numbers)\nsorted(numbers)"
    assert shown[1].startswith("It ran. Result:\nprinted:\nsorting")


def test_a_snippet_that_raises_returns_its_error_to_the_model():
    run, _ = runner(ask=False)
    assert run.run("1 / 0", {}) == "ZeroDivisionError: division by zero"
    assert run.run("def (", {}).startswith("SyntaxError:")


def test_a_snippet_that_hangs_is_ended_by_its_limit():
    run, _ = runner(ask=False, seconds=0.3)
    assert run.run("import time\nprint('waiting')\ntime.sleep(60)", {}) == (
        "printed:\nwaiting\n\nStopped: interrupted after its time limit of 0.3 s."
    )


def test_the_user_is_asked_and_a_denial_runs_nothing():
    namespace = {}
    asked = []
    run, shown = runner(confirm=lambda code: asked.append(code) or False)
    assert run.run("x = 1", namespace) == "The user declined to run this snippet."
    assert asked == ["x = 1"] and "x" not in namespace and shown[-1] == "Not run: the user declined."


def test_where_nobody_can_answer_the_snippet_is_refused_with_the_fix():
    def cannot(code):
        raise CannotAsk("no stdin")

    run, shown = runner(confirm=cannot)
    assert run.run("x = 1", {}) == CANNOT_ASK and "--allow-run=yes" in shown[-1]


def test_sys_exit_and_endless_printing_end_the_snippet_not_the_call():
    run, _ = runner(ask=False)
    assert run.run("import sys\nsys.exit(3)", {}) == "SystemExit: 3"
    printed = run.run("for _ in range(100):\n    print('x' * 100_000)", {})
    assert len(printed) < 4_000 and "more characters printed, not kept" in printed


def test_an_except_in_the_snippet_cannot_swallow_its_time_limit():
    run, _ = runner(ask=False, seconds=0.3)
    code = "import time\nwhile True:\n    try:\n        time.sleep(10)\n    except Exception:\n        pass"
    assert run.run(code, {}) == "Stopped: interrupted after its time limit of 0.3 s."


def test_off_the_main_thread_a_snippet_is_refused():
    import threading

    run, _ = runner(ask=False)
    namespace = {}
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(run.run("x = 1", namespace)))
    worker.start()
    worker.join(10)
    assert outcome == [OFF_MAIN_THREAD] and namespace == {}


def test_control_characters_in_a_snippet_are_shown_escaped_where_they_could_hide_code():
    run, shown = runner(confirm=lambda code: False)
    run.run("x = 1\r\x1b[2Kprint('harmless')", {})
    assert shown[0] == "Claude asks to run this in the kernel:\nx = 1\\x0d\\x1b[2Kprint('harmless')"
