"""``%%agent``, ``%%agents`` and ``%agent``: thin adapters over the orchestrator."""

from __future__ import annotations

import time
from collections import ChainMap
from collections.abc import Callable, MutableMapping
from functools import partial
from typing import Any

from IPython.core import magic_arguments
from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.display import display
from traitlets import Bool, Enum, Float, Integer, List, TraitError, Unicode, observe, validate

from .. import _checks as checks
from .._agents import AgentRegistry
from .._batches.runner import DEFAULT_POLL_SECONDS
from .._cache.store import DEFAULT_MAX_BYTES, DEFAULT_MAX_ROWS
from .._call import Call, PreparedCall
from .._config import (
    CACHE_MODES,
    DEFAULT_CACHE_MAXSIZE,
    DEFAULT_CACHE_TTL_HOURS,
    DEFAULT_MAX_CONCURRENT,
    DEFAULT_MAX_TOKENS,
    DEFAULT_TIMEOUT_SECONDS,
    ENV_CACHE_MODE,
    ENV_CACHE_URL,
    ENV_HOME,
    ENV_MODEL,
)
from .._context import Workspace
from .._context.snippets import DEFAULT_SECONDS as DEFAULT_SNIPPET_SECONDS
from .._errors import AgentNotFoundError, BudgetExceededError, CacheFileError, ClaudeForceError
from .._models import lifecycle_note, note_lifecycle, resolve_model, utc_today
from .._options import CallOptions
from .._orchestrator import AsyncAgentOrchestrator
from .._render import FORMATS, Answer
from .._results import AgentResult
from .._resultset import Results
from .._sweep import Batch
from .._text import printable
from . import commands as _commands
from . import loop as _loop
from .background import BackgroundRun
from .context import workspace_for
from .errors import Errors
from .evaluation import samples, scorers, scoring_arguments
from .options import attached, call_options, common_arguments, parse, sendable_errors, split, strip_quiet
from .sweep import cell_task, sweep_calls
from .threads import Threads, turn_key
from .values import DEFAULT_DATA_LIMIT

STREAM_REFRESH_SECONDS = 0.05

# How each numeric setting is checked when it is set (%config or ipython_config.py).
_NUMBER_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "max_concurrent": partial(checks.count, high=checks.MAX_CONCURRENCY),
    "max_tokens": checks.count,
    "timeout": checks.seconds,
    "cache_ttl_hours": partial(checks.seconds, infinite=True),
    "cache_maxsize": checks.count,
    "cache_max_rows": checks.count,
    "cache_max_mb": checks.count,
    "data_limit": partial(checks.count, low=100),
    "batch_poll_seconds": checks.seconds,
    "snippet_seconds": checks.seconds,
}


