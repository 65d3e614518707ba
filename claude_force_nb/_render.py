"""How results look in a notebook: one answer, or a table of many.

Every rendering carries a ``text/plain`` form too, so nbconvert, GitHub and
nbval see the same numbers as JupyterLab does.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

from ._context.workspace import READS
from ._results import AgentResult, scorer_names
from ._text import CodeBlock, printable

FORMATS = ("markdown", "text", "code", "json")
# Past this many rows a table shows its first and last EDGE_ROWS (pandas' display.max_rows and min_rows), so a
# sweep of thousands writes kilobytes into the notebook, not megabytes.
MAX_ROWS = 60
EDGE_ROWS = 5


def duration(seconds: float) -> str:
    """A short human duration: 42 µs, 3.1 ms, 1.25 s."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def money(dollars: float | None) -> str:
    """Dollars to four places, or "cost unknown" for a model without a price."""
    return "cost unknown" if dollars is None else f"${dollars:.4f}"


def footer(result: AgentResult) -> str:
    """One line: agent, model, tokens, cost, latency, cached or not; why an answer is incomplete."""
    if not result.success:
        return f"{result.agent_name} · {result.status} after {duration(result.latency)}"
    where = f"cached ({result.source}), saved {duration(result.original_latency)}" if result.cached else "live"
    line = (
        f"{result.agent_name} · {result.model} · {result.input_tokens} in / {result.output_tokens} out tokens"
        f" · {money(result.cost)} · {duration(result.latency)} · {where}"
    )
    if result.synthetic:
        line += " · synthetic (a local server, not Claude)"
    runs = result.tool_runs
    if runs:
        line += f" · {len(runs)} tool call{'s' if len(runs) != 1 else ''}"
    if result.cached and runs:
        reads = sum(run["name"] in READS for run in runs)
        if reads:
            line += f" · its {reads} read{'s' if reads != 1 else ''} of the kernel gave the same again"
        if reads < len(runs):
            others = "other tools" if reads else "tools"
            line += f" · its {others} were not run again (--refresh runs them)"
    return f"{line} · {result.status}: {result.hint}" if result.hint else line


def first_line(text: str, width: int = 80) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= width else line[: width - 1] + "…"


def error_line(result: AgentResult) -> str:
    return result.errors[0] if result.errors else result.status


