"""How one answer and a table of answers look, in each format and for each way an answer can end."""

import re

import pytest

from claude_force_nb import AgentResult
from claude_force_nb._render import Answer, footer, table_html, table_text
from claude_force_nb._request import Completion


def result(text="plain words", stop_reason="end_turn", blocks=None, **fields):
    content = blocks if blocks is not None else [{"type": "text", "text": text}]
    message = {"model": "claude-sonnet-4-6", "content": content, "stop_reason": stop_reason, "usage": {}}
    completion = Completion(message, 0.2, "req_1")
    return AgentResult(
        "explainer",
        True,
        output=completion.text,
        model="claude-sonnet-4-6",
        stop_reason=stop_reason,
        completion=completion,
        **fields,
    )


TWO_BLOCKS = "Try this:\n```python\nprint(1)\n```\nor this:\n```sql\nSELECT 1;\n```\n"


def test_code_format_shows_every_block_and_keeps_them_on_the_result():
    answer = result(TWO_BLOCKS)
    bundle = Answer(answer, "code")._repr_mimebundle_()
    assert "```python\nprint(1)\n```" in bundle["text/markdown"]
    assert "```sql\nSELECT 1;\n```" in bundle["text/markdown"]
    assert bundle["text/plain"].startswith("print(1)\n\nSELECT 1;")
    assert [(b.language, b.code) for b in answer.code_blocks] == [("python", "print(1)"), ("sql", "SELECT 1;")]


@pytest.mark.parametrize(
    ("text", "blocks"),
    [
        ("```python\nunclosed = 1\n", [("python", "unclosed = 1")]),
        ("````md\n```py\nx\n```\n````\nafter", [("md", "```py\nx\n```")]),
        ("~~~ {.python}\na\n~~~", [("python", "a")]),
        ("inline ```x``` is not a block", []),
        ("```\n\n  indented\n```", [("", "\n  indented")]),
    ],
)
def test_code_blocks_are_read_as_markdown_reads_them(text, blocks):
    assert [(b.language, b.code) for b in result(text).code_blocks] == blocks


@pytest.mark.parametrize("text", ['{"a": NaN}', "[Infinity]", "-Infinity"])
def test_nan_and_infinity_are_not_json(text):
    with pytest.raises(ValueError, match="not JSON"):
        result(text).json()


def test_json_format_renders_json_and_says_when_the_answer_is_not():
    bundle = Answer(result('Here:\n```json\n{"a": [1, 2]}\n```'), "json")._repr_mimebundle_()
    assert bundle["application/json"] == {"a": [1, 2]}
    assert bundle["text/markdown"].startswith('```json\n{\n  "a": [')
    assert "<small>" in bundle["text/markdown"]
    plain = Answer(result("no json here"), "json")._repr_mimebundle_()
    assert "application/json" not in plain
    assert "Note: the answer is not JSON, so it is shown as text." in plain["text/plain"]
    assert result('{"k": 1}').json() == {"k": 1}


def test_markdown_and_text_formats():
    assert set(Answer(result(), "markdown")._repr_mimebundle_()) == {"text/markdown", "text/plain"}
    assert set(Answer(result(), "text")._repr_mimebundle_()) == {"text/plain"}


def test_an_incomplete_answer_says_what_happened_and_what_helps():
    truncated = result("half an ans", stop_reason="max_tokens")
    assert truncated.success and truncated.status == "truncated" and not truncated.complete
    assert "truncated: it stopped at the max_tokens limit; raise --max-tokens" in footer(truncated)
    refused = result(blocks=[], stop_reason="refusal")
    assert (refused.status, refused.output) == ("refused", "")
    assert "declined to answer" in Answer(refused)._repr_mimebundle_()["text/plain"]
    tool = result(
        blocks=[{"type": "text", "text": "Let me look."}, {"type": "tool_use", "name": "f"}], stop_reason="tool_use"
    )
    assert tool.status == "tool use" and "call a tool" in footer(tool)
    assert result(stop_reason="pause_turn").status == "paused"
    assert result(stop_reason="end_turn", cached=True).status == "cached"


def test_thinking_shows_collapsed_above_the_answer():
    thinking = [{"type": "thinking", "thinking": "Step <1>", "signature": "s"}, {"type": "text", "text": "Answer."}]
    bundle = Answer(result(blocks=thinking))._repr_mimebundle_()
    markdown = bundle["text/markdown"]
    assert markdown.startswith("<details><summary>Thinking</summary>\n\nStep &lt;1&gt;\n\n</details>")
    assert markdown.index("</details>") < markdown.index("Answer.")
    assert bundle["text/plain"].startswith("[thinking: 8 characters; see .thinking]")
    redacted = [{"type": "redacted_thinking", "data": "x"}, {"type": "text", "text": "Answer."}]
    answer = result(blocks=redacted)
    assert answer.thinking[0].redacted
    assert "<summary>Thinking (redacted)</summary>" in Answer(answer)._repr_mimebundle_()["text/markdown"]


def test_a_tables_expanded_row_in_code_format_shows_every_block_and_only_code():
    html = table_html([result(TWO_BLOCKS), result("no code here")], "code")
    expanded = re.findall(r'<pre style="white-space:pre-wrap">(.*?)</pre>', html, re.S)
    assert expanded == ["print(1)\n\nSELECT 1;", "no code here"]  # every block, in order; prose only without any


def test_tables_show_statuses_and_answers_in_the_chosen_format():
    rows = [result('{"a": 1}'), result("cut", stop_reason="max_tokens")]
    html = table_html(rows, "json")
    assert "{\n  &quot;a&quot;: 1\n}" in html and 'class="cfnb-truncated"' in html
    assert "(truncated: it stopped at the max_tokens limit" in html
    assert "truncated" in table_text(rows)


def test_a_big_sweeps_table_shows_its_ends_and_every_failure_and_says_how_to_get_the_rest():
    rows = [result(f"answer {i} " + "words " * 150, item=i) for i in range(3000)]
    rows[1500] = AgentResult("explainer", False, error=ValueError("broke"), item=1500)
    html = table_html(rows, "markdown")
    shown_rows = re.findall(r"<tr class=\"cfnb-[a-z-]+\"><td[^>]*>(\d+)</td>", html)
    assert shown_rows == ["0", "1", "2", "3", "4", "1500", "2995", "2996", "2997", "2998", "2999"]
    assert html.count("more rows; .to_dataframe() (or [i]) has every one") == 2  # before and after the failure
    assert "1,495 more rows" in html and "1,494 more rows" in html
    assert len(html.encode()) < 40_000  # not the megabytes every answer would write
    text = table_text(rows)
    assert len(text.splitlines()) == 1 + 11 + 2 and "broke" in text


def test_a_table_up_to_sixty_rows_shows_them_all():
    rows = [result(f"answer {i}", item=i) for i in range(60)]
    assert "more rows" not in table_html(rows) and len(table_text(rows).splitlines()) == 61
