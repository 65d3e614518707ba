"""The models this package knows, in one table, and names as people type them resolved in one place.

Each :class:`ModelRecord` holds what the package needs about a model: its
alias, family, dated snapshots, whether it takes sampling parameters, the
shortest prompt its cache takes, its price and where it is in Anthropic's
lifecycle. Everything else (the price table, the local server's rules, the
deprecation notes) is derived from it, so a new model is one row here.

Every place a model can be named (the magic line, ``--models``, agent front
matter, ``%config``, the environment, the Python API) goes through
:func:`resolve_model`, so ``-m opus`` sends the id the API knows. A name that
is neither known nor shaped like a Claude model id is an error naming the
closest known one; a ``claude-…`` id that is not in the table yet is sent as
typed, with a note, so new models work before this table knows them.
"""

from __future__ import annotations

import datetime
import difflib
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from ._config import DEFAULT_MODEL
from ._errors import ClaudeForceWarning, ModelNotFoundError

# US dollars per million input and output tokens.
Rate = tuple[float, float]


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """What the package knows about one model, from Anthropic's model, pricing and deprecation pages."""

    id: str
    family: str  # opus, sonnet, haiku, fable or mythos
    min_cacheable_tokens: int  # the shortest prompt prefix its prompt cache takes ("Cache limitations")
    takes_sampling: bool = False  # temperature or top_p (one at a time) and top_k; the others answer them with 400
    price: Rate | None = None  # None: not published, so costs show as unknown rather than as a guess
    long_prompt: tuple[int, Rate] | None = None  # past this many prompt tokens, the whole call bills at this rate
    alias: str | None = None  # the short name that resolves here (Claude Code's opus, sonnet, haiku)
    snapshots: tuple[str, ...] = ()  # dated ids of the same model, which cost and behave the same
    # Anthropic gives a model a retirement date when it deprecates it: a date here means
    # deprecated, and from that day on the API refuses the model.
    retires: datetime.date | None = None
    replacement: str | None = None  # what Anthropic recommends moving to, once deprecated

    @property
    def ids(self) -> tuple[str, ...]:
        """Every id the API serves this model under."""
        return (self.id, *self.snapshots)

    def lifecycle(self, today: datetime.date) -> str:
        """``active``, ``deprecated`` (a retirement date is set) or ``retired`` (the date has passed)."""
        if self.retires is None:
            return "active"
        return "retired" if today >= self.retires else "deprecated"


def _date(text: str) -> datetime.date:
    return datetime.date.fromisoformat(text)


# Newest first. Mythos Preview's and Fable and Mythos 5.2's cache minimums are not published
# yet; they take their family's. Deprecations and retirement dates are Anthropic's.
MODELS: tuple[ModelRecord, ...] = (
    ModelRecord("claude-fable-5-2", "fable", 512),
    ModelRecord("claude-mythos-5-2", "mythos", 512),
    ModelRecord("claude-opus-5-5", "opus", 512, price=(4.0, 20.0)),
    ModelRecord("claude-sonnet-5-5", "sonnet", 512, price=(2.0, 10.0)),
    ModelRecord("claude-haiku-5-5", "haiku", 512, price=(0.10, 0.50), long_prompt=(100_000, (0.50, 2.50))),
    ModelRecord("claude-fable-5-1", "fable", 512, price=(10.0, 50.0)),
    ModelRecord("claude-mythos-5-1", "mythos", 512),
    ModelRecord("claude-fable-5", "fable", 512),
    ModelRecord("claude-mythos-5", "mythos", 512),
    ModelRecord("claude-opus-5", "opus", 512, price=(5.0, 25.0)),
    ModelRecord("claude-sonnet-5", "sonnet", 1024, price=(2.0, 10.0)),
    ModelRecord("claude-opus-4-8", "opus", 1024),
    ModelRecord("claude-opus-4-7", "opus", 2048, price=(5.0, 25.0)),
    ModelRecord("claude-mythos-preview", "mythos", 2048, retires=_date("2026-06-30"), replacement="claude-mythos-5-2"),
    # The generation the aliases point at: the newest that still takes sampling parameters.
    ModelRecord("claude-opus-4-6", "opus", 4096, takes_sampling=True, price=(5.0, 25.0), alias="opus"),
    ModelRecord("claude-sonnet-4-6", "sonnet", 1024, takes_sampling=True, price=(3.0, 15.0), alias="sonnet"),
    ModelRecord(
        "claude-haiku-4-5",
        "haiku",
        4096,
        takes_sampling=True,
        price=(1.0, 5.0),
        alias="haiku",
        snapshots=("claude-haiku-4-5-20251001",),
    ),
    ModelRecord(
        "claude-opus-4-5",
        "opus",
        4096,
        takes_sampling=True,
        price=(5.0, 25.0),
        snapshots=("claude-opus-4-5-20251101",),
        retires=_date("2027-01-22"),
        replacement="claude-opus-4-6",
    ),
    ModelRecord(
        "claude-sonnet-4-5",
        "sonnet",
        1024,
        takes_sampling=True,
        price=(3.0, 15.0),
        snapshots=("claude-sonnet-4-5-20250929",),
        retires=_date("2026-11-30"),
        replacement="claude-sonnet-4-6",
    ),
)

