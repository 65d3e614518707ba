"""A model-graded score: the built-in grader agent reads the task, the answer and a rubric, and answers a Grade.

The grader replies through structured output with ``{score, passed, reason}``:
``score`` a whole number from 0 (misses the rubric) to 10 (meets all of it),
7 the pass mark; ``passed`` its verdict; ``reason`` one sentence. Scores are
kept divided by 10, on the 0-1 scale every scorer shares.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .._results import AgentResult, Score

GRADER = "grader"
SCALE = 10
PASS_MARK = 7
GRADE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Grade",
    "properties": {
        "score": {
            "type": "integer",
            "enum": list(range(SCALE + 1)),
            "description": f"0 misses the rubric, {PASS_MARK} meets its essentials (the pass mark), {SCALE} all of it",
        },
        "passed": {"type": "boolean", "description": f"true exactly when score is {PASS_MARK} or more"},
        "reason": {"type": "string", "description": "one sentence naming what decided the score"},
    },
    "required": ["score", "passed", "reason"],
    "additionalProperties": False,
}

# Where a reference answer comes from: a column or key of the item, or a function of it.
Reference = str | Callable[[Any], Any]


@dataclass(frozen=True)
class Grade:
    """Grade each answer against ``rubric`` with the grader agent, on ``model`` (None: the orchestrator's).

    ``name`` labels the scores; ``reference`` (a column or key of each item,
    or a function of it) gives the grader a reference answer.
    """

    rubric: str
    name: str = "grade"
    model: str | None = None
    reference: Reference | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.rubric, str) or not self.rubric.strip():
            raise ValueError("A rubric must be a non-empty string: say what a good answer does.")

    def system(self, instructions: str) -> str:
        """The grader's system prompt: its instructions, then the rubric (shared by every grade, so cached once)."""
        return f"{instructions}\n\n<rubric>\n{self.rubric.strip()}\n</rubric>"

    def task(self, result: AgentResult) -> str:
        """What the grader is asked about one answer: the task as put, the answer, and the reference if any."""
        parts = [f"<task>\n{result.task}\n</task>", f"<answer>\n{result.output}\n</answer>"]
        if self.reference is not None:
            parts.append(f"<reference>\n{reference_of(self.reference, result.item)}\n</reference>")
        parts.append("Grade the answer against the rubric.")
        return "\n\n".join(parts)

    def verdict(self, graded: AgentResult) -> Score:
        """The score a grader's result gives; a failed grader call is a scorer error, with what it cost."""
        if not graded.success:
            why = graded.errors[0] if graded.errors else graded.status
            return Score(self.name, None, None, error=f"grader call {graded.status}: {_line(why)}", **_spent(graded))
        parsed = graded.parsed if isinstance(graded.parsed, Mapping) else {}
        score = parsed.get("score")
        if not isinstance(score, int) or isinstance(score, bool):
            return Score(self.name, None, None, error="the grader gave no score", **_spent(graded))
        return Score(
            self.name, score / SCALE, bool(parsed.get("passed")), str(parsed.get("reason", "")), **_spent(graded)
        )


def reference_of(reference: Reference, item: Any) -> Any:
    """The reference answer for ``item``: ``reference(item)``, or the item's column or key of that name."""
    if callable(reference):
        return reference(item)
    try:
        return item[reference]
    except (KeyError, IndexError, TypeError):
        pass
    if hasattr(item, reference):
        return getattr(item, reference)
    raise KeyError(f"no reference {reference!r} in the item {_line(repr(item))}")


def _line(text: str, width: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _spent(graded: AgentResult) -> dict[str, Any]:
    # What the grade cost when it was made, as answers' costs are counted.
    return {"cost": graded.original_cost, "latency": graded.original_latency or graded.latency}
