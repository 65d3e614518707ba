"""Scoring a sweep's answers as they arrive: checks run at once, a grade is one more call through the pipeline.

Grader calls are ordinary calls: prepared by the orchestrator, looked up in
the cache, paced, budgeted and counted like the answers they grade. Live, an
answer's grade is asked as soon as the answer is in. Through Message
Batches, the grades wait for every answer of the sweep and go out as one
more batch (:class:`Round`).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence

from .._call import PreparedCall
from .._request import Completion
from .._results import AgentResult, Score
from .._sweep import Runner, Slot
from .check import Check
from .grade import Grade

# Prepares a grader call from its task, the grade (its rubric and model) and the cache mode of what it grades.
PrepareGrade = Callable[[str, Grade, "str | None"], PreparedCall]
# Answers one grader call (cache or API).
AnswerGrade = Callable[[PreparedCall, "Slot | None"], Awaitable[AgentResult]]
# Answers many grader calls at once (one Message Batch).
AnswerGrades = Callable[[list[PreparedCall]], Awaitable[list[AgentResult]]]

NO_ANSWER = "no answer to score"


@dataclasses.dataclass(frozen=True)
class Scoring:
    """An evaluation's scorers: ``checks`` and an optional ``grade``; ``prepare`` makes grader calls."""

    checks: tuple[Check, ...]
    grade: Grade | None
    prepare: PrepareGrade

    @property
    def names(self) -> list[str]:
        return [check.name for check in self.checks] + ([self.grade.name] if self.grade is not None else [])

    def grader_call(self, result: AgentResult, mode: str | None = None) -> PreparedCall | None:
        """The call that grades ``result`` (answered in cache ``mode``); None without a grade or an answer.

        Raises for a reference the item lacks. A refreshed answer's grade is not refreshed: a new answer
        is a new grader request, and the same answer needs no second grade.
        """
        if self.grade is None or not result.success:
            return None
        return self.prepare(self.grade.task(result), self.grade, None if mode == "refresh" else mode)

    def grader_calls(self, results: Sequence[AgentResult]) -> list[PreparedCall]:
        """The grader calls ``results`` need, for an estimate; an answer that cannot be graded is left out."""
        calls = []
        for result in results:
            try:
                call = self.grader_call(result)
            except Exception:  # a reference the item lacks: that grade fails, and costs nothing
                continue
            if call is not None:
                calls.append(call)
        return calls

    def scored(self, result: AgentResult, graded: AgentResult | None = None, error: str | None = None) -> AgentResult:
        """``result`` with its scores: the checks', then the grade's (``graded``, or ``error`` when it could not be)."""
        if not result.success:
            scores = [Score(name, None, None, error=NO_ANSWER) for name in self.names]
            return dataclasses.replace(result, scores=tuple(scores))
        scores = [check(result) for check in self.checks]
        if self.grade is not None:
            if graded is not None:
                scores.append(self.grade.verdict(graded))
            else:
                scores.append(Score(self.grade.name, None, None, error=error or "not graded"))
        return dataclasses.replace(result, scores=tuple(scores))

    def stand_ins(
        self,
        calls: Sequence[PreparedCall],
        cached: Callable[[PreparedCall], Completion | None],
        expected: Callable[[PreparedCall], int],
    ) -> tuple[list[PreparedCall], dict[int, int]]:
        """The grader calls ``calls`` would make, for an estimate, and the input tokens each lacks (by id).

        A cached answer's grade is the very call the sweep will make; an answer still to come is stood in
        for by an empty one, its ``expected`` output tokens added to the grade's prompt.
        """
        graders: list[PreparedCall] = []
        lacking: dict[int, int] = {}
        if self.grade is None:
            return graders, lacking
        for call in calls:
            answer = cached(call)
            result = AgentResult(call.agent, True, output=answer.text if answer else "", task=call.task, item=call.item)
            try:
                grader = self.grader_call(result, call.mode)
            except Exception:  # a reference the item lacks: that grade fails, and costs nothing
                continue
            if grader is None:
                continue
            if answer is None:
                # Unkeyed: stand-ins look alike (their answers are not known yet), but each will be its own call.
                grader = dataclasses.replace(grader, key=None)
                lacking[id(grader)] = expected(call)
            graders.append(grader)
        return graders, lacking

    async def score(
        self,
        result: AgentResult,
        answer: Callable[[PreparedCall], Awaitable[AgentResult]],
        mode: str | None = None,
    ) -> AgentResult:
        """``result`` scored, its grade asked through ``answer``; a scorer's failure is its error, never raised."""
        try:
            call = self.grader_call(result, mode)
        except Exception as exc:  # a reference the item lacks, a rubric that cannot be sent
            return self.scored(result, error=_said(exc))
        if call is None:
            return self.scored(result)
        return self.scored(result, await answer(call))

    def live(self, run: Runner, answer: AnswerGrade) -> Runner:
        """``run``, each answer then scored, its grade sent at once holding the answer's slot."""

        async def scored(call: PreparedCall, slot: Slot) -> AgentResult:
            result = await run(call, slot)
            return await self.score(result, lambda grader: answer(grader, slot), call.mode)

        return scored

    def after_all(self, run: Runner, calls: int, answer: AnswerGrades) -> Runner:
        """``run``, each answer then scored once all ``calls`` are in, their grades sent together."""
        together = Round(calls, answer)

        async def scored(call: PreparedCall, slot: Slot) -> AgentResult:
            try:
                result = await run(call, slot)
            except BaseException:
                together.leave()  # so that the others' grades are not held for an answer that will not come
                raise
            return await self._join(result, together, call.mode)

        return scored

    async def score_together(self, results: Sequence[AgentResult], answer: AnswerGrades) -> list[AgentResult]:
        """Every one of ``results`` scored, their grades sent together."""
        together = Round(len(results), answer)
        return list(await asyncio.gather(*(self._join(result, together) for result in results)))

    async def _join(self, result: AgentResult, together: Round, mode: str | None = None) -> AgentResult:
        try:
            grader = self.grader_call(result, mode)
        except Exception as exc:  # a reference the item lacks: this answer joins the round with nothing to grade
            await together.join(None)
            return self.scored(result, error=_said(exc))
        try:
            graded = await together.join(grader)
        except Exception as exc:  # the grading batch itself failed
            return self.scored(result, error=_said(exc))
        return self.scored(result, graded)


