"""A grader that reads: a grading request's answer is scored by how many of the rubric's terms it holds.

The grader agent asks for ``{score, passed, reason}`` (a schema titled
"Grade") about the answer between ``<answer>`` tags, against the rubric
between ``<rubric>`` tags in its system prompt. Played here, the score is the
share of the rubric's terms (its distinct words of five letters or more,
common ones aside; the reference answer's, when there is one) that the
answer holds as words, on 0 to 10 rounded half up; it passes from 7. It
depends on the answer's content alone, so tests can work out every
aggregate exactly.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from . import _conversation

PASS_MARK = 7
TERM = re.compile(r"[a-z]{5,}")
COMMON = frozenset(
    {
        "about",
        "answer",
        "being",
        "every",
        "other",
        "should",
        "their",
        "there",
        "these",
        "those",
        "where",
        "which",
        "would",
    }
)


def is_grading(schema: Mapping[str, Any]) -> bool:
    """Whether ``schema`` is the grader's: titled "Grade", with score, passed and reason."""
    properties = schema.get("properties")
    return (
        schema.get("title") == "Grade"
        and isinstance(properties, dict)
        and set(properties)
        == {
            "score",
            "passed",
            "reason",
        }
    )


def terms(text: str) -> list[str]:
    """The words a grade looks for: distinct, lower-case, five letters or more, common ones aside."""
    return sorted(set(TERM.findall(text.lower())) - COMMON)


def grade(rubric: str, answer: str, reference: str | None = None) -> dict[str, Any]:
    """The grade of ``answer``: the share of the reference's terms (else the rubric's) it holds, 0 to 10."""
    wanted = terms(reference if reference is not None else rubric)
    held = set(TERM.findall(answer.lower()))
    found = [term for term in wanted if term in held]
    score = math.floor(10 * len(found) / len(wanted) + 0.5) if wanted else 0
    missing = [term for term in wanted if term not in held]
    source = "reference" if reference is not None else "rubric"
    reason = f"Holds {len(found)} of the {len(wanted)} {source} terms"
    reason += f"; missing {', '.join(missing[:3])}." if missing else "."
    return {"score": score, "passed": score >= PASS_MARK, "reason": reason}


def graded_text(body: Mapping[str, Any]) -> str:
    """The grader's JSON reply to a grading request."""
    system = body.get("system")
    if isinstance(system, list):
        system = " ".join(b.get("text", "") for b in system if isinstance(b, dict))
    tasks = _conversation.tasks(body["messages"])
    task = tasks[-1] if tasks else ""
    return json.dumps(
        grade(_between(str(system or ""), "rubric") or "", _between(task, "answer") or "", _between(task, "reference"))
    )


def _between(text: str, tag: str) -> str | None:
    found = re.search(rf"<{tag}>\n?(.*?)\n?</{tag}>", text, re.DOTALL)
    return found.group(1) if found else None
