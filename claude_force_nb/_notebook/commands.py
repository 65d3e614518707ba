"""The ``%agent`` housekeeping subcommands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.display import Markdown

from .._agents import AgentRegistry
from .._errors import AgentNotFoundError

if TYPE_CHECKING:
    from .magics import AgentMagics
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


def run(magics: AgentMagics, words: list[str]) -> Any:
    """Dispatch ``%agent WORDS``."""
    if not words or words[0] in ("help", "-h", "--help"):
        print(USAGE)
        return None
    command, rest = words[0], words[1:]
    handler = _HANDLERS.get(command)
    if handler is None:
        raise UsageError(f"Unknown subcommand {command!r}. Try: {', '.join(_HANDLERS)} (%agent help).")
    return handler(magics, rest)


def _list(magics: AgentMagics, rest: list[str]) -> Markdown:
    registry: AgentRegistry = magics.orchestrator.agents
    registry.refresh()
    lines = ["| agent | model | source | description |", "|---|---|---|---|"]
    for agent in registry:
        lines.append(f"| `{agent.name}` | {agent.model or 'default'} | {agent.source} | {agent.description} |")
    for path, problem in registry.problems.items():
        lines.append(f"| (skipped) | | {path} | {problem} |")
    return Markdown("\n".join(lines))


def _show(magics: AgentMagics, rest: list[str]) -> Markdown:
    if len(rest) != 1:
        raise UsageError("Usage: %agent show NAME")
    try:
        agent = magics.orchestrator.agents.get(rest[0])
    except AgentNotFoundError as exc:
        raise UsageError(str(exc)) from None
    defaults = ", ".join(f"{k}={v}" for k, v in agent.params.items()) or "none"
    return Markdown(
        f"**{agent.name}** — {agent.description}\n\n"
        f"- model: {agent.model or magics.orchestrator.model + ' (default)'}\n"
        f"- max_tokens: {agent.max_tokens or magics.orchestrator.max_tokens}\n"
        f"- other defaults: {defaults}\n- source: {agent.source}\n\n```text\n{agent.system_prompt}\n```"
    )


def _stats(magics: AgentMagics, rest: list[str]) -> Any:
    panel = live_panel(magics.orchestrator)
    if magics.last_batch is not None:
        panel.watch(magics.last_batch)
    return panel


def _cache(magics: AgentMagics, rest: list[str]) -> Any:
    cache = magics.orchestrator.cache
    if cache is None:
        raise UsageError("The cache is disabled.")
    action = rest[0] if rest else "info"
    if action == "info":
        info = cache.info()
        print(f"path: {info.path}\nsize: {info.size_bytes:,} bytes\nentries: {info.entries}\n"
              f"secret: {info.secret_source}\nmode: {cache.mode}")
    elif action == "verify":
        report = cache.verify()
        print(f"{report.total} rows: {report.ok} verified, {len(report.bad)} failed their signature"
              + (" (removed)" if report.bad and not report.secret_mismatch else "") + f", {len(report.expired)} expired.")
        if report.secret_mismatch:
            print("No row verified, so they were kept: they were probably signed with another secret. Set "
                  "CLAUDE_CACHE_SECRET (or CLAUDE_CACHE_OLD_SECRETS) to the secret that wrote them.")
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


def _config(magics: AgentMagics, rest: list[str]) -> None:
    orchestrator = magics.orchestrator
    backend = orchestrator.backend
    where = "local Messages API server (synthetic answers)" if backend.offline else backend.base_url
    lines = [f"{name} = {getattr(magics, name)!r}" for name in sorted(magics.trait_names(config=True))]
    lines += [f"model in use = {orchestrator.model!r}", f"API = {where}",
              f"API key = {'set' if backend.api_key else 'not set'}"]
    print("\n".join(lines))


def live_panel(orchestrator: AsyncAgentOrchestrator) -> Any:
    """The stats panel, bound to this orchestrator."""
    from .panel import StatsPanel

    return StatsPanel(orchestrator)


_HANDLERS = {"list": _list, "show": _show, "stats": _stats, "cache": _cache, "config": _config}