def sendable(value: Any) -> Any:
    """A display bundle (or a part of it) whose strings a kernel message can carry: no lone surrogates."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {sendable(k): sendable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [sendable(v) for v in value]
    return value


class Answer:
    """One result, displayed in the chosen format with a footer (and its thinking, collapsed)."""

    def __init__(self, result: AgentResult, fmt: str = "markdown"):
        self.result = result
        self.format = fmt

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return sendable(self._bundle())

    def _bundle(self) -> dict[str, Any]:
        result = self.result
        if not result.success:
            message = f"{result.agent_name} {result.status}: {error_line(result)}"
            return {
                "text/plain": message,
                "text/html": f'<div class="cfnb-error"><b>{html.escape(result.agent_name)} '
                f"{result.status}</b>: {html.escape(error_line(result))}</div>",
            }
        foot, text = footer(result), result.output
        thought_md = thinking_markdown(result) + tools_markdown(result)
        thought_text = thinking_text(result) + tools_text(result)
        if self.format == "json":
            try:
                parsed = result.json()
            except ValueError:
                foot = f"Note: the answer is not JSON, so it is shown as text.\n{foot}"
            else:
                pretty = json.dumps(parsed, indent=2, ensure_ascii=False)
                # Front ends without a JSON viewer show the Markdown, footer included.
                return {
                    "application/json": parsed,
                    "text/markdown": f"{thought_md}```json\n{pretty}\n```\n\n<small>{html.escape(foot)}</small>",
                    "text/plain": f"{thought_text}{pretty}\n\n{foot}",
                }
        if self.format == "code":
            blocks = result.code_blocks or [CodeBlock("", text.strip())]
            fenced = "\n\n".join(f"```{b.language}\n{b.code}\n```" for b in blocks)
            plain = "\n\n".join(b.code for b in blocks)
            return {
                "text/markdown": f"{thought_md}{fenced}\n\n<small>{html.escape(foot)}</small>",
                "text/plain": f"{thought_text}{plain}\n\n{foot}",
            }
        if self.format in ("text", "json"):
            return {"text/plain": f"{thought_text}{text}\n\n{foot}"}
        return {
            "text/markdown": f"{thought_md}{text}\n\n<small>{html.escape(foot)}</small>",
            "text/plain": f"{thought_text}{text}\n\n{foot}",
        }


def tools_markdown(result: AgentResult) -> str:
    """Each tool call and its result, collapsed above the answer; "" without tool calls."""
    parts = []
    for run in result.tool_runs:
        outcome = "failed" if run["is_error"] else "returned"
        summary = html.escape(f"Tool call: {run['name']}({_arguments(run['input'])}) {outcome}")
        body = html.escape(_short_text(run["result"], 2000))
        parts.append(f"<details><summary>{summary}</summary>\n\n<pre>{body}</pre>\n\n</details>\n\n")
    return "".join(parts)


def tools_text(result: AgentResult) -> str:
    lines = [
        f"[tool] {run['name']}({_arguments(run['input'])}) -> {_short_text(run['result'], 200)}"
        for run in result.tool_runs
    ]
    return "\n".join(lines) + "\n\n" if lines else ""


def _arguments(arguments: Any) -> str:
    if not isinstance(arguments, dict):
        return ""
    return ", ".join(f"{name}={value!r}" for name, value in arguments.items())


def _short_text(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def thinking_markdown(result: AgentResult) -> str:
    """The thinking blocks, each collapsed above the answer; "" without thinking."""
    parts = []
    for thought in result.thinking:
        if thought.redacted:
            body = "The API redacted this reasoning; it stays, encrypted, in the result's completion."
            parts.append(f"<details><summary>Thinking (redacted)</summary>\n\n{body}\n\n</details>\n\n")
        else:
            parts.append(f"<details><summary>Thinking</summary>\n\n{html.escape(thought.text)}\n\n</details>\n\n")
    return "".join(parts)


def thinking_text(result: AgentResult) -> str:
    """One line saying the thinking is there (on ``result.thinking``); "" without thinking."""
    thoughts = result.thinking
    if not thoughts:
        return ""
    redacted = sum(t.redacted for t in thoughts)
    size = sum(len(t.text) for t in thoughts)
    parts = [f"{size:,} characters" if size else "", f"{redacted} block(s) redacted" if redacted else ""]
    return f"[thinking: {', '.join(p for p in parts if p)}; see .thinking]\n\n"


def table_text(results: Sequence[AgentResult]) -> str:
    """A fixed-width table for text/plain; a model column when the calls used more than one model.

    A long one shows what a long DataFrame does (see :func:`shown`).
    """
    with_model = len({r.model for r in results}) > 1
    scorers = scorer_names(results)
    head = ["#", "agent", "input", *(["model"] if with_model else []), "status", "latency", *scorers]
    rows: list[tuple[list[str], str]] = [(head, "answer")]
    for i, hidden in _rows(results):
        if hidden:
            rows.append((["…", *[""] * (len(head) - 1)], _hidden_line(hidden)))
            continue
        r = results[i]
        model = [r.model] if with_model else []
        cells = [str(i), r.agent_name, _short(r.item, 24), *model, r.status, duration(r.latency)]
        cells += [score_cell(r, name) for name in scorers]
        rows.append((cells, first_line(r.output, 50) if r.success else first_line(error_line(r), 50)))
    widths = [max(len(cells[c]) for cells, _ in rows) for c in range(len(head))]
    # The answer goes last and unpadded: it is the widest and most varied column.
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)) + "  " + answer
        for cells, answer in rows
    )


def table_html(results: Sequence[AgentResult], fmt: str = "markdown") -> str:
    """An HTML table whose rows expand to the full answer, shown in ``fmt``; a long one as :func:`shown` says."""
    scorers = scorer_names(results)
    heads = ("#", "agent", "input", "model", "status", "latency", *scorers, "answer")
    head = "".join(f'<th style="{_LEFT}">{html.escape(h)}</th>' for h in heads)
    body = []
    for i, hidden in _rows(results):
        if hidden:
            line = _hidden_line(hidden)
            body.append(
                f'<tr class="cfnb-hidden"><td>…</td><td colspan="{len(heads) - 1}" style="{_LEFT}">{line}</td></tr>'
            )
            continue
        r = results[i]
        summary = first_line(r.output) if r.success else error_line(r)
        scores = "".join(
            f'<td class="cfnb-score" style="{_NUMBER}" title="{html.escape(_score_reason(r, name))}">'
            f"{score_cell(r, name)}</td>"
            for name in scorers
        )
        body.append(
            f'<tr class="cfnb-{r.status.replace(" ", "-")}"><td style="{_NUMBER}">{i}</td>'
            f'<td style="{_LEFT}">{html.escape(r.agent_name)}</td>'
            f'<td style="{_LEFT}">{html.escape(_short(r.item, 40))}</td><td style="{_LEFT}">{html.escape(r.model)}</td>'
            f'<td style="{_LEFT}">{r.status}</td><td style="{_NUMBER}">{duration(r.latency)}</td>{scores}'
            f'<td style="{_LEFT}"><details><summary>{html.escape(summary)}</summary>'
            f'<pre style="white-space:pre-wrap">{html.escape(_detail(r, fmt))}</pre></details></td></tr>'
        )
    return f'<table class="cfnb-results"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


# JupyterLab right-aligns table cells; text reads from the left, and a number never wraps ("350.2 ms").
_LEFT = "text-align:left"
_NUMBER = "text-align:right;white-space:nowrap"


def score_cell(result: AgentResult, scorer: str) -> str:
    """One answer's score by ``scorer``: "0.70 pass", "0.30 fail", "error" or empty when it has none."""
    score = next((s for s in result.scores if s.scorer == scorer), None)
    if score is None:
        return ""
    if score.error is not None:
        return "error"
    verdict = "" if score.passed is None else " pass" if score.passed else " fail"
    return f"{score.score:.2f}{verdict}" if score.score is not None else verdict.strip()


