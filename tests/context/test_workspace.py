"""The read-only tools over a namespace: what they list and describe, what they never show, and the cache rule."""

import math
import types

import numpy as np
import pandas as pd
import pytest

from claude_force_nb import AgentResult
from claude_force_nb._context import Workspace, workspace_of
from claude_force_nb._context.show import MAX_CHARS
from claude_force_nb._context.snippets import CANNOT_ASK, DECLINED
from claude_force_nb._context.workspace import CELL, DESCRIBE, ERROR, LIST

ANTHROPIC_KEY = "sk-ant-api03-" + "Zx9_" * 20


def churn_frame(rows=20):
    return pd.DataFrame(
        {
            "tenure": range(rows),
            "plan": [("basic", "pro")[i % 2] for i in range(rows)],
            "churned": [i % 3 == 0 for i in range(rows)],
            "spend": [math.nan if i == 4 else i * 1.5 for i in range(rows)],
        }
    )


def area(radius: float) -> float:
    """The area of a circle."""
    return math.pi * radius**2


def test_the_listing_names_types_and_sizes_and_leaves_out_what_is_not_the_users():
    namespace = {
        "df": churn_frame(),
        "weights": np.zeros((3, 4)),
        "threshold": 0.7,
        "names": ["a", "b"],
        "area": area,
        "_private": 1,
        "In": ["", "x = 1"],
        "result": AgentResult("explainer", True, output="an answer"),
        "shown_by_ipython": 2,
    }
    listing = Workspace(namespace, hidden=["shown_by_ipython"]).read(LIST, {})
    assert listing.splitlines() == [
        "area: function",
        "df: pandas.DataFrame (20 rows x 4 columns)",
        "names: list (2 items, = ['a', 'b'])",
        "threshold: float (= 0.7)",
        "weights: numpy.ndarray (shape (3, 4), float64)",
    ]


def test_excluded_names_and_anything_that_looks_like_a_secret_are_never_shown():
    namespace = {
        "df": churn_frame(),
        "ANTHROPIC_API_KEY": "not-in-a-known-format-but-named-so",
        "note": f"remember {ANTHROPIC_KEY}",
        "raw_customers": pd.DataFrame({"email": ["a@example.com"]}),
        "settings": {"key": ANTHROPIC_KEY},
    }
    workspace = Workspace(namespace, exclude=["raw_*"])
    listing = workspace.read(LIST, {})
    assert "raw_customers" not in listing
    assert "ANTHROPIC_API_KEY: str (hidden: it looks like a secret)" in listing
    assert "note: str (hidden: it looks like a secret)" in listing
    everything = listing + "".join(workspace.read(DESCRIBE, {"name": n}) for n in namespace)
    assert "not-in-a-known-format" not in everything and ANTHROPIC_KEY not in everything
    assert "[redacted: an Anthropic API key]" in workspace.read(DESCRIBE, {"name": "settings"})
    assert workspace.read(DESCRIBE, {"name": "raw_customers"}) == "'raw_customers' is not available to look at."


def test_a_frame_is_described_by_shape_dtypes_nulls_statistics_and_first_rows():
    text = Workspace({"df": churn_frame()}).read(DESCRIBE, {"name": "df"})
    assert text.startswith("df: pandas.DataFrame\nshape: 20 rows x 4 columns\ndtypes:\n")
    assert "churned       bool" in text and "tenure       int64" in text
    assert "nulls per column:\n" in text and "spend      1" in text
    assert "describe():\n" in text and "mean" in text
    assert "first 5 rows:\n" in text and "basic" in text


def test_an_array_a_function_and_a_module_are_described_by_what_they_are():
    workspace = Workspace({"a": np.arange(12).reshape(3, 4), "area": area, "math": math})
    array = workspace.read(DESCRIBE, {"name": "a"})
    assert "shape: (3, 4), dtype int64, 12 elements" in array and "min, max, mean: 0, 11, 5.5" in array.replace(
        "np.int64(", ""
    ).replace("np.float64(", "").replace(")", "")
    function = workspace.read(DESCRIBE, {"name": "area"})
    assert "signature: area(radius: float) -> float" in function
    assert "docstring: The area of a circle." in function and "return math.pi * radius**2" in function
    module = workspace.read(DESCRIBE, {"name": "math"})
    assert "public names: " in module and "sqrt" in module and "_" + "_doc__" not in module


