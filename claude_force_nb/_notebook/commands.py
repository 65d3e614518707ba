"""The ``%agent`` housekeeping subcommands."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError
from IPython.display import Markdown

from .._batch import Batch
from .._config import ENV_OLD_SECRETS, ENV_SECRET
from .._errors import AgentNotFoundError
from .._orchestrator import AsyncAgentOrchestrator

USAGE = """\
%agent list                      agents with their source file and description
%agent show NAME                 one agent's settings and system prompt
%agent stats                     cache and sweep statistics (a live panel)
%agent cache info                cache file, size and entries
%agent cache verify              check every row's signature
%agent cache prune               remove expired rows
%agent cache clear --yes         delete every cached answer
%agent config                    current settings (%config AgentMagics.<name> = value)
%agent help                      this text; %%agent? and %%agents? for cell options"""


@dataclass(frozen=True)
class Context:
    """What the subcommands work on."""

    orchestrator: Callable[[], AsyncAgentOrchestrator]  # built on first use: "%agent help" needs none
    last_batch: Batch | None
    settings: Mapping[str, Any]  # the %config settings in force


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


def _list(context: Context, rest: list[str]) -> Markdown:
    registry = context.orchestrator().agents
    registry.refresh()
    lines = ["| agent | model | source | description |", "|---|---|---|---|"]
    for agent in registry:
        lines.append(f"| `{agent.name}` | {agent.model or 'default'} | {agent.source} | {agent.description} |")
    for path, problem in registry.problems.items():
        lines.append(f"| (skipped) | | {path} | {problem} |")
    return Markdown("\n".join(lines))


def _show(context: Context, rest: list[str]) -> Markdown:
    if len(rest) != 1:
        raise UsageError("Usage: %agent show NAME")
    orchestrator = context.orchestrator()
    try:
        agent = orchestrator.agents.get(rest[0])
    except AgentNotFoundError as exc:
        raise UsageError(str(exc)) from None
    defaults = ", ".join(f"{k}={v}" for k, v in agent.params.items()) or "none"
    return Markdown(
        f"**{agent.name}** — {agent.description}\n\n"
        f"- model: {agent.model or orchestrator.model + ' (default)'}\n"
        f"- max_tokens: {agent.max_tokens or orchestrator.max_tokens}\n"
        f"- other defaults: {defaults}\n- source: {agent.source}\n\n```text\n{agent.system_prompt}\n```"
    )


def _stats(context: Context, rest: list[str]) -> Any:
    from .panel import live_panel  # ipywidgets loads when a panel is first shown

    panel = live_panel(context.orchestrator())
    if context.last_batch is not None:
        panel.watch(context.last_batch)
    return panel


def _cache(context: Context, rest: list[str]) -> Any:
    cache = context.orchestrator().cache
    if cache is None:
        raise UsageError("The cache is disabled.")
    action = rest[0] if rest else "info"
    if action == "info":
        info = cache.info()
        print(
            f"path: {info.path}\nsize: {info.size_bytes:,} bytes\nentries: {info.entries}\n"
            f"secret: {info.secret_source}\nmode: {cache.mode}"
        )
    elif action == "verify":
        report = cache.verify()
        print(
            f"{report.total} rows: {report.ok} verified, {len(report.bad)} failed their signature"
            + (" (removed)" if report.bad and not report.secret_mismatch else "")
            + f", {len(report.expired)} expired."
        )
        if report.secret_mismatch:
            print(
                "No row verified, so they were kept: they were probably signed with another secret. Set "
                f"{ENV_SECRET} (or {ENV_OLD_SECRETS}) to the secret that wrote them."
            )
    elif action == "prune":
        print(f"Removed {cache.prune()} expired rows.")
    elif action == "clear":
        if "--yes" not in rest:
            raise UsageError("This deletes every cached answer; confirm with: %agent cache clear --yes")
        cache.clear()
        print("Cache cleared.")
    else:
        raise UsageError(f"Unknown cache action {action!r}: use info, verify, prune or clear --yes.")
    return None


def _config(context: Context, rest: list[str]) -> None:
    orchestrator = context.orchestrator()
    lines = [f"{name} = {value!r}" for name, value in context.settings.items()]
    lines += [f"model in use = {orchestrator.model!r}", f"API = {orchestrator.backend.describe()}"]
    print("\n".join(lines))


_HANDLERS = {"list": _list, "show": _show, "stats": _stats, "cache": _cache, "config": _config}
