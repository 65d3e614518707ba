"""Agents: a named system prompt plus defaults, read from Claude Code-style files.

An agent file is Markdown with YAML front matter::

    ---
    name: code-reviewer
    description: Reviews code for bugs and clarity
    model: sonnet
    ---
    You are a meticulous code reviewer...

Files are looked up in ``.claude/agents/`` of the working directory and its
parents (the nearest wins), then ``~/.claude/agents/``, then the built-ins
shipped in this package.
"""

from __future__ import annotations

import difflib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import _checks as checks
from ._errors import AgentFileError, AgentNotFoundError, ClaudeForceWarning, ModelNotFoundError
from ._models import INHERIT, resolve_model

BUILTIN_DIR = Path(__file__).parent / "agents"
BUILTIN_SOURCE = "built-in"

# Front-matter keys passed to the API as call defaults.
PARAM_KEYS = ("temperature", "top_p", "top_k", "stop_sequences")
USED_KEYS = {"name", "description", "model", "max_tokens", *PARAM_KEYS}


@dataclass(frozen=True)
class Agent:
    """A named system prompt with default call settings."""

    name: str
    system_prompt: str
    description: str = ""
    model: str | None = None
    max_tokens: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    source: str = BUILTIN_SOURCE
    # Front-matter keys that do not apply here, such as Claude Code's tools and color.
    ignored: dict[str, Any] = field(default_factory=dict)


def parse_agent(text: str, *, source: str = BUILTIN_SOURCE, default_name: str | None = None) -> Agent:
    """Parse one agent file's text; raise AgentFileError (naming the line) if it is malformed."""
    meta, body = _split_front_matter(text, source)

    def bad(key: str, problem: str) -> AgentFileError:
        return AgentFileError(f"{source}: '{key}' {problem}", line=_line_of(text, key))

    name = meta.get("name") or default_name
    if not isinstance(name, str) or not name.strip():
        raise AgentFileError(f"{source}: front matter needs a 'name'.", line=1)
    model = meta.get("model")
    if model is not None and not isinstance(model, str):
        raise bad("model", f"must be a string, got {model!r}.")
    try:
        model = None if not model or model.strip() == INHERIT else resolve_model(model)
    except ModelNotFoundError as exc:
        raise bad("model", f"names no model: {exc}") from None
    max_tokens = meta.get("max_tokens")
    if max_tokens is not None:
        try:
            max_tokens = checks.count("max_tokens", max_tokens)
        except ValueError as exc:
            raise bad("max_tokens", str(exc).removeprefix("max_tokens ")) from None
    description = meta.get("description") or ""
    if not body.strip():
        raise AgentFileError(f"{source}: the body (the system prompt) is empty.", line=text.count("\n") + 1)
    params = {k: meta[k] for k in PARAM_KEYS if meta.get(k) is not None}
    try:
        params = checks.sampling(params)
    except ValueError as exc:
        key = next((k for k in params if str(exc).startswith(k)), "front matter")
        raise bad(key, str(exc).removeprefix(f"{key} ")) from None
    ignored = {k: v for k, v in meta.items() if k not in USED_KEYS}
    return Agent(name.strip(), body.strip(), str(description).strip(), model, max_tokens, params, source, ignored)