def test_cells_and_the_last_error_are_read_by_number():
    namespace = {"In": ["", "df = load()", "df.head()"], "Out": {2: churn_frame(3)}}
    workspace = Workspace(namespace, last_error=lambda: "Cell [3]:\n1/0\nZeroDivisionError: division by zero")
    assert workspace.read(CELL, {"number": 1}) == "Cell [1]:\ndf = load()"
    assert "3 rows x 4 columns" in workspace.read(CELL, {"number": 2, "part": "output"})
    assert workspace.read(CELL, {"number": 9}) == "No cell [9] in this session's history."
    assert workspace.read(CELL, {"number": 1, "part": "output"}).startswith("Cell [1] returned no value")
    assert "ZeroDivisionError" in workspace.read(ERROR, {})
    assert Workspace({}).read(CELL, {"number": 1}).startswith("This session keeps no cell history")


def test_every_result_is_bounded_and_says_what_it_cut():
    text = Workspace({"big": "x" * 100_000}).read(DESCRIBE, {"name": "big"})
    assert len(text) < MAX_CHARS + 200 and "more characters cut]" in text
    many = Workspace({f"v{i:03}": i for i in range(500)}).read(LIST, {})
    assert many.count("\n") == 200 and many.endswith("describe_variable reads any by name]")


def test_opaque_reprs_and_addresses_never_appear():
    class Plain:
        pass

    workspace = Workspace({"thing": Plain(), "things": [Plain(), Plain()]})
    listing = workspace.read(LIST, {})
    assert " at 0x" not in listing and listing.splitlines()[0] == "thing: test_workspace.Plain"
    assert "its repr only names its type and address" in workspace.read(DESCRIBE, {"name": "thing"})
    assert " at 0x" not in workspace.read(DESCRIBE, {"name": "things"})


class Hostile:
    """Everything an object can do to whoever looks at it."""

    def __init__(self, mode):
        self.mode = mode

    def __repr__(self):
        if self.mode == "raises":
            raise RuntimeError("repr refuses")
        if self.mode == "hangs":
            import time

            time.sleep(60)
        if self.mode == "huge":
            return "y" * 10_000_000
        return "Hostile()"

    def __len__(self):
        raise ValueError("no length for you")

    def __getattr__(self, name):  # claims every attribute: shape, dtypes, describe...
        return lambda *args, **kwargs: "lies"

    @property
    def __class__(self):
        return pd.DataFrame


@pytest.mark.timeout(60)
def test_hostile_objects_are_described_with_what_failed():
    workspace = Workspace({f"{mode}_one": Hostile(mode) for mode in ("raises", "hangs", "huge", "lies")})
    listing = workspace.read(LIST, {})
    assert "raises_one: test_workspace.Hostile" in listing.splitlines()  # only built-in containers tell a length
    raised = workspace.read(DESCRIBE, {"name": "raises_one"})
    assert "repr() raised RuntimeError: repr refuses" in raised and "DataFrame" not in raised
    assert "repr() did not finish within 2 s" in workspace.read(DESCRIBE, {"name": "hangs_one"})
    huge = workspace.read(DESCRIBE, {"name": "huge_one"})
    assert len(huge) < MAX_CHARS + 200 and "more characters cut" in huge
    lies = workspace.read(DESCRIBE, {"name": "lies_one"})
    assert lies.endswith("value: Hostile()") and "DataFrame" not in lies  # its claims were never asked


def test_a_type_whose_repr_hangs_is_asked_once_per_listing():
    asked = []

    class Remote:
        def __repr__(self):
            asked.append(1)
            import time

            time.sleep(60)

    listing = Workspace({f"table{i}": Remote() for i in range(5)}).read(LIST, {})
    assert listing.splitlines() == [f"table{i}: test_workspace.Remote" for i in range(5)]
    assert len(asked) == 1


def test_a_cached_answer_is_good_while_every_read_gives_what_the_model_saw():
    namespace = {"df": churn_frame()}
    workspace = Workspace(namespace)
    runs = [
        {"name": name, "input": arguments, "result": workspace.read(name, arguments)}
        for name, arguments in ((LIST, {}), (DESCRIBE, {"name": "df"}))
    ]
    runs.append({"name": "run_python", "input": {"code": "1"}, "result": "value: 1"})  # never made again
    assert workspace.sees_same(runs)
    namespace["unrelated"] = 1  # the listing the model read has changed
    assert not workspace.sees_same(runs)
    del namespace["unrelated"]
    namespace["df"] = churn_frame(22)
    assert not workspace.sees_same(runs)


