"""Tools: the definitions a request offers, the API's rules for tool calls and results, and the next call.

With custom tools and ``tool_choice`` auto (the default), a user turn that
asks something gets a short preamble and one ``tool_use`` block for the
most relevant tool (most words in common with the task; the first on a
tie). A user turn of ``tool_result`` blocks gets another call while the
task has had fewer than ``tool_turns`` rounds of calls, else the final
text. ``any`` and ``tool`` force a call every time, with no preamble, as on
the API; ``none`` answers in text. With a JSON schema for the answer the
preamble is left out, as every text block must then be JSON.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from . import _conversation, _explore, _instances, _schema

DEFAULT_TOOL_TURNS = 1
CHOICES = ("auto", "any", "tool", "none")
_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_WORDS = re.compile(r"[a-z0-9]{3,}")
_RESULT_PREVIEW = 60


class ToolCall(NamedTuple):
    """The answer's call: the text before it ("" for none), its ``tool_use`` block and the tool's input schema."""

    preamble: str
    block: dict[str, Any]
    schema: dict[str, Any]


class Report(NamedTuple):
    """What one tool call of the task returned: ``text`` flattened to a preview, ``full`` whole."""

    name: str
    text: str
    failed: bool
    full: str = ""


def check(body: Mapping[str, Any]) -> None:
    """ValueError, worded as the API's 400, for bad tools, tool_choice, or unanswered or stray tool calls."""
    names = _check_tools(body.get("tools"))
    choice = body.get("tool_choice")
    if choice is not None:
        if not isinstance(choice, dict) or choice.get("type") not in CHOICES:
            raise ValueError("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'.")
        if not names:
            raise ValueError("tool_choice may only be specified while providing tools.")
        if choice["type"] == "tool" and choice.get("name") not in names:
            raise ValueError(f"tool_choice.name: Tool '{choice.get('name')}' not found in tools.")
        if not isinstance(choice.get("disable_parallel_tool_use", False), bool):
            raise ValueError("tool_choice.disable_parallel_tool_use: Input should be a valid boolean.")
    turns = _conversation.turns(body["messages"])
    if not names and any(t.tool_uses or t.tool_results for t in turns):
        raise ValueError("Requests which include `tool_use` or `tool_result` blocks must define tools.")
    for k, turn in enumerate(turns):
        after = turns[k + 1] if k + 1 < len(turns) else None
        before = turns[k - 1] if k > 0 else None
        if turn.role == "assistant" and turn.tool_uses:
            answered = {b.get("tool_use_id") for b in after.tool_results} if after is not None else set()
            missing = [str(b.get("id")) for b in turn.tool_uses if b.get("id") not in answered]
            if missing:
                raise ValueError(
                    f"messages.{after.first if after is not None else turn.first}: `tool_use` ids were found without "
                    f"`tool_result` blocks immediately after: {', '.join(missing)}. Each `tool_use` block must have "
                    "a corresponding `tool_result` block in the next message."
                )
        elif turn.role == "user" and turn.tool_results:
            known = {b.get("id") for b in before.tool_uses} if before is not None else set()
            stray = [str(b.get("tool_use_id")) for b in turn.tool_results if b.get("tool_use_id") not in known]
            if stray:
                raise ValueError(
                    f"messages.{turn.first}.content: unexpected `tool_use_id` found in `tool_result` blocks: "
                    f"{', '.join(stray)}. Each `tool_result` block must have a corresponding `tool_use` block in "
                    "the previous message."
                )


def _check_tools(tools: Any) -> list[str]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise ValueError("tools: Input should be a list of tool definitions.")
    names: list[str] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise ValueError(f"tools.{i}: Input should be a tool definition object.")
        name = tool.get("name")
        custom = tool.get("type") in (None, "custom")
        if not isinstance(name, str) or (custom and not _NAME.fullmatch(name)):
            raise ValueError(f"tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'.")
        if name in names:
            raise ValueError(f"tools: Tool names must be unique; '{name}' is given twice.")
        names.append(name)
        if not custom:
            continue  # a server or built-in tool: its shape is the API's business, and it is never called here
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise ValueError(f"tools.{i}.custom.input_schema.type: Input should be 'object'.")
        if tool.get("strict") is True:
            _schema.check(schema, f"tools.{i}.custom.input_schema")
    return names


