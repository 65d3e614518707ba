import pytest

from claude_force_nb import AgentResult, Check


def answer(text="The answer.", item=None, parsed=None):
    return AgentResult("explainer", True, output=text, item=item, parsed=parsed)


def test_a_bool_is_pass_or_fail():
    def mentions(answer, item):
        return item in answer

    assert Check(mentions)(answer("about cats", "cats")) == _score("mentions", 1.0, True)
    assert Check(mentions)(answer("about dogs", "cats")) == _score("mentions", 0.0, False)


def test_a_number_is_a_score_passing_from_one_half():
    assert Check(lambda a, i: 0.5, name="half")(answer()).passed is True
    assert Check(lambda a, i: 0.25, name="low")(answer()) == _score("low", 0.25, False)


def test_a_dict_gives_score_passed_and_reason():
    check = Check(lambda a, i: {"score": 0.9, "reason": "close"}, name="d")
    assert check(answer()) == _score("d", 0.9, True, "close")
    assert Check(lambda a, i: {"passed": False}, name="p")(answer()) == _score("p", 0.0, False)


def test_an_assertion_is_a_fail_with_its_message():
    def short(answer, item):
        assert len(answer) < 5, "longer than five characters"

    assert Check(short)(answer()) == _score("short", 0.0, False, "longer than five characters")


def test_an_unexpected_exception_is_the_checks_error_never_raised():
    def broken(answer, item):
        raise KeyError("title")

    score = Check(broken)(answer())
    assert (score.score, score.passed, score.error) == (None, None, "KeyError: 'title'")


@pytest.mark.parametrize(
    ("value", "said"),
    [("yes", "returned str"), (1.5, "outside 0 to 1"), (float("nan"), "a number from 0 to 1"), ({"x": 1}, "use score")],
)
def test_a_return_value_that_means_nothing_is_an_error(value, said):
    score = Check(lambda a, i: value, name="odd")(answer())
    assert score.score is None and said in score.error


def test_a_schema_answer_is_checked_as_its_parsed_value():
    assert Check(lambda a, i: a["ok"], name="parsed")(answer('{"ok": true}', parsed={"ok": True})).passed is True


def _score(name, score, passed, reason=""):
    from claude_force_nb import Score

    return Score(name, score, passed, reason)


def test_numpys_bools_and_numbers_are_verdicts_too():
    import numpy as np

    assert Check(lambda a, i: np.isclose(1.0, 1.0), name="close")(answer()) == _score("close", 1.0, True)
    assert Check(lambda a, i: (np.arange(3) > 5).any(), name="any")(answer()).passed is False
    assert Check(lambda a, i: np.float32(0.75), name="f32")(answer()) == _score("f32", 0.75, True)