def test_an_answer_given_without_the_snippet_it_asked_for_is_never_served_again():
    workspace = Workspace({})
    for refused in (DECLINED, CANNOT_ASK):
        assert not workspace.sees_same([{"name": "run_python", "input": {"code": "1"}, "result": refused}])


def test_context_and_allow_run_are_checked():
    assert workspace_of(None) is None and workspace_of(False) is None
    assert isinstance(workspace_of({"x": 1}), Workspace)
    assert workspace_of(True).namespace is vars(__import__("__main__"))
    assert workspace_of({"x": 1}, allow_run="yes").allow_run == "yes"
    given = Workspace({"x": 1}, allow_run="yes")
    assert workspace_of(given, allow_run=False).allow_run is False and given.allow_run == "yes"  # never changed
    assert [tool.__name__ for tool in workspace_of(given).tools()][-1] == "run_python"
    assert "run_python" not in [tool.__name__ for tool in workspace_of({"x": 1}).tools()]
    with pytest.raises(ValueError, match="allow_run needs context"):
        workspace_of(None, allow_run=True)
    for wrong in ("always", 1, 1.0, np.True_):
        with pytest.raises(ValueError, match="allow_run must be"):
            workspace_of({}, allow_run=wrong)
    with pytest.raises(TypeError, match="context must be True"):
        workspace_of(types.SimpleNamespace())


def test_a_secret_named_variable_is_redacted_wherever_else_it_shows_up():
    password = "hunter2hunter2"
    namespace = {
        "db_password": password,
        "In": ["", f'db_password = "{password}"', "connect(db_password)"],
        "Out": {},
        "settings": {"pw": password},
    }
    workspace = Workspace(namespace, last_error=lambda: f"ConnectionError: bad password {password!r}")
    texts = [workspace.read(CELL, {"number": 1}), workspace.read(DESCRIBE, {"name": "settings"})]
    texts += [workspace.read(ERROR, {}), workspace.read(LIST, {})]
    assert all(password not in text for text in texts)
    assert "[redacted: a secret-named variable]" in texts[0]


def test_the_kernels_own_copies_of_cell_sources_are_not_taken_for_secrets():
    namespace = {"In": ["", "total = price * quantity"], "_i1": "total = price * quantity", "_": "total"}
    assert Workspace(namespace).read(CELL, {"number": 1}) == "Cell [1]:\ntotal = price * quantity"


def test_a_cells_returned_value_is_refused_when_its_variable_is_hidden():
    patients = pd.DataFrame({"name": ["Ada"]})
    namespace = {"patients": patients, "Out": {3: patients, 4: 42}}
    workspace = Workspace(namespace, exclude=["patients"])
    assert "returned a value that is not shown" in workspace.read(CELL, {"number": 3, "part": "output"})
    assert "Ada" not in workspace.read(CELL, {"number": 3, "part": "output"})
    assert workspace.read(CELL, {"number": 4, "part": "output"}) == "Out[4]: int\n42"


def test_a_key_cut_short_by_a_preview_is_still_redacted_whole():
    key = "sk-ant-api03-" + "Ab3d" * 20
    listing = Workspace({"cfg": {"url": "https://api.example.com/v1/messages", "k": key}}).read(LIST, {})
    assert "sk-ant" not in listing and "Ab3d" not in listing


def test_reads_give_the_same_text_in_every_interpreter_and_take_the_arguments_the_tool_takes():
    workspace = Workspace({"tags": {"gamma", "alpha", "beta"}, "In": ["", "x = 1"]})
    assert workspace.read(LIST, {}).splitlines()[0] == "tags: set (3 items)"
    assert "{'alpha', 'beta', 'gamma'}" in workspace.read(DESCRIBE, {"name": "tags"})
    assert workspace.read(CELL, {"number": "1"}) == workspace.read(CELL, {"number": 1}) == "Cell [1]:\nx = 1"
    refused = {"name": "read_cell", "input": {"number": [1]}, "result": "Invalid arguments", "is_error": True}
    assert workspace.sees_same([refused])


def test_the_size_of_anything_but_a_builtin_container_is_never_asked():
    asked = []

    class Lazy:
        def __len__(self):
            asked.append("len")  # a lazy frame would compute itself here
            return 3

    assert Workspace({"lazy": Lazy()}).read(LIST, {}) == "lazy: test_workspace.Lazy"
    assert asked == []