def plan(body: Mapping[str, Any], tool_turns: int = DEFAULT_TOOL_TURNS) -> ToolCall | None:
    """The tool call the answer makes, or None for a text answer."""
    tools = [t for t in body.get("tools") or () if t.get("type") in (None, "custom")]
    choice = body.get("tool_choice") or {"type": "auto"}
    if not tools or choice.get("type") == "none":
        return None
    forced = choice.get("type") in ("any", "tool")
    turns = _conversation.turns(body["messages"])
    task = (_conversation.tasks(body["messages"]) or [""])[-1]
    if not forced and _explore.offered(tools):
        return _exploring(body, tools, task)
    if not forced and _rounds(turns) >= tool_turns:
        return None
    if choice.get("type") == "tool":
        tool = next(t for t in tools if t.get("name") == choice.get("name"))
    else:
        tool = max(tools, key=lambda t: _relevance(t, task))  # max keeps the first of equals
    messages = _conversation.unmarked(body["messages"])
    history = hashlib.sha256(json.dumps(messages, sort_keys=True, default=str).encode()).hexdigest()
    tool_id = "toolu_" + hashlib.sha256(f"{history}\x00{tool['name']}".encode()).hexdigest()[:24]
    schema = tool.get("input_schema") or {"type": "object"}
    tool_input = _instances.generate(schema, seed=history, topic=task)
    block = {"type": "tool_use", "id": tool_id, "name": tool["name"], "input": tool_input}
    quiet = forced or _schema.output_schema(body) is not None
    preamble = "" if quiet else f"[synthetic] I will call {tool['name']} first."
    return ToolCall(preamble, block, schema)


def _exploring(body: Mapping[str, Any], tools: list[dict[str, Any]], task: str) -> ToolCall | None:
    """The next step of a model looking around a kernel (see :mod:`._explore`); None when it answers."""
    called = [(report.name, report.full) for report in reports(body)]
    name, tool_input = _explore.next_call(task, called, tools)
    if not name:
        return None
    tool = next(t for t in tools if t.get("name") == name)
    history = hashlib.sha256(json.dumps(_conversation.unmarked(body["messages"]), sort_keys=True).encode()).hexdigest()
    block = {"type": "tool_use", "id": "toolu_" + history[:24], "name": name, "input": tool_input}
    quiet = _schema.output_schema(body) is not None
    return ToolCall(
        "" if quiet else f"[synthetic] Let me look at the kernel first: {name}.", block, tool["input_schema"]
    )


def reports(body: Mapping[str, Any]) -> list[Report]:
    """What the tools called for the task at hand returned, oldest first; empty if none were called."""
    turns = _conversation.turns(body["messages"])
    start = max((k for k, t in enumerate(turns) if t.asks), default=0)
    names: dict[Any, str] = {}
    found = []
    for turn in turns[start:]:
        names.update({b.get("id"): str(b.get("name")) for b in turn.tool_uses})
        for result in turn.tool_results:
            full = _result_text(result.get("content"))
            name = names.get(result.get("tool_use_id"), "a tool")
            found.append(Report(name, _flat(full), bool(result.get("is_error")), full))
    return found


def _rounds(turns: list[_conversation.RoleRun]) -> int:
    """Rounds of tool calls since the last user turn that asked something."""
    start = max((k for k, t in enumerate(turns) if t.asks), default=0)
    return sum(1 for t in turns[start:] if t.role == "assistant" and t.tool_uses)


def _relevance(tool: Mapping[str, Any], task: str) -> int:
    words = set(_WORDS.findall(task.lower()))
    offered = set(_WORDS.findall(f"{tool.get('name', '')} {tool.get('description', '')}".lower().replace("_", " ")))
    return len(words & offered)


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in _conversation.blocks_of(content):
        kind = block.get("type")
        parts.append(block["text"] if kind == "text" and isinstance(block.get("text"), str) else f"[{kind}]")
    return " ".join(parts)


def _flat(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _RESULT_PREVIEW else flat[:_RESULT_PREVIEW].rstrip() + "\u2026"