@magics_class
class AgentMagics(Magics):
    """Run Claude agents from notebook cells. Options set with ``%config AgentMagics.<name> = value``."""

    default_agent = Unicode("python-expert", help="Agent used by %%agent when none is named.").tag(config=True)
    model = Unicode(
        None,
        allow_none=True,
        help=f"Model for every call (default: the agent's, then {ENV_MODEL}, then the package default).",
    ).tag(config=True)
    max_tokens = Integer(DEFAULT_MAX_TOKENS, help="Default maximum tokens per answer.").tag(config=True)
    max_concurrent = Integer(
        DEFAULT_MAX_CONCURRENT, help="Calls in flight at once (a background sweep counts its own)."
    ).tag(config=True)
    timeout = Float(DEFAULT_TIMEOUT_SECONDS, help="Seconds before a call is abandoned.").tag(config=True)
    cache_ttl_hours = Float(DEFAULT_CACHE_TTL_HOURS, help="How long cached answers are served.").tag(config=True)
    cache_maxsize = Integer(DEFAULT_CACHE_MAXSIZE, help="Answers kept in memory.").tag(config=True)
    cache_max_rows = Integer(
        DEFAULT_MAX_ROWS, help="Answers the cache file keeps; past this the ones that expire first go."
    ).tag(config=True)
    cache_max_mb = Integer(
        DEFAULT_MAX_BYTES >> 20, help="Megabytes the cache file may hold; past this the answers that expire first go."
    ).tag(config=True)
    cache_path = Unicode(
        None, allow_none=True, help=f"SQLite cache file (default: under {ENV_HOME} or the user data directory)."
    ).tag(config=True)
    cache_url = Unicode(
        None,
        allow_none=True,
        help=f"A team cache: postgresql://user@host/database behind the cache file (default: {ENV_CACHE_URL}).",
    ).tag(config=True)
    cache_mode = Enum(
        CACHE_MODES,
        None,
        allow_none=True,
        help=f"normal, refresh, no-cache or replay (default: {ENV_CACHE_MODE}, else normal).",
    ).tag(config=True)
    format = Enum(FORMATS, "markdown", help="How answers are shown.").tag(config=True)
    panel = Bool(True, help="Show the stats panel under %%agents runs.").tag(config=True)
    data_limit = Integer(
        DEFAULT_DATA_LIMIT, help="Characters a table or array may take when interpolated ({df}); more is cut."
    ).tag(config=True)
    batch_poll_seconds = Float(
        DEFAULT_POLL_SECONDS, help="Longest wait between polls of a --batch sweep's Message Batches."
    ).tag(config=True)
    context_exclude = List(Unicode(), help="Variables --context never shows: names or patterns such as 'raw_*'.").tag(
        config=True
    )
    snippet_seconds = Float(
        DEFAULT_SNIPPET_SECONDS, help="How long a snippet --allow-run lets the model run may take before it is ended."
    ).tag(config=True)

    # Class-level defaults so that config applied inside __init__ (which calls the
    # observer, which calls release()) finds them; release() assigns new values.
    _orchestrator: AsyncAgentOrchestrator | None = None
    _runs: tuple[BackgroundRun, ...] = ()
    last_batch: Batch | None = None
    _cell_id: str | None = None  # the running cell's id, where the front end sends one
    _loaded: AsyncAgentOrchestrator | None = None  # the orchestrator whose backend is ready to send

    def __init__(self, **kwargs: Any):
        self._closing: set[Any] = set()  # orchestrators closing once their background runs end
        self.threads = Threads()
        self.errors = Errors()
        super().__init__(**kwargs)

    def _cell_started(self, info: Any) -> None:
        self._cell_id = getattr(info, "cell_id", None)

    def _cell_ended(self, result: Any) -> None:
        self._cell_id = None
        error = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
        if error is not None:
            info = getattr(result, "info", None)
            self.errors.add(getattr(result, "execution_count", None), getattr(info, "raw_cell", "") or "", error)

    @validate(
        "max_concurrent",
        "max_tokens",
        "timeout",
        "cache_ttl_hours",
        "cache_maxsize",
        "cache_max_rows",
        "cache_max_mb",
        "data_limit",
        "batch_poll_seconds",
        "snippet_seconds",
    )
    def _check_number(self, proposal: Any) -> Any:
        name = proposal["trait"].name
        try:
            return _NUMBER_CHECKS[name](f"AgentMagics.{name}", proposal["value"])
        except ValueError as exc:
            raise TraitError(str(exc)) from None

    @validate("cache_url")
    def _check_cache_url(self, proposal: Any) -> str | None:
        url = proposal["value"]
        if url and _has_password(url):
            # %config shows its settings, and saved notebooks keep what it shows.
            raise TraitError(
                "AgentMagics.cache_url: keep the password out of the notebook: put it in PGPASSWORD or ~/.pgpass "
                f"(libpq reads both), or set the whole URL in {ENV_CACHE_URL}."
            )
        return url

    @validate("model")
    def _check_model(self, proposal: Any) -> str | None:
        if proposal["value"] is None:
            return None
        try:
            return resolve_model(proposal["value"])
        except ValueError as exc:
            raise TraitError(f"AgentMagics.model: {exc}") from None

    @validate("default_agent")
    def _check_default_agent(self, proposal: Any) -> str:
        registry = self._orchestrator.agents if self._orchestrator is not None else AgentRegistry()
        try:
            return registry.get(proposal["value"]).name
        except AgentNotFoundError as exc:
            raise TraitError(f"AgentMagics.default_agent: {exc}") from None

    @observe(
        "max_concurrent",
        "timeout",
        "cache_ttl_hours",
        "cache_maxsize",
        "cache_max_rows",
        "cache_max_mb",
        "cache_path",
        "cache_url",
        "cache_mode",
        "model",
        "max_tokens",
    )
    def _settings_changed(self, change: dict) -> None:
        self.release()  # rebuilt with the new settings on next use

    @property
    def orchestrator(self) -> AsyncAgentOrchestrator:
        if self._orchestrator is None:
            try:
                self._orchestrator = self._new_orchestrator()
            except CacheFileError as exc:
                raise UsageError(
                    f"Cannot start: {exc.problem} Point %config AgentMagics.cache_path, or {ENV_HOME}, at a "
                    "writable directory."
                ) from exc
            except (ValueError, ClaudeForceError) as exc:
                # A bad setting (environment or %config) must not turn every cell into a traceback.
                raise UsageError(f"Cannot start: {exc}") from exc
        return self._orchestrator

    def _new_orchestrator(self) -> AsyncAgentOrchestrator:
        return AsyncAgentOrchestrator(
            max_concurrent=self.max_concurrent,
            timeout_seconds=self.timeout,
            cache_ttl_hours=self.cache_ttl_hours,
            cache_maxsize=self.cache_maxsize,
            cache_max_rows=self.cache_max_rows,
            cache_max_bytes=self.cache_max_mb << 20,
            cache_path=self.cache_path,
            cache_url=self.cache_url,
            cache_mode=self.cache_mode,
            model=self.model,
            max_tokens=self.max_tokens,
        )

    def release(self) -> None:
        """Close the orchestrator (flushing the cache file) once its background runs end."""
        orchestrator, self._orchestrator = self._orchestrator, None
        runs, self._runs = [r for r in self._runs if not r.done], ()
        if orchestrator is None:
            return
        if runs:
            closing = _loop.spawn(_close_after(orchestrator, runs))
            # Held until done, so the task is neither collected early nor its failure unseen.
            self._closing.add(closing)
            closing.add_done_callback(self._closed)
        else:
            _loop.run(orchestrator.close())

    def _closed(self, closing: Any) -> None:
        self._closing.discard(closing)
        if not closing.cancelled() and closing.exception() is not None:
            print(f"claude-force-nb: closing the previous settings' connections failed: {closing.exception()}")

    # -- %%agent -----------------------------------------------------------

    @sendable_errors
    @magic_arguments.magic_arguments(name="%agent")  # shown as %%agent: the parser adds one %
    @magic_arguments.argument("agent", nargs="?", help="agent name (default: AgentMagics.default_agent)")
    @magic_arguments.argument("-m", "--model", help="model to use instead of the agent's")
    @magic_arguments.argument("--stream", action="store_true", help="show the answer as it arrives")
    @magic_arguments.argument(
        "--continue", dest="cont", action="store_true", help="add to the last conversation with this agent"
    )
    @magic_arguments.argument("--thread", metavar="NAME", help="add to the conversation of this name")
    @magic_arguments.argument(
        "--next-cell", action="store_true", help="put the answer's code into a new cell below this one"
    )
    @common_arguments
    @cell_magic
    def agent(self, line: str, cell: str) -> None:
        """Send the cell to one agent and show the answer.

        The cell is the task. ``{name}``, ``{obj.attr}``, ``{items[0]}`` and
        ``{Out[3]}`` are replaced from the namespace; other braces are left
        alone, and ``{{ }}`` escapes. End the magic line with ``;`` to hide
        the answer (it is still stored by ``-o``).

        Every cell starts a conversation with its agent: ``--continue`` adds
        a turn to the last one, ``--thread NAME`` to a named one. Re-running a
        cell asks its turn again and drops the turns after it.

        Examples::

            %%agent code-reviewer -o review
            def mean(xs): return sum(xs) / len(xs)
        """
        raw_line = line
        line, quiet = strip_quiet(line)
        args = parse(self.agent, line)
        if args.cont and args.thread:
            raise UsageError("--continue and --thread both pick a conversation; use one of them.")
        orchestrator = self.orchestrator
        orchestrator.agents.refresh()  # an edited agent file applies to the next cell
        prompt = cell_task(cell, self._lookup, raw=args.raw, fence=args.fence, limit=self.data_limit)
        task, attachments = prompt.text, [*prompt.attachments, *attached(args)]
        agent = args.agent or self.default_agent
        key = turn_key(self._cell_id, raw_line, cell)
        try:
            conversation = self.threads.find(orchestrator, agent, thread=args.thread, continuing=args.cont)
            dropped = conversation.after(key)
            if dropped:
                print(
                    f"Note: this cell's turn is asked again, so the {dropped} turn{'s' if dropped > 1 else ''} "
                    "after it leave the conversation (a cell with the same text counts as the same turn)."
                )
            options = CallOptions(model=args.model or self.model, attachments=tuple(attachments))
            call = conversation.prepare(
                task,
                key=key,
                agent=agent,
                options=options.over(call_options(args, self._namespace, self._context(args))),
            )
        except (AgentNotFoundError, ValueError, TypeError) as exc:
            raise UsageError(str(exc)) from None
        if args.stream and not quiet:
            result = self._run_streaming(call, args.format or self.format)
        else:
            # A hit needs no event loop, so a re-run cell stays in microseconds.
            result = orchestrator.lookup(call) or _loop.run(orchestrator.send(call))
            if not quiet:
                _show(Answer(result, args.format or self.format))
        self.threads.record(conversation, call, result, key=key, agent=agent)
        self._store(args.out, result)
        if args.next_cell:
            self._next_cell(result)

    def _next_cell(self, result: AgentResult) -> None:
        """Put the answer's code (its fenced blocks, else the whole answer) into a new cell below."""
        if not result.success:
            return
        code = "\n\n".join(block.code for block in result.code_blocks) or result.output.strip()
        if not code:
            print("Note: the answer has no code to put in a new cell.")
            return
        assert self.shell is not None
        self.shell.set_next_input(code, replace=False)

    def _run_streaming(self, call: PreparedCall, fmt: str) -> AgentResult:
        handle = display({"text/plain": ""}, raw=True, display_id=True)
        chunks: list[str] = []
        last = 0.0

        def on_text(text: str) -> None:
            nonlocal last
            chunks.append(text)
            now = time.monotonic()
            if now - last >= STREAM_REFRESH_SECONDS:
                last = now
                handle.update({"text/plain": printable("".join(chunks))}, raw=True)

        result = _loop.run(self.orchestrator.run(call, on_text=on_text))
        handle.update(Answer(result, fmt)._repr_mimebundle_(), raw=True)
        return result

    # -- %%agents ----------------------------------------------------------

    @sendable_errors
    @magic_arguments.magic_arguments(name="%agents")
    @magic_arguments.argument("agents", nargs="*", help="one or more agent names")
    @magic_arguments.argument("--over", metavar="VAR", help="sweep the cell over the items of VAR ({item} in the cell)")
    @magic_arguments.argument("--models", metavar="A,B", help="comma-separated models: one call per model")
    @magic_arguments.argument("-c", "--concurrency", type=int, metavar="N", help="calls in flight at once")
    @magic_arguments.argument(
        "--background", action="store_true", help="return at once; -o VAR holds a handle to watch, await or cancel"
    )
    @magic_arguments.argument("--no-panel", action="store_true", help="do not show the stats panel")
    @magic_arguments.argument(
        "--dry-run", action="store_true", help="show calls, cache hits, input tokens and estimated cost; send nothing"
    )
    @magic_arguments.argument(
        "--budget", type=float, metavar="USD", help="refuse to start above this estimate; stop sending once spent"
    )
    @magic_arguments.argument(
        "--batch", action="store_true", help="send the cache misses through the Message Batches API (half price)"
    )
    @magic_arguments.argument("--samples", type=int, metavar="K", help="ask each call K times, each cached apart")
    @scoring_arguments
    @common_arguments
    @cell_magic
    def agents(self, line: str, cell: str) -> None:
        """Send the cell to several agents (and inputs, and models) concurrently.

        Each agent gets the cell; ``--over VAR`` makes the cell a template
        filled with each item of ``VAR`` as ``{item}``; ``--models a,b`` runs
        every call once per model. Results show as a table; ``-o VAR`` keeps
        them (index by position, agent or ``(agent, item)``, or call
        ``.to_dataframe()``).

        ``--grade RUBRIC`` (a string variable, or an agent whose prompt is
        the rubric) has the grader agent score every answer from 0 to 1;
        ``--check f,g`` scores it with ``f(answer, item)``. The results then
        have ``.scores``, ``.summary()``, ``.compare(a, b)``, ``.plot()`` and
        ``.require(min_score=...)``; ``%agent rescore VAR`` scores them again.

        Examples::

            %%agents code-reviewer python-expert -o reviews
            def mean(xs): return sum(xs) / len(xs)

            %%agents summarizer --over articles -c 20
            Summarize: {item}

            %%agents terse thorough --over questions --models haiku,sonnet --grade rubric --samples 3 -o run
            {item}
        """
        line, quiet = strip_quiet(line)
        args = parse(self.agents, line)
        if not args.agents:
            raise UsageError("Name at least one agent: %%agents AGENT [AGENT ...] [options].")
        if args.background and not args.out:
            raise UsageError("--background needs -o VAR to hold the handle (to watch, await or cancel the sweep).")
        if args.over and args.raw:
            raise UsageError("--over fills {item} into the cell, which --raw turns off; drop one of them.")
        if args.batch and args.concurrency is not None:
            raise UsageError("-c sets calls in flight, and --batch sends none one by one; drop one of them.")
        orchestrator = self.orchestrator
        orchestrator.agents.refresh()
        for name in args.agents:
            if name not in orchestrator.agents:  # before the cell is interpolated and its notes printed
                self._unknown_agent(name)
        models = args.models or [self.model]
        calls = sweep_calls(
            cell,
            self._lookup,
            args.agents,
            models,
            over=args.over,
            raw=args.raw,
            fence=args.fence,
            limit=self.data_limit,
            attachments=attached(args),
        )
        evaluation = {"samples": samples(args.samples), **scorers(args, self._namespace, orchestrator.agents)}
        try:
            options = call_options(args, self._namespace, self._context(args))
            calls = [Call(call.agent, call.task, options=call.options.over(options)) for call in calls]
            if args.batch:
                batch = orchestrator.message_batch(calls, poll_seconds=self.batch_poll_seconds, **evaluation)
            else:
                batch = orchestrator.batch(calls, concurrency=args.concurrency, budget=args.budget, **evaluation)
        except (AgentNotFoundError, ValueError, TypeError) as exc:
            raise UsageError(str(exc)) from None
        if args.dry_run or args.budget is not None:
            try:
                estimate = _loop.run(orchestrator.estimate(batch.calls, batch=args.batch, scoring=batch.scoring))
            except ClaudeForceError as exc:  # the token-counting endpoint failed
                raise UsageError(f"Could not estimate the sweep: {exc}") from None
            if args.dry_run:
                self._store(args.out, estimate)
                if not quiet:
                    print(f"Dry run: nothing was sent.\n{estimate.describe()}")
                return
            try:
                orchestrator.check_budget(estimate, args.budget)
            except BudgetExceededError as exc:
                raise UsageError(str(exc)) from None
        if self._loaded is not orchestrator and (orchestrator.needs_api(batch.calls) or args.grade):
            # Its notice (offline, the local server starts) prints now, above the panel and the table;
            # and the SDK import, on a background sweep's worker thread beside a computing cell, would
            # crawl: each of its thousands of file reads gives up the GIL and waits for the busy thread.
            orchestrator.backend.load()
            self._loaded = orchestrator
        # Said once per model, above the panel rather than between it and the table. Only a sweep with a
        # deprecated or retired model looks for calls to send: a re-run cell of current ones peeks at nothing.
        today = utc_today()
        dated = [model for model in dict.fromkeys(call.model for call in batch.calls) if lifecycle_note(model, today)]
        if dated and orchestrator.needs_api(batch.calls):
            for model in dated:
                note_lifecycle(model)
        panel = None
        if not (args.no_panel or not self.panel or quiet):
            from .panel import live_panel  # ipywidgets loads with the first panel, not with the extension

            panel = live_panel(orchestrator)
            # A background sweep reports from its worker thread; the panel changes on this one.
            batch.on_update = _loop.on_this_loop(panel.on_update) if args.background else panel.on_update
        self.last_batch = batch
        if panel is not None:
            panel.watch(batch)
            display(panel)
        if args.background:
            self._start_in_background(batch, panel, args.out, quiet, args.format or self.format)
            return
        try:
            results = Results(_loop.run(batch.wait()), fmt=args.format or self.format, engine=orchestrator)
        except KeyboardInterrupt:
            _loop.run(batch.cancel_and_settle())
            results = Results(batch.results_so_far(), fmt=args.format or self.format, engine=orchestrator)
            self._store(args.out, results)
            progress = batch.progress
            if panel is not None:
                panel.refresh()
            _show(results)
            raise KeyboardInterrupt(
                f"Interrupted: {progress.succeeded + progress.failed} calls finished (kept and cached), "
                f"{progress.cancelled} cancelled."
            ) from None
        if panel is not None:
            panel.refresh()
        self._store(args.out, results)
        if not quiet:
            _show(results)

    def _start_in_background(self, batch: Batch, panel: Any, out: str, quiet: bool, fmt: str) -> None:
        run = BackgroundRun(
            batch,
            on_wait=panel.republish if panel is not None else None,
            fmt=fmt,
            engine=self.orchestrator,
        )
        self._runs = (*(r for r in self._runs if not r.done), run)
        self._store(out, run)
        if not quiet:
            print(f"Started {len(batch)} calls in the background; watch, await or cancel {out}.")

    # -- %agent ------------------------------------------------------------

    @sendable_errors
    @line_magic("agent")  # type: ignore[arg-type]  # IPython types line_magic(name)(func) as uncallable
    def agent_command(self, line: str) -> Any:
        """Housekeeping: %agent list | show NAME | stats | cache info|verify|prune|clear [--yes] | rescore VAR |
        config | help."""
        context = _commands.Context(
            lambda: self.orchestrator,
            self.last_batch,
            self._settings(),
            self.threads,
            self.errors,
            self.format,
            self._namespace,
        )
        return _commands.run(split(line), context)

    # -- helpers -----------------------------------------------------------

    def _unknown_agent(self, name: str) -> None:
        try:
            self.orchestrator.agents.get(name)
        except AgentNotFoundError as exc:
            raise UsageError(str(exc)) from None

    @property
    def _namespace(self) -> dict[str, Any]:
        assert self.shell is not None  # a magic always runs in a shell
        return self.shell.user_ns

    def _context(self, args: Any) -> Workspace | None:
        """What ``--context`` and ``--allow-run`` let the model look at, and run code in."""
        return workspace_for(args, self.shell, self.errors, exclude=self.context_exclude, seconds=self.snippet_seconds)

    @property
    def _lookup(self) -> MutableMapping[str, Any]:
        """What ``{name}`` reads: the namespace, with ``Err`` (the session's failed cells) unless it has one."""
        namespace = self._namespace
        return namespace if "Err" in namespace else ChainMap({"Err": self.errors}, namespace)

    def _settings(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in sorted(self.trait_names(config=True))}

    def _store(self, name: str | None, value: Any) -> None:
        if name:
            self._namespace[name] = value


