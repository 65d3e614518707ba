"""The results of a sweep: a list that also indexes by agent and input."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, overload

from ._eval import analysis
from ._eval.stats import EXTRA, LEVEL
from ._render import sendable, table_html, table_text
from ._results import AgentResult

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = (
    "agent",
    "input",
    "model",
    "status",
    "stop_reason",
    "success",
    "cached",
    "latency",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost",
    "request_id",
    "output",
    "error",
)


class Rescorer(Protocol):
    """What :meth:`Results.rescore` asks to score answers again: the orchestrator that made them."""

    async def rescore(
        self,
        results: Sequence[AgentResult],
        *,
        grade: Any = ...,
        checks: Sequence[Callable[[Any, Any], Any]] = ...,
        grader_model: str | None = ...,
        reference: Any = ...,
        batch: bool = ...,
    ) -> Results: ...


class Results(Sequence[AgentResult]):
    """Results in call order.

    ``results[0]`` is the first call; ``results["code-reviewer"]`` the one
    result of that agent (or a ``Results`` of all of them when there are
    several); ``results["code-reviewer", item]`` the call for that input.
    A scored sweep adds ``scores``, ``summary()``, ``compare()``, ``plot()``,
    ``require()`` and ``rescore()``.
    """

    def __init__(self, results: Sequence[AgentResult], *, fmt: str = "markdown", engine: Rescorer | None = None):
        self._results = list(results)
        self.format = fmt  # how the table's expanded answers are shown: markdown, text, code or json
        self.engine = engine  # what rescore() grades with: the orchestrator that made these results

    @overload
    def __getitem__(self, key: int) -> AgentResult: ...
    @overload
    def __getitem__(self, key: slice) -> Results: ...
    @overload
    def __getitem__(self, key: str | tuple) -> AgentResult | Results: ...

    def __getitem__(self, key: Any) -> AgentResult | Results:
        if isinstance(key, slice):
            return self._like(self._results[key])
        if isinstance(key, int):
            return self._results[key]
        if isinstance(key, tuple):
            matches = [r for r in self._results if _matches(r, key)]
        else:
            matches = [r for r in self._results if r.agent_name == key or _same(r.item, key)]
        if not matches:
            raise KeyError(key)
        return matches[0] if len(matches) == 1 else self._like(matches)

    def __len__(self) -> int:
        return len(self._results)

    def __iter__(self) -> Iterator[AgentResult]:
        return iter(self._results)

    @property
    def outputs(self) -> list[str]:
        return [r.output for r in self._results]

    @property
    def succeeded(self) -> Results:
        return self._like([r for r in self._results if r.success])

    @property
    def failed(self) -> Results:
        return self._like([r for r in self._results if not r.success])

    def _like(self, results: Sequence[AgentResult]) -> Results:
        return Results(results, fmt=self.format, engine=self.engine)

    # -- evaluation ----------------------------------------------------------------------------------

    @property
    def scores(self) -> pd.DataFrame:
        """One row per answer and scorer (needs pandas): agent, model, item, sample, scorer, score (0 to 1),
        passed, reason, error, and the answer's cost and latency when it was made, and the scorer's cost."""
        return _frame(analysis.score_records(self._results), analysis.SCORE_COLUMNS)

    def summary(self, *, level: float = LEVEL) -> pd.DataFrame:
        """Per agent, model and scorer (needs pandas): mean score with its ``level`` confidence interval,
        pass rate, scorer errors, cost per item and median latency.

        The interval is a percentile bootstrap over items that keeps each item's samples together (a
        cluster bootstrap), so repeated samples of one item are not taken as independent evidence.
        """
        return _frame(analysis.summary_records(self._results, level=level), analysis.SUMMARY_COLUMNS)

    def compare(self, a: str | tuple[str, str], b: str | tuple[str, str], *, level: float = LEVEL) -> pd.DataFrame:
        """``a`` minus ``b`` per scorer, paired on the items both answered, with a bootstrap interval over
        items (needs pandas). ``a`` and ``b`` name agents, models or ``(agent, model)`` cells."""
        return _frame(analysis.compare_records(self._results, a, b, level=level), analysis.COMPARE_COLUMNS)

    def require(
        self, *, min_score: float | None = None, min_pass_rate: float | None = None, scorer: str | None = None
    ) -> Results:
        """Raise :class:`QualityGateError`, listing each agent × model cell below the bar (or with answers
        not scored); return these results otherwise. Works on replayed answers and grades alike."""
        analysis.require(self._results, min_score=min_score, min_pass_rate=min_pass_rate, scorer=scorer)
        return self

    async def rescore(
        self,
        *,
        grade: Any = None,
        checks: Sequence[Callable[[Any, Any], Any]] = (),
        grader_model: str | None = None,
        reference: Any = None,
        batch: bool = False,
    ) -> Results:
        """These answers scored again by ``grade`` and ``checks`` (the old scores are replaced): nothing is
        generated again, and a grade already made comes from the cache. ``await`` it."""
        if self.engine is None:
            raise ValueError(
                "These results do not know the orchestrator that made them: "
                "use await orchestrator.rescore(results, ...) instead."
            )
        rescored = await self.engine.rescore(
            self._results, grade=grade, checks=checks, grader_model=grader_model, reference=reference, batch=batch
        )
        rescored.format = self.format
        return rescored

    def plot(self, scorer: str | None = None) -> Any:
        """A figure (needs matplotlib): mean score per agent × model with its interval, and cost per item
        against mean score, which shows the cheapest configuration that is good enough."""
        from ._eval.plot import plot

        return plot(self._results, scorer=scorer)

    def to_records(self) -> list[dict[str, Any]]:
        """One plain dict per result, with the columns of :meth:`to_dataframe`.

        Answers read with a schema add one column per field (a field whose name
        is taken gets an ``answer.`` prefix).
        """
        records = [
            {
                "agent": r.agent_name,
                "input": r.item,
                "model": r.model,
                "status": r.status,
                "stop_reason": r.stop_reason,
                "success": r.success,
                "cached": r.cached,
                "latency": r.latency,
                "input_tokens": r.input_tokens,
                "output_tokens": r.output_tokens,
                "cache_read_tokens": r.cache_read_tokens,
                "cache_write_tokens": r.cache_write_tokens,
                "cost": r.cost,
                "request_id": r.request_id,
                "output": r.output,
                "error": r.errors[0] if r.errors else None,
            }
            for r in self._results
        ]
        fields = [_fields(r.parsed) for r in self._results]
        names = list(dict.fromkeys(name for found in fields for name in found))
        for record, found in zip(records, fields, strict=True):
            for name in names:
                record[f"answer.{name}" if name in COLUMNS else name] = found.get(name)
        return records

    def to_dataframe(self):
        """A pandas DataFrame with one row per call (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("to_dataframe() needs pandas: pip install pandas") from exc
        records = self.to_records()
        extra = [name for name in (records[0] if records else {}) if name not in COLUMNS]
        return pd.DataFrame.from_records(records, columns=[*COLUMNS, *extra])

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return sendable({"text/html": table_html(self._results, self.format), "text/plain": table_text(self._results)})

    def __repr__(self) -> str:
        ok = sum(r.success for r in self._results)
        return f"<Results {len(self._results)} calls, {ok} succeeded>"


def _frame(records: list[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError(EXTRA.format("pandas")) from exc
    return pd.DataFrame.from_records(records, columns=list(columns))


def _fields(parsed: Any) -> dict[str, Any]:
    """A schema answer's fields: a model's, or a JSON object's; nothing for anything else."""
    if hasattr(parsed, "model_dump"):
        return dict(parsed.model_dump())
    return dict(parsed) if isinstance(parsed, dict) else {}


def _same(item: Any, key: Any) -> bool:
    try:
        return bool(item == key)
    except Exception:  # e.g. arrays, whose == is elementwise
        return False


def _matches(result: AgentResult, key: tuple) -> bool:
    fields = (result.agent_name, result.item, result.model)
    # A key may name only the first fields: (agent,) or (agent, item).
    return all(_same(value, wanted) for value, wanted in zip(fields, key, strict=False))
