"""Evaluation from the magic line: ``--grade``, ``--check``, ``--samples`` on %%agents, and ``%agent rescore``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from IPython.core import magic_arguments
from IPython.core.error import UsageError

from .. import _checks as checks
from .._agents import AgentRegistry
from .._errors import AgentNotFoundError, ModelNotFoundError
from .._eval.grade import Grade
from .._models import resolve_model
from .._results import scorer_names
from .._resultset import Results
from . import loop as _loop
from .options import check_variable, functions_from

F = TypeVar("F", bound=Callable[..., Any])

_SCORING = (
    magic_arguments.argument(
        "--grade", metavar="RUBRIC", help="grade each answer: a string variable holding the rubric, or an agent"
    ),
    magic_arguments.argument(
        "--check", metavar="F,G", help="score each answer with f(answer, item) from the namespace"
    ),
    magic_arguments.argument("--grader-model", metavar="MODEL", help="the model that grades (default: the default)"),
    magic_arguments.argument("--reference", metavar="COL", help="give the grader each item's COL as the reference"),
)

USAGE = "%agent rescore VAR [--grade RUBRIC] [--check F,G] [--grader-model MODEL] [--reference COL] [--batch] [-o OUT]"


def scoring_arguments(func: F) -> F:
    """Declare the scorer options shared by %%agents and %agent rescore."""
    for argument in reversed(_SCORING):
        func = argument(func)
    return func


def scorers(args: Any, namespace: Mapping[str, Any], agents: AgentRegistry) -> dict[str, Any]:
    """The orchestrator's scorer arguments the line names: grade, checks, grader_model, reference."""
    found: dict[str, Any] = {}
    if args.grade:
        found["grade"] = rubric(args.grade, namespace, agents)
    if args.check:
        found["checks"] = functions_from("--check", args.check, namespace)
    if args.grader_model:
        if not args.grade:
            raise UsageError("--grader-model picks the model of --grade; add --grade RUBRIC.")
        try:
            found["grader_model"] = resolve_model(args.grader_model)
        except ModelNotFoundError as exc:
            raise UsageError(f"--grader-model: {exc}") from None
    if args.reference:
        if not args.grade:
            raise UsageError("--reference gives the grader a reference answer; add --grade RUBRIC.")
        found["reference"] = args.reference
    return found


def rubric(name: str, namespace: Mapping[str, Any], agents: AgentRegistry) -> Grade:
    """``--grade NAME``: a string variable (or a Grade) of that name, else the body of the agent of that name."""
    value = namespace.get(name)
    if isinstance(value, Grade):
        return value
    if isinstance(value, str):
        try:
            return Grade(value, name=name)
        except ValueError as exc:
            raise UsageError(f"--grade {name}: {exc}") from None
    if value is not None:
        raise UsageError(f"--grade {name}: expected a string holding the rubric, got {type(value).__name__}.")
    try:
        agent = agents.get(name)
    except AgentNotFoundError:
        raise UsageError(
            f"--grade {name}: no string variable and no agent named {name!r}; "
            f'set {name} = "what a good answer does" first.'
        ) from None
    return Grade(agent.system_prompt, name=name, model=agent.model)


def samples(value: int | None) -> int:
    """``--samples K``: how many times each call is asked."""
    if value is None:
        return 1
    try:
        return checks.count("--samples", value, high=checks.MAX_SAMPLES)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


@magic_arguments.magic_arguments(name="%agent rescore")
@magic_arguments.argument("results", metavar="VAR", help="the results of a %%agents -o VAR")
@scoring_arguments
@magic_arguments.argument("--batch", action="store_true", help="send the grades through the Message Batches API")
@magic_arguments.argument("-o", "--out", metavar="OUT", help="store the rescored results in OUT (default: VAR)")
def _rescore_arguments() -> None:
    """Score a sweep's answers again, generating nothing: only grades not in the cache are asked."""


def rescore(words: list[str], namespace: dict[str, Any], orchestrator: Any) -> None:
    """``%agent rescore VAR ...``: the rescored results, stored back in VAR (or OUT), and a line on what it sent."""
    parser = _rescore_arguments.parser
    args = parser.parse_args(words)
    if args.out is not None:
        check_variable(args.out)
    results = namespace.get(args.results)
    if not isinstance(results, Results):
        got = "nothing" if results is None else type(results).__name__
        raise UsageError(f"%agent rescore {args.results}: expected the results of %%agents -o VAR, got {got}.")
    found = scorers(args, namespace, orchestrator.agents)
    if not found.get("grade") and not found.get("checks"):
        raise UsageError(f"Name a scorer: {USAGE}")
    sent = orchestrator.spent().calls
    try:
        rescored = _loop.run(orchestrator.rescore(results, batch=args.batch, **found))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    rescored.format = results.format
    namespace[args.out or args.results] = rescored
    asked = orchestrator.spent().calls - sent
    names = ", ".join(scorer_names(rescored))
    print(
        f"Rescored {len(rescored):,} answers with {names}: nothing generated, {asked:,} grader "
        f"call{'' if asked == 1 else 's'} sent; the results are in {args.out or args.results}."
    )