async def _close_after(orchestrator: AsyncAgentOrchestrator, runs: list[BackgroundRun]) -> None:
    for run in runs:
        await run.settled()
    await orchestrator.close()


def _has_password(url: str) -> bool:
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        return "@" in url.split("//", 1)[-1].split("/", 1)[0] and ":" in url.split("//", 1)[-1].split("@", 1)[0]
    try:
        return bool(conninfo_to_dict(url).get("password"))
    except Exception:
        return False  # unreadable: the cache says so, without quoting it


def _show(obj: Any) -> None:
    # Publishing the bundle directly skips IPython's formatter chain, which
    # would otherwise cost more than the cached call it displays.
    display(obj._repr_mimebundle_(), raw=True)


_magics: AgentMagics | None = None


def load(ipython: Any) -> None:
    global _magics
    _magics = AgentMagics(shell=ipython)
    ipython.register_magics(_magics)
    ipython.events.register("pre_run_cell", _magics._cell_started)
    ipython.events.register("post_run_cell", _magics._cell_ended)


def unload(ipython: Any) -> None:
    global _magics
    if _magics is None:
        return
    _magics.release()
    for event, callback in (("pre_run_cell", _magics._cell_started), ("post_run_cell", _magics._cell_ended)):
        try:
            ipython.events.unregister(event, callback)
        except ValueError:
            pass  # never registered (loaded into another shell)
    magics = ipython.magics_manager.magics
    for kind, names in (("cell", ("agent", "agents")), ("line", ("agent",))):
        for name in names:
            magics[kind].pop(name, None)
    ipython.magics_manager.registry.pop(type(_magics).__name__, None)
    _magics = None