def _score_reason(result: AgentResult, scorer: str) -> str:
    score = next((s for s in result.scores if s.scorer == scorer), None)
    return "" if score is None else score.error or score.reason


def shown(results: Sequence[AgentResult]) -> list[int]:
    """The rows a table shows: every one of up to ``MAX_ROWS``; past that, as pandas shows a long DataFrame,
    the first and last ``EDGE_ROWS``, and every failed row, which is never hidden."""
    if len(results) <= MAX_ROWS:
        return list(range(len(results)))
    edges = {*range(EDGE_ROWS), *range(len(results) - EDGE_ROWS, len(results))}
    return sorted(edges | {i for i, r in enumerate(results) if not r.success})


def _rows(results: Sequence[AgentResult]) -> list[tuple[int, int]]:
    """(index, 0) for each row shown, and (index, how many) for each run of hidden rows before it."""
    rows, last = [], -1
    for i in shown(results):
        if i > last + 1:
            rows.append((i, i - last - 1))
        rows.append((i, 0))
        last = i
    return rows


def _hidden_line(count: int) -> str:
    return f"{count:,} more rows; .to_dataframe() (or [i]) has every one"


def _detail(result: AgentResult, fmt: str) -> str:
    """A row's full answer in the chosen format: JSON pretty-printed, code blocks alone."""
    if not result.success:
        return error_line(result)
    text = result.output
    if fmt == "json":
        try:
            text = json.dumps(result.json(), indent=2)
        except ValueError:
            text = f"(not JSON) {text}"
    elif fmt == "code" and result.code_blocks:
        text = "\n\n".join(block.code for block in result.code_blocks)
    return f"{text}\n\n({result.status}: {result.hint})" if result.hint else text


def _short(value: Any, width: int) -> str:
    if value is None:
        return ""
    text = " ".join(str(value).split())
    return text if len(text) <= width else text[: width - 1] + "…"
