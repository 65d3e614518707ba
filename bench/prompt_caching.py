"""Input cost of a sweep sharing one long system prompt, with prompt caching and without.

Run: python bench/prompt_caching.py [--items 100] [--prompt-tokens 3000] [--concurrency 20] [--repeats 3]

One agent whose system prompt is a code-review style guide of about
``--prompt-tokens`` tokens (measured with the token-counting endpoint) reviews
``--items`` snippets through ``execute_multiple`` on claude-sonnet-4-6, with
the response cache off so every call reaches the local Messages API server
(in process, 50 ms per answer). Both sides start from an empty prompt cache
on the server:

- prompt caching (the default): the shared system prompt is marked, one call
  writes it and the others read it.
- baseline: ``prompt_caching=False``, every call pays for the whole prompt.

Input cost is priced from the usage the server reported (fresh input, cache
writes at 1.25x, reads at 0.1x); the sides alternate order over ``--repeats``
runs and the table shows medians.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from claude_force_nb import AsyncAgentOrchestrator
from claude_force_nb._agents import AgentRegistry
from claude_force_nb._pricing import Usage, cost_of
from claude_force_nb.simulator import LocalServer

MODEL = "claude-sonnet-4-6"
LATENCY = 0.05
AGENT = "style-reviewer"
TARGET = 0.2  # input cost with prompt caching, as a fraction of the cost without

INTRO = (
    "You are the code reviewer for a team that ships a Python and TypeScript product used by paying customers. "
    "Review the change you are given against the house style guide below. For every problem, quote the line, name "
    "the rule by its number, say why it matters here, and propose the smallest fix. Do not restate what the code "
    "does, do not praise, and do not invent problems to seem thorough: if the change is fine, say so in one line."
)

GUIDE = {
    "Correctness": [
        "A function returns one kind of value. A lookup that may fail returns None or raises a named error; it never "
        "returns an empty string, a zero or a sentinel object that the caller must remember to compare against.",
        "Off-by-one errors hide in slices, ranges and pagination. When a boundary is computed, check the first and "
        "the last element by hand and ask for a test that covers an empty input and an input of exactly one item.",
        "Floating-point money is a bug. Amounts are integers in the smallest unit or Decimal values with an explicit "
        "rounding mode, and the rounding happens once, at the edge where a value is shown or charged.",
        "Time zones are explicit. Store and compare aware datetimes in UTC, convert only for display, and never call "
        "the naive now() of the host: the servers and the laptops of the team disagree about where they are.",
        "Mutable default arguments, shared class attributes and module-level lists that a function appends to are "
        "state in disguise. Flag them unless the sharing is the point and a comment says so.",
    ],
    "Errors": [
        "Catch the narrowest exception that the code can handle. A bare except, or except Exception without "
        "re-raising, needs a comment that names the failures it swallows and explains why losing them is safe.",
        "Keep the original exception. Raise the new one from the old so the traceback shows both, and never flatten "
        "an error to its string: the type, the status code and the request id are what the on-call engineer needs.",
        "An error message names the fix. 'Invalid config' is not a message; 'timeout_seconds must be positive, got "
        "-1; set it in settings.toml or pass --timeout' is.",
        "Retries belong in one layer. If the HTTP client already retries, the caller must not retry again around it; "
        "stacked retries turn a brief outage into a storm of requests and a timeout measured in minutes.",
        "Cleanup runs on every path. Files, sockets, locks and temporary directories are opened with a context "
        "manager or closed in a finally block, including when the task is cancelled.",
    ],
    "Naming": [
        "Names say what a value is, not how it was computed: active_users, not filtered_list2. A boolean reads as a "
        "statement (is_ready, has_children), and a function that returns a boolean reads as a question.",
        "Units go in the name when the type does not carry them: timeout_seconds, size_bytes, price_cents. A bare "
        "timeout or delay invites someone to pass milliseconds where seconds were meant.",
        "Avoid abbreviations that are not already in the domain. Write request and response, not req and resp; keep "
        "url, id and html, which everyone reads without thinking.",
        "A module, a class and a function each have one name for one concept. If the code says account in one file, "
        "customer in the next and user in the third for the same thing, ask for one word and a rename.",
    ],
    "Functions and modules": [
        "One module holds one concept and stays under about four hundred lines. When a file grows past that, look "
        "for the second concept hiding in it and ask for it to move out, with its tests.",
        "A function does one thing at one level of abstraction. If its body mixes parsing, business rules and I/O, "
        "suggest splitting it so the rules can be tested without a network or a disk.",
        "Keyword-only arguments for anything a reader could not guess from position. A call like "
        "send(msg, True, False, 3) is a review comment; send(msg, urgent=True, retry=3) is not.",
        "Dependencies point one way. The domain code never imports the web handlers, storage never imports the "
        "services that use it, and a type-only import still counts: an import cycle is a finding.",
        "Data that crosses a module boundary has a name: a dataclass or a NamedTuple with typed fields. Indexing "
        "into a tuple or a dict by position or by magic key across modules is not allowed.",
    ],
    "Concurrency": [
        "Async code never blocks the event loop. Disk access, hashing of large inputs and calls into synchronous "
        "libraries go through a thread with asyncio.to_thread, and a review should point at every time.sleep.",
        "Every task that is created is awaited, cancelled or handed to a TaskGroup. A fire-and-forget task loses "
        "its exceptions and keeps running after the caller has returned.",
        "Concurrency limits are explicit and configurable. A semaphore sized by a named constant, with the value "
        "in the settings, beats an unbounded gather over ten thousand items.",
        "Shared state touched from threads is guarded by one lock whose scope is visible. Check-then-act sequences, "
        "such as testing a dict for a key and inserting it, happen under the same lock.",
        "Cancellation is a normal outcome. Code that catches CancelledError must re-raise it after cleaning up, or "
        "the task that asked for cancellation will wait forever.",
    ],
    "Time and configuration": [
        "Inject the clock. A class that computes TTLs, deadlines or latencies takes a timer argument that defaults "
        "to time.monotonic, so tests can tick a fake clock instead of sleeping.",
        "Configuration flows one way: command-line flag, then user configuration, then environment, then default. "
        "Only one module reads os.environ; everything else receives values as arguments.",
        "Defaults are module-level constants with a DEFAULT_ prefix and a comment that says where the number comes "
        "from. A literal 30 buried in a function signature is a question the reviewer must ask.",
        "Secrets never have defaults. A missing key raises an error that says where to put it; it does not fall "
        "back to a placeholder that works in development and silently signs production data.",
    ],
    "Security": [
        "Untrusted input is parsed, not sanitised. Reject what does not match the expected shape with a clear error "
        "instead of rewriting it with a regular expression that guesses what the user meant.",
        "Compare secrets and signatures with hmac.compare_digest. An ordinary equality check leaks, through timing, "
        "how many leading bytes matched.",
        "Sign canonical bytes once, and bind the key, the expiry and the value together in what is signed, so that "
        "a valid row cannot be copied under another key or kept past its expiry.",
        "Files that hold secrets are created with mode 0600 before anything is written to them, not chmod-ed "
        "afterwards; the window in between is enough for another user on a shared machine.",
        "Never log credentials, full request bodies or personal data. Redact authorization headers at the point of "
        "logging, and check that exception messages do not echo a token back.",
    ],
    "Performance": [
        "Measure before optimising, and put the measurement in the pull request: the command, the machine, the "
        "median of several runs and the ratio against a baseline measured in the same run.",
        "Avoid quadratic loops over data that grows with the customer: membership tests against a list inside a "
        "loop, repeated string concatenation, and queries issued once per row.",
        "Caches have a bound and an eviction policy. Use the standard library or cachetools rather than a "
        "hand-written LRU, and say in a comment what happens when an entry is stale.",
        "Batch network calls where the API allows it, and reuse one client with a connection pool. Creating a new "
        "HTTP client per request throws away keep-alive and TLS sessions.",
    ],
    "Tests": [
        "Tests mirror modules: the tests for a module live in tests/test_<module>.py and assert behaviour that a "
        "user could observe, not the private calls that produce it.",
        "A test that sleeps is a slow, flaky test. Tick an injected clock, or wait on an event with a timeout that "
        "only matters when the test is about to fail anyway.",
        "Use a real server in a thread for HTTP behaviour. Mocks of the client library drift from the real thing; "
        "a local server with a fault queue and a request log catches what they miss.",
        "Each test states one fact in its name, in plain words: "
        "test_a_missing_key_names_the_environment_variable, not test_config_3.",
        "Shared fixtures live in conftest.py: an isolated home directory per test, a running server, a shell. A "
        "test never reads or writes the developer's real home directory.",
    ],
    "Data and persistence": [
        "Schema changes ship as migrations that run forwards on a copy of production data and can be rolled back. "
        "A migration that rewrites a large table in one transaction needs a plan for the lock it takes.",
        "Queries are parameterised. A value formatted into SQL with an f-string is a finding, even when the value "
        "comes from our own code today: tomorrow someone will pass it through from a request.",
        "A corrupt or unreadable local database is renamed aside and replaced, with a warning that says where the "
        "old file went; the program does not crash on start-up, and it does not delete the evidence.",
        "Writes that must happen together happen in one transaction. Two separate commits with a network call in "
        "between will, one day, leave the first without the second.",
    ],
    "Logging and observability": [
        "Log events, not prose: one line per event with a stable message and the identifiers that let someone find "
        "the request again, such as the request id, the user id and the duration in milliseconds.",
        "Choose the level for the reader at three in the morning. Errors need action, warnings need a look tomorrow, "
        "and info is for the few events that tell the story of a request; the rest is debug.",
        "Metrics have units and bounded labels. A label whose values come from user input, such as a URL path with "
        "ids in it, creates a new time series per user and takes the monitoring system down.",
        "Warnings shown to users are emitted once per cause, through the warnings module or the logger, and they "
        "say what to change to make them go away.",
    ],
    "Public API": [
        "The public API is the names in __all__, and a test asserts that the exported names are exactly the "
        "intended ones. Everything else lives in private modules whose names start with an underscore.",
        "Changing a public signature needs a deprecation path: accept the old form, warn once with the new spelling, "
        "and remove it only in the next major version.",
        "Return values are stable types. Do not return a list in one branch and a generator in another, or a dict "
        "whose keys depend on which options were set.",
        "Magics, widgets and command-line tools are thin adapters over the async core. Logic that does no I/O "
        "belongs in the core, where both the sync and the async callers share it.",
    ],
    "Documentation and comments": [
        "Docstrings are short: one line that says what the thing is or does, then, only if needed, a paragraph on "
        "what is surprising. Parameters are documented when their meaning is not obvious from name and type.",
        "Comments explain why, not what. A comment that restates the next line should be deleted; one that explains "
        "why the obvious approach does not work should be kept and kept current.",
        "No changelogs, ticket numbers, emoji or markers such as FIXED or NEW in code. History belongs in version "
        "control, where it stays attached to the change that made it.",
        "Examples in documentation run. A code block in the README or a notebook cell is executed by the test suite, "
        "and its output is checked, so it cannot silently rot.",
    ],
    "Dependencies and packaging": [
        "A new dependency needs a reason in the pull request: what it does that the standard library does not, its "
        "licence, how maintained it is, and what it pulls in transitively.",
        "Pin ranges, not exact versions, in the library's metadata; pin exact versions only in the lock file used "
        "for the application's deployment.",
        "Optional features live behind extras. Importing the package must not import Jupyter, a browser driver or a "
        "plotting library unless the feature that needs them is used.",
        "Version constraints on Python itself are deliberate. Using a syntax feature newer than the declared "
        "minimum is a bug, even when the continuous integration happens to run a newer interpreter.",
    ],
}

SNIPPETS = [
    "def total(prices): return sum(p * 1.2 for p in prices)",
    "async def fetch_all(urls): return [await get(u) for u in urls]",
    "try:\n    data = json.load(f)\nexcept Exception:\n    data = {}",
    "def find_user(users, name):\n    for u in users:\n        if u.name == name: return u\n    return ''",
    "def add_tag(tag, tags=[]):\n    tags.append(tag)\n    return tags",
    "timeout = int(os.environ.get('TIMEOUT', 30))",
    "if token == request.headers['x-token']:\n    allow()",
    "expires = datetime.now() + timedelta(minutes=5)",
    "for row in rows:\n    if row.id in seen_ids_list: continue\n    seen_ids_list.append(row.id)",
    "def send(msg, a, b, n): ...\nsend(msg, True, False, 3)",
]


def style_guide(target_tokens: int) -> str:
    """The guide's rules, numbered, until the text is about ``target_tokens`` long (four characters a token).

    Past the end of the guide, the rules come round again restated for one more language each time.
    """
    languages = ["Python", "TypeScript", "Go", "SQL migrations", "shell scripts"]
    lines, size, number, lap = [INTRO], len(INTRO), 0, 0
    while size < 4 * target_tokens:
        scope = "" if lap == 0 else f" ({languages[(lap - 1) % len(languages)]})"
        for section, rules in GUIDE.items():
            for position, rule in enumerate(rules):
                if size >= 4 * target_tokens:
                    return "\n".join(lines)
                number += 1
                added = ([f"\n## {section}{scope}"] if position == 0 else []) + [f"{number}. {rule}"]
                lines += added
                size += sum(len(line) + 1 for line in added)
        lap += 1
    return "\n".join(lines)


def tasks(count: int) -> list[tuple[str, str]]:
    return [(AGENT, f"Item {i}: review this change.\n\n{SNIPPETS[i % len(SNIPPETS)]}") for i in range(count)]


def write_agent(home: Path, prompt: str) -> AgentRegistry:
    folder = home / ".claude" / "agents"
    folder.mkdir(parents=True)
    (folder / f"{AGENT}.md").write_text(f"---\nname: {AGENT}\nmodel: {MODEL}\n---\n{prompt}\n")
    return AgentRegistry(cwd=home, user_home=home / "home")


@dataclasses.dataclass
class Side:
    """One run of the sweep: tokens the server reported, dollars and seconds."""

    fresh: int
    written: int
    read: int
    wall: float
    total_cost: float
    sent: int

    @property
    def input_cost(self) -> float:
        cost = cost_of(MODEL, Usage(input=self.fresh, cache_write_5m=self.written, cache_read=self.read))
        assert cost is not None, f"{MODEL} has no price"
        return cost


async def measure_prompt(server: LocalServer, agents: AgentRegistry) -> tuple[int, int]:
    """Tokens of the system prompt and of one whole request, from the token-counting endpoint."""
    async with AsyncAgentOrchestrator(
        base_url=server.url, api_key="bench", enable_cache=False, agents=agents
    ) as orchestrator:
        request = orchestrator.prepare(AGENT, tasks(1)[0][1]).request
        whole = await orchestrator.backend.count_tokens(request)
        task_only = await orchestrator.backend.count_tokens(dataclasses.replace(request, system=None))
    return whole - task_only, whole


async def sweep(server: LocalServer, agents: AgentRegistry, args: argparse.Namespace, *, caching: bool) -> Side:
    server.reset()  # the server's prompt cache starts empty
    async with AsyncAgentOrchestrator(
        base_url=server.url,
        api_key="bench",
        enable_cache=False,
        agents=agents,
        max_concurrent=args.concurrency,
        prompt_caching=caching,
        timeout_seconds=600,
    ) as orchestrator:
        start = time.perf_counter()
        results = await orchestrator.execute_multiple(tasks(args.items))
        wall = time.perf_counter() - start
    failed = [r for r in results if not r.success]
    assert not failed, f"{len(failed)} calls failed, the first with {failed[0].error!r}"
    return Side(
        fresh=sum(r.input_tokens for r in results),
        written=sum(r.cache_write_tokens for r in results),
        read=sum(r.cache_read_tokens for r in results),
        wall=wall,
        total_cost=sum(r.cost or 0.0 for r in results),
        sent=sum(r.path == "/v1/messages" for r in server.log),
    )


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp, LocalServer(latency=LATENCY, log_limit=10 * args.items) as server:
        agents = write_agent(Path(tmp), style_guide(args.prompt_tokens))
        system_tokens, whole = await measure_prompt(server, agents)
        print(
            f"python {sys.version.split()[0]}; {args.items} items, {MODEL}, -c {args.concurrency}, "
            f"{LATENCY * 1e3:g} ms per answer, medians of {args.repeats} runs\n"
            f"system prompt: {system_tokens:,} tokens by count_tokens (one whole request: {whole:,})\n"
        )
        runs: dict[bool, list[Side]] = {True: [], False: []}
        for i in range(args.repeats):
            for caching in (True, False) if i % 2 == 0 else (False, True):
                side = await sweep(server, agents, args, caching=caching)
                runs[caching].append(side)
                print(
                    f"  run {i + 1}, {'with' if caching else 'without'} prompt caching: {side.sent} calls sent, "
                    f"input ${side.input_cost:.4f}, {side.wall:.2f} s"
                )
    report(runs)


def report(runs: dict[bool, list[Side]]) -> None:
    def median(caching: bool, value: Callable[[Side], float]) -> float:
        return statistics.median(value(side) for side in runs[caching])

    baseline = median(False, lambda s: s.input_cost)
    baseline_total = median(False, lambda s: s.total_cost)
    print(
        "\n| side | fresh input tokens | cache writes | cache reads | input cost | × baseline cost | wall time "
        "| cost with output (× baseline) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for caching, name in ((True, "prompt caching (default)"), (False, "`prompt_caching=False` (baseline)")):
        cost = median(caching, lambda s: s.input_cost)
        total = median(caching, lambda s: s.total_cost)
        print(
            f"| {name} | {median(caching, lambda s: s.fresh):,.0f} | {median(caching, lambda s: s.written):,.0f} "
            f"| {median(caching, lambda s: s.read):,.0f} | ${cost:.4f} | {cost / baseline:.3f} "
            f"| {median(caching, lambda s: s.wall):.2f} s | ${total:.4f} ({total / baseline_total:.3f}×) |"
        )
    ratio = median(True, lambda s: s.input_cost) / baseline
    print(f"\n- input cost ≤ {TARGET:g}× without prompt caching: {'met' if ratio <= TARGET else 'not met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--prompt-tokens", type=int, default=3000, help="about how long the system prompt is")
    parser.add_argument("--concurrency", "-c", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ["NO_PROXY"] = ",".join(filter(None, (os.environ.get("NO_PROXY"), "127.0.0.1")))
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
