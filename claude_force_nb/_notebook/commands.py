"""The ``%agent`` housekeeping subcommands."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from IPython.core.error import UsageError

from .._config import ENV_OLD_SECRETS, ENV_SECRET
from .._errors import AgentNotFoundError, CacheError, ClaudeForceError
from .._orchestrator import AsyncAgentOrchestrator
from .._render import Answer
from .._sweep import Batch
from . import evaluation
from . import loop as _loop
from .errors import Errors
from .threads import Threads, transcript

USAGE = """\
%agent list                      agents with their source file and description
%agent show NAME                 one agent's settings and system prompt
%agent stats                     cache and sweep statistics (a live panel)
%agent cache info                cache file, size and entries
%agent cache verify              check every row's signature
%agent cache prune               remove expired rows
%agent cache clear --yes         delete every cached answer
%agent cache push | pull         copy answers from the cache file to the team database, or back
%agent batches                   Message Batches of this cache (file or team database); collects ended ones
%agent batches cancel ID         cancel a Message Batch (answered requests stay collectable)
%agent history [NAME]            a conversation's turns (a --thread name or an agent); without NAME, all of them
%agent reset [NAME]              forget a conversation, or all of them
%agent rescore VAR [--grade R]   score a sweep's answers again (--check F,G too); generates nothing
%agent error [AGENT]             explain the last failed cell (its source and traceback) with AGENT (debugger)
%agent config                    current settings (%config AgentMagics.<name> = value)
%agent help                      this text; %%agent? and %%agents? for cell options"""


@dataclass(frozen=True)
class Context:
    """What the subcommands work on."""

    orchestrator: Callable[[], AsyncAgentOrchestrator]  # built on first use: "%agent help" needs none
    last_batch: Batch | None
    settings: Mapping[str, Any]  # the %config settings in force
    threads: Threads = field(default_factory=Threads)
    errors: Errors = field(default_factory=Errors)
    format: str = "markdown"
    namespace: dict[str, Any] = field(default_factory=dict)  # the user's, where rescore finds and stores results


def run(words: list[str], context: Context) -> Any:
    """Dispatch ``%agent WORDS``."""
    if not words or words[0] in ("help", "-h", "--help"):
        print(USAGE)
        return None
    command, rest = words[0], words[1:]
    handler = _HANDLERS.get(command)
    if handler is None:
        raise UsageError(f"Unknown subcommand {command!r}. Try: {', '.join(_HANDLERS)} (%agent help).")
    return handler(context, rest)


class Document:
    """Markdown in a notebook, plain text in a terminal (where a Markdown object shows only its repr)."""

    def __init__(self, markdown: str, text: str):
        self.markdown = markdown
        self.text = text

    def _repr_markdown_(self) -> str:
        return self.markdown

    def __repr__(self) -> str:
        return self.text


def _list(context: Context, rest: list[str]) -> Document:
    registry = context.orchestrator().agents
    registry.refresh()
    rows = [(agent.name, agent.model or "default", agent.source, agent.description) for agent in registry]
    rows += [("(skipped)", "", path, str(problem)) for path, problem in registry.problems.items()]
    markdown = ["| agent | model | source | description |", "|---|---|---|---|"]
    markdown += [
        f"| {_code(name)} | {_cell(model)} | {_cell(source)} | {_cell(about)} |" for name, model, source, about in rows
    ]
    widths = [max(len(row[c]) for row in [("agent", "model", "source", ""), *rows]) for c in range(3)]
    text = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
        for row in [("agent", "model", "source", "description"), *rows]
    ]
    return Document("\n".join(markdown), "\n".join(text))


def _cell(text: str) -> str:
    """``text`` as one Markdown table cell: no HTML, no column breaks, one line."""
    return " ".join(html.escape(text).replace("|", "\\|").split())


def _code(text: str) -> str:
    # A code span's backticks must outnumber any run inside it.
    ticks = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    return f"{ticks} {_cell(text)} {ticks}" if "`" in text else f"`{_cell(text)}`"


def _fence(text: str) -> str:
    return "`" * max(3, max((len(run) for run in re.findall("`{3,}", text)), default=0) + 1)


def _show(context: Context, rest: list[str]) -> Document:
    if len(rest) != 1:
        raise UsageError("Usage: %agent show NAME")
    orchestrator = context.orchestrator()
    try:
        agent = orchestrator.agents.get(rest[0])
    except AgentNotFoundError as exc:
        raise UsageError(str(exc)) from None
    defaults = ", ".join(f"{k}={v}" for k, v in agent.params.items()) or "none"
    facts = [
        f"model: {agent.model or orchestrator.model + ' (default)'}",
        f"max_tokens: {agent.max_tokens or orchestrator.max_tokens}",
        f"other defaults: {defaults}",
        f"source: {agent.source}",
    ]
    if agent.ignored:
        facts.append(
            f"ignored here: {', '.join(sorted(agent.ignored))} (Claude Code settings with no effect on API calls)"
        )
    fence = _fence(agent.system_prompt)
    markdown = (
        f"**{html.escape(agent.name)}** — {html.escape(agent.description)}\n\n"
        + "".join(f"- {html.escape(fact)}\n" for fact in facts)
        + f"\n{fence}text\n{agent.system_prompt}\n{fence}"
    )
    text = (
        f"{agent.name} — {agent.description}\n" + "".join(f"  {fact}\n" for fact in facts) + f"\n{agent.system_prompt}"
    )
    return Document(markdown, text)


def _stats(context: Context, rest: list[str]) -> Any:
    from .panel import live_panel  # ipywidgets loads when a panel is first shown

    panel = live_panel(context.orchestrator())
    if context.last_batch is not None:
        panel.watch(context.last_batch)
    return panel


def _cache(context: Context, rest: list[str]) -> Any:
    try:
        return _cache_action(context, rest)
    except CacheError as exc:  # the team database is away or refuses: what the file could do is done
        raise UsageError(str(exc)) from None


def _cache_action(context: Context, rest: list[str]) -> Any:
    cache = context.orchestrator().cache
    if cache is None:
        raise UsageError("The cache is disabled.")
    action = rest[0] if rest else "info"
    if action == "info":
        info = cache.info()
        lines = [f"path: {info.path}"]
        if info.synthetic_path is not None:
            lines.append(f"synthetic answers: {info.synthetic_path}")
        lines += [
            f"size: {info.size_bytes:,} bytes",
            f"entries: {info.entries} ({info.memory_entries} in memory, at most {info.maxsize})",
            f"secret: {info.secret_source}",
            f"mode: {cache.mode}",
        ]
        if info.max_rows is not None and info.max_bytes is not None:
            lines.append(f"bounds: {info.max_rows:,} answers, {info.max_bytes / 2**20:,.0f} MiB per file")
        lines += [
            f"answers from {e.origin or 'an unnamed endpoint'}: {e.rows}" + (" (synthetic)" if e.synthetic else "")
            for e in info.endpoints
        ]
        team = info.team
        if team is not None:
            state = f"{team.entries:,} answers, {team.size_bytes:,} bytes" if team.reachable else "unreachable"
            lines.append(f"team cache: {team.where} ({state})")
            lines.append(f"team writes: {team.queued:,} queued, {team.dropped:,} dropped")
        print("\n".join(lines))
    elif action == "verify":
        report = cache.verify()
        print(
            f"{report.total} rows: {report.ok} verified, {len(report.bad)} failed their signature"
            + (" (removed)" if report.bad else "")
            + f", {len(report.expired)} expired, {report.foreign} signed with another secret (kept, not used)."
        )
        if report.foreign:
            print(
                f"Rows signed with another secret belong to a kernel that holds it; to use them here, set "
                f"{ENV_SECRET} (or {ENV_OLD_SECRETS}) to that secret."
            )
    elif action == "prune":
        print(f"Removed {cache.prune()} expired rows.")
    elif action in ("push", "pull"):
        moved = cache.push() if action == "push" else cache.pull()
        team = cache.info().team
        where = team.where if team is not None else "the team cache"
        source, receiver = ("the cache file", where) if action == "push" else (where, "the cache file")
        print(moved.describe(source, receiver))
    elif action == "clear":
        if "--yes" not in rest:
            raise UsageError("This deletes every cached answer; confirm with: %agent cache clear --yes")
        cache.clear()
        print("Cache cleared.")
    else:
        raise UsageError(f"Unknown cache action {action!r}: use info, verify, prune, push, pull or clear --yes.")
    return None


def _config(context: Context, rest: list[str]) -> None:
    orchestrator = context.orchestrator()
    lines = [f"{name} = {value!r}" for name, value in context.settings.items()]
    lines += [f"model in use = {orchestrator.model!r}", f"API = {orchestrator.backend.describe()}"]
    print("\n".join(lines))


def _batches(context: Context, rest: list[str]) -> Document | None:
    orchestrator = context.orchestrator()
    if rest[:1] == ["cancel"]:
        if len(rest) != 2:
            raise UsageError("Usage: %agent batches cancel BATCH_ID")
        try:
            status = _loop.run(orchestrator.cancel_batch(rest[1]))
        except ClaudeForceError as exc:
            raise UsageError(f"Could not cancel {rest[1]}: {exc}") from None
        print(f"Cancel requested. {status.describe()}")
        return None
    if rest:
        raise UsageError("Usage: %agent batches [cancel BATCH_ID]")
    if orchestrator.journal is None:
        raise UsageError("Message Batches are written down in the cache file, and the cache is off.")
    try:
        polled = {job.batch_id: status for job, status in _loop.run(orchestrator.collect_batches())}
    except ClaudeForceError as exc:
        raise UsageError(f"Could not reach the Message Batches API: {exc}") from None
    jobs = sorted(
        (job for journal in orchestrator.journals for job in journal.jobs(limit=20)),
        key=lambda job: job.created,
        reverse=True,
    )[:20]
    if not jobs:
        print(f"No Message Batches written down in {orchestrator.journal.where} (%%agents ... --batch submits them).")
        return None
    rows = []
    for job in jobs:
        seen = polled.get(job.batch_id)
        now = seen.describe().partition(": ")[2] if seen is not None else ""
        if job.batch_id in polled and seen is None:
            now = "unknown to the endpoint (lost): re-run the sweep to submit it again"
        elif seen is not None and seen.ended:
            now += "; collected into the cache"
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.created))
        rows.append((job.batch_id or "(not submitted)", created, f"{job.size:,}", job.state, now, job.origin))
    head = ("batch", "created", "requests", "state", "now", "endpoint")
    markdown = ["| " + " | ".join(head) + " |", "|---|---|---:|---|---|---|"]
    markdown += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    text = ["  ".join(row) for row in [head, *rows]]
    return Document("\n".join(markdown), "\n".join(text))


def _history(context: Context, rest: list[str]) -> Document | None:
    if len(rest) > 1:
        raise UsageError("Usage: %agent history [NAME]")
    if rest:
        return Document(*transcript(context.threads.get(rest[0])))
    rows = context.threads.summary()
    if not rows:
        print("No conversations yet: every %%agent cell starts one (--continue and --thread add to them).")
        return None
    markdown = ["| conversation | name | turns |", "|---|---|---:|"]
    markdown += [f"| {kind} | {_code(name)} | {turns} |" for kind, name, turns in rows]
    text = [f"{kind}: {name} ({turns} turns)" for kind, name, turns in rows]
    return Document("\n".join(markdown), "\n".join(text))


def _reset(context: Context, rest: list[str]) -> None:
    if len(rest) > 1:
        raise UsageError("Usage: %agent reset [NAME]")
    count = context.threads.reset(rest[0] if rest else None)
    print(f"Forgot {count} conversation{'' if count == 1 else 's'}.")


ERROR_TASK = "This notebook cell failed. Explain why, and how to fix it.\n\n{error}"


def _error(context: Context, rest: list[str]) -> Answer:
    if len(rest) > 1:
        raise UsageError("Usage: %agent error [AGENT]")
    failed = context.errors.last
    if failed is None:
        raise UsageError("No cell has failed in this session yet: %agent error explains the last one that did.")
    orchestrator = context.orchestrator()
    try:
        call = orchestrator.prepare(rest[0] if rest else "debugger", ERROR_TASK.format(error=failed))
    except (AgentNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    result = orchestrator.lookup(call) or _loop.run(orchestrator.send(call))  # a hit needs no event loop
    return Answer(result, context.format)


def _rescore(context: Context, rest: list[str]) -> None:
    evaluation.rescore(rest, context.namespace, context.orchestrator())


_HANDLERS = {
    "list": _list,
    "show": _show,
    "stats": _stats,
    "cache": _cache,
    "batches": _batches,
    "error": _error,
    "history": _history,
    "reset": _reset,
    "rescore": _rescore,
    "config": _config,
}