def _line_of(text: str, key: str) -> int:
    """The line of the front matter where ``key`` is set (1 if it cannot be found)."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith(f"{key}:"):
            return number
    return 1


def _split_front_matter(text: str, source: str) -> tuple[dict[str, Any], str]:
    lines = text.lstrip("\ufeff").splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise AgentFileError(f"{source}: expected YAML front matter starting with '---' on the first line.")
    end = next((i for i, line in enumerate(lines[1:], start=1) if line.strip() == "---"), None)
    if end is None:
        raise AgentFileError(f"{source}: front matter is not closed by a '---' line.")
    try:
        meta = yaml.safe_load("".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark else None
        where = f" (line {line})" if line else ""
        raise AgentFileError(f"{source}: front matter is not valid YAML{where}.", line=line) from exc
    if not isinstance(meta, dict):
        raise AgentFileError(f"{source}: front matter must be a mapping of keys to values.")
    return meta, "".join(lines[end + 1 :])


def agent_dirs(cwd: Path, user_home: Path) -> list[Path]:
    """Directories searched for agent files, nearest first."""
    dirs = [p / ".claude" / "agents" for p in (cwd, *cwd.parents)]
    user_dir = user_home / ".claude" / "agents"
    if user_dir in dirs:
        dirs.remove(user_dir)
    return [*dirs, user_dir]


class AgentRegistry:
    """The agents visible from a working directory, re-read when files change."""

    def __init__(self, cwd: Path | None = None, user_home: Path | None = None, *, builtins: bool = True):
        self._cwd = cwd
        self._user_home = user_home
        self._builtins = builtins
        self._agents: dict[str, Agent] = {}
        self.problems: dict[str, AgentFileError] = {}
        self._signature: tuple = ()
        self._dirs_key: tuple | None = None
        self._dirs: list[str] = []
        self.refresh()

    def refresh(self) -> None:
        """Re-read agent files if any directory or file changed since last time."""
        # Runs before every cell, so it only lists directories and compares
        # modification times; files are parsed only when something changed.
        signature = tuple(_md_files(self._search_dirs()))
        if signature == self._signature and self._agents:
            return
        self._signature = signature
        files = [Path(path) for path, _ in signature]
        agents: dict[str, Agent] = {}
        problems: dict[str, AgentFileError] = {}
        builtin_files = sorted(BUILTIN_DIR.glob("*.md")) if self._builtins else []
        # Farthest first, so nearer definitions overwrite farther ones.
        for path in [*builtin_files, *reversed(files)]:
            source = BUILTIN_SOURCE if path.parent == BUILTIN_DIR else str(path)
            try:
                agent = parse_agent(path.read_text(encoding="utf-8"), source=source, default_name=path.stem)
            except (AgentFileError, OSError, UnicodeDecodeError) as exc:
                err = exc if isinstance(exc, AgentFileError) else AgentFileError(f"{path}: cannot be read ({exc}).")
                problems[str(path)] = err
                continue
            agents[agent.name] = agent
        for skipped in sorted(set(problems) - set(self.problems)):
            # Pointed at the file and line at fault, not at this module.
            warnings.warn_explicit(
                f"Skipped this agent file: {problems[skipped]}",
                ClaudeForceWarning,
                filename=skipped,
                lineno=problems[skipped].line or 1,
            )
        self._agents, self.problems = agents, problems

    def _search_dirs(self) -> list[str]:
        where = (self._cwd or os.getcwd(), self._user_home or os.path.expanduser("~"))
        if self._dirs_key != where:  # building paths costs more than listing them
            self._dirs_key = where
            self._dirs = [str(d) for d in agent_dirs(Path(where[0]), Path(where[1]))]
        return self._dirs

    def get(self, name: str) -> Agent:
        """The agent called ``name``; AgentNotFoundError lists the alternatives."""
        try:
            return self._agents[name]
        except KeyError:
            pass
        self.refresh()
        if name in self._agents:
            return self._agents[name]
        names = sorted(self._agents)
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
        skipped = {path: str(problem) for path, problem in self.problems.items()}
        raise AgentNotFoundError(name, names, close[0] if close else None, skipped) from None

    def names(self) -> list[str]:
        return sorted(self._agents)

    def __iter__(self) -> Iterator[Agent]:
        return iter(sorted(self._agents.values(), key=lambda a: a.name))

    def __contains__(self, name: object) -> bool:
        return name in self._agents

    def __len__(self) -> int:
        return len(self._agents)


def _md_files(dirs: list[str]) -> list[tuple[str, int]]:
    """(path, mtime) of each ``*.md`` file in ``dirs``, in directory order then by name."""
    found = []
    for directory in dirs:
        try:
            with os.scandir(directory) as entries:
                files = sorted(
                    (e.path, e.stat().st_mtime_ns) for e in entries if e.name.endswith(".md") and e.is_file()
                )
        except OSError:
            continue  # most candidate directories do not exist
        found.extend(files)
    return found