RECORDS = {model_id: record for record in MODELS for model_id in record.ids}
# Derived views, for the modules that need only one fact.
KNOWN_MODELS = tuple(RECORDS)
REJECTS_SAMPLING = frozenset(model_id for model_id, record in RECORDS.items() if not record.takes_sampling)
MINIMUM_CACHEABLE_TOKENS = {model_id: record.min_cacheable_tokens for model_id, record in RECORDS.items()}
DEFAULT_MINIMUM_CACHEABLE_TOKENS = 1024
ALIASES = {record.alias: record.id for record in MODELS if record.alias}
# Front matter only: "inherit" means the caller's default model.
INHERIT = "inherit"

_CLAUDE_ID = re.compile(r"claude-[a-z0-9]+(?:-[a-z0-9]+)*")
_noted: set[str] = set()
_lifecycle_noted: set[str] = set()


def record_of(model: str) -> ModelRecord | None:
    """The table's record for an API id (a dated snapshot finds its model's), or None."""
    return RECORDS.get(model)


def resolve_model(name: str) -> str:
    """The API id for ``name``: an alias, a known id, or a ``claude-…`` id; else :class:`ModelNotFoundError`."""
    typed = name
    name = name.strip().lower()
    if name in ALIASES:
        return ALIASES[name]
    if name in RECORDS:
        return name
    # "claude-opus-4.6", "opus-4-6", "Sonnet 4.6": the same model under the API's spelling.
    spelled = re.sub(r"[\s.]+", "-", name)
    if not spelled.startswith("claude-"):
        spelled = "claude-" + spelled
    if spelled in RECORDS:
        return spelled
    close = _closest(spelled)
    if _CLAUDE_ID.fullmatch(name):
        if name not in _noted:
            _noted.add(name)
            hint = f" (did you mean {close!r}?)" if close else ""
            warnings.warn(
                f"Model {name!r} is not in claude-force-nb's table{hint}; it is sent as typed, and its cost "
                "shows as unknown.",
                ClaudeForceWarning,
                stacklevel=2,
            )
        return name
    raise ModelNotFoundError(typed, close)


def lifecycle_note(model: str, today: datetime.date) -> str | None:
    """What to tell someone about to call a deprecated or retired ``model``; None for an active one."""
    record = RECORDS.get(model)
    if record is None or record.retires is None:
        return None
    move = f"move to {record.replacement}" if record.replacement else f"move to a current model such as {DEFAULT_MODEL}"
    if record.lifecycle(today) == "retired":
        return f"Model {model} was retired on {record.retires:%Y-%m-%d} and the API refuses it; {move}."
    return f"Model {model} is deprecated and reaches end of life on {record.retires:%Y-%m-%d}; {move}."


def utc_today() -> datetime.date:
    """Today where retirement dates are kept: the API retires a model at the same moment everywhere."""
    return datetime.datetime.now(datetime.timezone.utc).date()


def note_lifecycle(model: str, today: Callable[[], datetime.date] = utc_today) -> None:
    """Warn, once per model and process, that ``model`` is deprecated or retired (the SDK's warning is hidden)."""
    if model in _lifecycle_noted:
        return
    _lifecycle_noted.add(model)
    note = lifecycle_note(model, today())
    if note is not None:
        warnings.warn(note, ClaudeForceWarning, stacklevel=3)


def _closest(name: str) -> str | None:
    # Compared without the shared "claude-" prefix, which would make every name look close.
    short = {model.removeprefix("claude-"): model for model in KNOWN_MODELS} | {alias: alias for alias in ALIASES}
    close = difflib.get_close_matches(name.removeprefix("claude-"), short, n=1, cutoff=0.6)
    return short[close[0]] if close else None
