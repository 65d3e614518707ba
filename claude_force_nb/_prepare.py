"""The pipeline's first step: an agent, a task and its options become a request, keyed once."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import _checks as checks
from ._agents import Agent, AgentRegistry
from ._cache import ResponseCache, check_mode
from ._call import PreparedCall
from ._config import ENV_MODEL, Settings
from ._context import Workspace, workspace_of
from ._errors import ModelNotFoundError
from ._models import resolve_model
from ._options import CallOptions
from ._request import Request
from ._schema import output_format
from ._text import first_line
from ._tools import DEFAULT_MAX_TURNS, definitions, runnable


@dataclass(frozen=True, slots=True)
class Defaults:
    """What a call uses when neither it nor its agent says: the orchestrator's settings."""

    model: str
    max_tokens: int
    timeout: float


class Preparer:
    """Resolves agents, builds requests over the agent's defaults and ours, and keys them for the cache."""

    def __init__(self, agents: AgentRegistry, defaults: Defaults, cache: ResponseCache | None, origin: str):
        self.agents = agents
        self.defaults = defaults
        self.cache = cache
        self.origin = origin

    def prepare(self, agent_name: str, task: str, options: CallOptions) -> PreparedCall:
        """Everything but sending: raises :class:`AgentNotFoundError` for an unknown agent,
        ``ValueError``/``TypeError`` for options that cannot be sent."""
        agent = self.agents.get(agent_name)
        params = checks.sampling(dict(options.params))
        if options.schema is not None:
            params["output_config"] = {**(params.get("output_config") or {}), "format": _format(options.schema)}
        workspace = workspace_of(options.context, options.allow_run)
        tools, max_turns = _tools(options, workspace)
        if options.tools or workspace is not None:
            params["tools"] = [tool for tool in options.tools if not callable(tool)] + definitions(tools)
        request = self.request(agent, task, options, params)
        mode = "no-cache" if self.cache is None else check_mode(options.cache_mode or self.cache.mode)
        key = None if self.cache is None or mode == "no-cache" else self.cache.key(request)
        if key is not None and tools:
            # A tool loop's answer is not the single reply the same request would get, and it
            # depends on how many replies the loop may take.
            key = hashlib.blake2b(f"{key}|tool-loop|{max_turns}".encode(), digest_size=32).hexdigest()
        sample = 0 if options.sample is None else checks.count("sample", options.sample, low=0)
        if key is not None and sample:
            # Each repeat of one ask is an answer of its own; the first keeps the plain key, so a
            # sweep given samples later reuses the answers it already has.
            key = hashlib.blake2b(f"{key}|sample|{sample}".encode(), digest_size=32).hexdigest()
        timeout = self.defaults.timeout if options.timeout is None else checks.seconds("timeout", options.timeout)
        return PreparedCall(
            agent=agent.name,
            task=task,
            request=request,
            key=key,
            mode=mode,
            timeout=timeout,
            item=options.item,
            origin=self.origin,
            schema=options.schema,
            tools=tools,
            max_turns=max_turns,
            sample=sample,
            context=workspace,
        )

    def request(
        self, agent: Agent, task: str, options: CallOptions, params: Mapping[str, Any] | None = None
    ) -> Request:
        """The request a call would send: the call's options over the agent's defaults over ours."""
        max_tokens = checks.count("max_tokens", options.max_tokens) if options.max_tokens is not None else None
        return Request.for_task(
            task,
            model=resolve_model(options.model) if options.model else agent.model or self.defaults.model,
            max_tokens=max_tokens or agent.max_tokens or self.defaults.max_tokens,
            system=options.system if options.system is not None else agent.system_prompt,
            history=options.history,
            attachments=options.attachments,
            **{**agent.params, **(options.params if params is None else params)},
        )


def _format(schema: Any) -> dict[str, Any]:
    try:
        return output_format(schema)
    except (TypeError, ValueError):
        raise
    except Exception as exc:  # a schema the SDK cannot turn into the API's format
        raise ValueError(f"schema: {exc}") from exc


def _tools(options: CallOptions, workspace: Workspace | None) -> tuple[tuple[Any, ...], int]:
    """The SDK tools the call's functions (and its workspace's) become, and how many replies their loop may take."""
    for tool in options.tools:
        if not callable(tool) and not isinstance(tool, Mapping):
            raise TypeError(f"A tool must be a function or a tool definition (a dict), not {type(tool).__name__}.")
    functions = [*(workspace.tools() if workspace is not None else ()), *(t for t in options.tools if callable(t))]
    max_turns = DEFAULT_MAX_TURNS if options.max_turns is None else options.max_turns
    if not functions:
        return (), max_turns
    try:
        tools = tuple(runnable(functions))
    except TypeError:
        raise
    except Exception as exc:  # a function the SDK cannot describe (a parameter type it has no schema for)
        raise ValueError(f"tools: {first_line(exc)}") from exc
    return tools, checks.count("max_turns", max_turns, high=100)


def default_model(model: str | None, settings: Settings) -> str:
    """The model calls use when neither they nor their agent name one: ``model``, else the setting."""
    if model:
        return resolve_model(model)
    try:
        return resolve_model(settings.model)
    except ModelNotFoundError as exc:
        # Named after the variable the user set, since no argument named it.
        raise ModelNotFoundError(exc.name, exc.suggestion, setting=ENV_MODEL) from None
