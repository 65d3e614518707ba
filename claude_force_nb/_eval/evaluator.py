"""What an evaluation needs from the engine: its scorers built and checked, and grader calls prepared.

The orchestrator keeps one :class:`Evaluator` and hands it how to prepare a
call; grader calls are then prepared like any other, through the pipeline's
first step, with the grader agent's instructions and the rubric as their
system prompt and the grade schema as their answer's shape.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from .._agents import AgentRegistry
from .._call import PreparedCall
from .._models import resolve_model
from .._options import CallOptions
from .check import Check
from .grade import GRADE_SCHEMA, GRADER, Grade, Reference
from .scoring import Scoring, scorers

Checks = Sequence[Callable[[Any, Any], Any]]  # functions f(answer, item), or Check objects
Prepare = Callable[[str, str, CallOptions], PreparedCall]


class Evaluator:
    """Builds an evaluation's :class:`Scoring` from what the caller names, before anything is sent."""

    def __init__(self, agents: AgentRegistry, prepare: Prepare, default_model: str):
        self.agents = agents
        self._prepare = prepare
        self.default_model = default_model

    def scoring(
        self,
        grade: str | Grade | None = None,
        checks: Checks = (),
        grader_model: str | None = None,
        reference: Reference | None = None,
    ) -> Scoring | None:
        """The scorers, checked (an unknown grader model, two scorers of one name raise); None without any."""
        if isinstance(grade, str):
            grade = Grade(grade)
        if grade is None:
            if grader_model is not None or reference is not None:
                raise ValueError("grader_model= and reference= go with grade=; add a rubric.")
        else:
            self.agents.get(GRADER)  # an unknown grader fails here, not at the first answer
            model = grader_model or grade.model
            grade = dataclasses.replace(
                grade,
                model=resolve_model(model) if model else None,
                reference=reference if reference is not None else grade.reference,
            )
        found = scorers(grade, [check if isinstance(check, Check) else Check(check) for check in checks])
        if grade is None and not found:
            return None
        return Scoring(found, grade, self.prepare_grade)

    def grader_model(self, scoring: Scoring | None) -> set[str]:
        """The model a scoring's grades go to (for a budget's prices); nothing without a grade."""
        if scoring is None or scoring.grade is None:
            return set()
        return {scoring.grade.model or self.agents.get(GRADER).model or self.default_model}

    def prepare_grade(self, task: str, grade: Grade, mode: str | None) -> PreparedCall:
        """A grader call: the grader's instructions and the rubric as system prompt, the grade schema as shape."""
        system = grade.system(self.agents.get(GRADER).system_prompt)
        options = CallOptions(system=system, model=grade.model, schema=GRADE_SCHEMA, cache_mode=mode)
        return self._prepare(GRADER, task, options)