class Round:
    """Grader calls gathered from ``expected`` answers, sent together once the last has joined.

    A call that ends without an answer leaves the round, which then waits for one fewer; once every
    waiter has been cancelled, so is the round's batch, as a sweep's own batches are.
    """

    def __init__(self, expected: int, answer: AnswerGrades):
        self._expected = expected
        self._answer = answer
        self._joined: list[PreparedCall | None] = []
        self._waiting = 0
        self._results: asyncio.Future[list[AgentResult | None]] | None = None
        self._sending: asyncio.Task[None] | None = None  # held, so the task is not collected mid-flight

    async def join(self, call: PreparedCall | None) -> AgentResult | None:
        """Wait for the round, then the answer to ``call`` (None for None)."""
        results = self._future()
        index = len(self._joined)
        self._joined.append(call)
        self._start_when_full()
        self._waiting += 1
        try:
            # Shielded: one waiter cancelled must not cancel the round the others wait for.
            answered = await asyncio.shield(results)
        except asyncio.CancelledError:
            self._waiting -= 1
            if not self._waiting and self._sending is not None:
                self._sending.cancel()  # nobody is left to read the grades
            raise
        self._waiting -= 1
        return answered[index]

    def leave(self) -> None:
        """Count a call that will never join (it ended without an answer)."""
        self._future()
        self._joined.append(None)
        self._start_when_full()

    def _future(self) -> asyncio.Future[list[AgentResult | None]]:
        if self._results is None:
            self._results = asyncio.get_running_loop().create_future()
        return self._results

    def _start_when_full(self) -> None:
        if len(self._joined) == self._expected and self._sending is None:
            assert self._results is not None
            self._sending = asyncio.ensure_future(self._send(self._results))

    async def _send(self, done: asyncio.Future[list[AgentResult | None]]) -> None:
        calls = [call for call in self._joined if call is not None]
        try:
            answered = iter(await self._answer(calls) if calls else [])
            results = [next(answered) if call is not None else None for call in self._joined]
        except asyncio.CancelledError:
            done.cancel()
            raise
        except Exception as exc:  # the grading batch failed: each waiter's grade is a scorer error
            if not done.done():
                done.set_exception(exc)
            return
        if not done.done():
            done.set_result(results)


def _said(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def scorers(grade: Grade | None, checks: Sequence[Check]) -> tuple[Check, ...]:
    """``checks`` named apart from each other and the grade; ValueError for two of one name."""
    names = [check.name for check in checks] + ([grade.name] if grade is not None else [])
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"Two scorers are named {twice[0]!r}; give each check and the grade its own name.")
    return tuple(checks)
