"""The results of a sweep: a list that also indexes by agent and input."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

from ._render import sendable, table_html, table_text
from ._results import AgentResult

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


class Results(Sequence[AgentResult]):
    """Results in call order.

    ``results[0]`` is the first call; ``results["code-reviewer"]`` the one
    result of that agent (or a ``Results`` of all of them when there are
    several); ``results["code-reviewer", item]`` the call for that input.
    """

    def __init__(self, results: Sequence[AgentResult], *, fmt: str = "markdown"):
        self._results = list(results)
        self.format = fmt  # how the table's expanded answers are shown: markdown, text, code or json

    @overload
    def __getitem__(self, key: int) -> AgentResult: ...
    @overload
    def __getitem__(self, key: slice) -> Results: ...
    @overload
    def __getitem__(self, key: str | tuple) -> AgentResult | Results: ...

    def __getitem__(self, key: Any) -> AgentResult | Results:
        if isinstance(key, slice):
            return Results(self._results[key], fmt=self.format)
        if isinstance(key, int):
            return self._results[key]
        if isinstance(key, tuple):
            matches = [r for r in self._results if _matches(r, key)]
        else:
            matches = [r for r in self._results if r.agent_name == key or _same(r.item, key)]
        if not matches:
            raise KeyError(key)
        return matches[0] if len(matches) == 1 else Results(matches, fmt=self.format)

    def __len__(self) -> int:
        return len(self._results)

    def __iter__(self) -> Iterator[AgentResult]:
        return iter(self._results)

    @property
    def outputs(self) -> list[str]:
        return [r.output for r in self._results]

    @property
    def succeeded(self) -> Results:
        return Results([r for r in self._results if r.success], fmt=self.format)

    @property
    def failed(self) -> Results:
        return Results([r for r in self._results if not r.success], fmt=self.format)

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
