"""How results look in a notebook: one answer, or a table of many.

Every rendering carries a ``text/plain`` form too, so nbconvert, GitHub and
nbval see the same numbers as JupyterLab does.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from typing import Any

from .._results import AgentResult

FORMATS = ("markdown", "text", "code", "json")
_FENCE = re.compile(r"```([\w+-]*)[^\n]*\n(.*?)```", re.S)


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
    """One line: agent, model, tokens, cost, latency, cached or not."""
    if not result.success:
        return f"{result.agent_name} · {result.status} after {duration(result.latency)}"
    where = f"cached ({result.source}), saved {duration(result.original_latency)}" if result.cached else "live"
    return (
        f"{result.agent_name} · {result.model} · {result.input_tokens} in / {result.output_tokens} out tokens"
        f" · {money(result.cost)} · {duration(result.latency)} · {where}"
    )


def first_line(text: str, width: int = 80) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= width else line[: width - 1] + "…"


def error_line(result: AgentResult) -> str:
    return result.errors[0] if result.errors else result.status


class Answer:
    """One result, displayed in the chosen format with a footer."""

    def __init__(self, result: AgentResult, fmt: str = "markdown"):
        self.result = result
        self.format = fmt

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        result, foot = self.result, footer(self.result)
        if not result.success:
            message = f"{result.agent_name} {result.status}: {error_line(result)}"
            return {
                "text/plain": message,
                "text/html": f'<div class="cfnb-error"><b>{html.escape(result.agent_name)} '
                f"{result.status}</b>: {html.escape(error_line(result))}</div>",
            }
        text = result.output
        if self.format == "json":
            parsed = parse_json(text)
            if parsed is not None:
                return {"application/json": parsed, "text/plain": json.dumps(parsed, indent=2) + "\n\n" + foot}
        if self.format == "code":
            language, code = extract_code(text)
            return {
                "text/markdown": f"```{language}\n{code}\n```\n\n<small>{html.escape(foot)}</small>",
                "text/plain": f"{code}\n\n{foot}",
            }
        if self.format == "text" or self.format == "json":
            return {"text/plain": f"{text}\n\n{foot}"}
        return {"text/markdown": f"{text}\n\n<small>{html.escape(foot)}</small>", "text/plain": f"{text}\n\n{foot}"}


def extract_code(text: str) -> tuple[str, str]:
    """(language, code) of the first fenced block, else the whole text."""
    match = _FENCE.search(text)
    if match:
        return match.group(1), match.group(2).rstrip("\n")
    return "", text.strip()


def parse_json(text: str) -> Any:
    """The JSON value in ``text`` (bare or fenced), or None."""
    for candidate in (text, extract_code(text)[1]):
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    return None


def table_text(results: Sequence[AgentResult]) -> str:
    """A fixed-width table for text/plain; a model column when the calls used more than one model."""
    with_model = len({r.model for r in results}) > 1
    head = ["#", "agent", "input", *(["model"] if with_model else []), "status", "latency"]
    rows: list[tuple[list[str], str]] = [(head, "answer")]
    for i, r in enumerate(results):
        model = [r.model] if with_model else []
        cells = [str(i), r.agent_name, _short(r.item, 24), *model, r.status, duration(r.latency)]
        rows.append((cells, first_line(r.output, 50) if r.success else first_line(error_line(r), 50)))
    widths = [max(len(cells[c]) for cells, _ in rows) for c in range(len(head))]
    # The answer goes last and unpadded: it is the widest and most varied column.
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)) + "  " + answer
        for cells, answer in rows
    )


def table_html(results: Sequence[AgentResult], fmt: str = "markdown") -> str:
    """An HTML table whose rows expand to the full answer."""
    head = "".join(f"<th>{h}</th>" for h in ("#", "agent", "input", "model", "status", "latency", "answer"))
    body = []
    for i, r in enumerate(results):
        summary = first_line(r.output) if r.success else error_line(r)
        full = html.escape(r.output if r.success else error_line(r))
        body.append(
            f'<tr class="cfnb-{r.status}"><td>{i}</td><td>{html.escape(r.agent_name)}</td>'
            f"<td>{html.escape(_short(r.item, 40))}</td><td>{html.escape(r.model)}</td><td>{r.status}</td>"
            f"<td>{duration(r.latency)}</td><td><details><summary>{html.escape(summary)}</summary>"
            f'<pre style="white-space:pre-wrap">{full}</pre></details></td></tr>'
        )
    return f'<table class="cfnb-results"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _short(value: Any, width: int) -> str:
    if value is None:
        return ""
    text = " ".join(str(value).split())
    return text if len(text) <= width else text[: width - 1] + "…"
