"""The shape of the package: a core, a cache wing and a notebook wing, with imports pointing one way.

The layer contract itself is in pyproject.toml (import-linter), run by
test_static.py; these tests state the rules that matter most directly.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

import grimp
import pytest

PACKAGE = "claude_force_nb"
ROOT = Path(__file__).resolve().parents[1]
# The notebook layer and the package's front door may use IPython; nothing else may.
NOTEBOOK_SIDE = (f"{PACKAGE}._notebook", f"{PACKAGE}.__main__", PACKAGE)
NOTEBOOK_STACK = ("IPython", "ipywidgets", "nest_asyncio2", "ipykernel", "traitlets")


@pytest.fixture(scope="module")
def graph():
    # Imports inside functions and under TYPE_CHECKING count too.
    return grimp.build_graph(PACKAGE, include_external_packages=True, cache_dir=None)


def own_modules(graph) -> list[str]:
    return sorted(m for m in graph.modules if m == PACKAGE or m.startswith(PACKAGE + "."))


def test_no_module_imports_one_that_imports_it_back(graph):
    cycles = []
    for importer in own_modules(graph):
        for imported in graph.find_modules_directly_imported_by(importer):
            if imported.startswith(PACKAGE) and graph.chain_exists(importer=imported, imported=importer):
                cycles.append((*graph.find_shortest_chain(importer=imported, imported=importer), imported))
    assert cycles == []


def test_the_core_and_the_cache_never_reach_the_notebook_stack(graph):
    reached = {}
    for module in own_modules(graph):
        if module in NOTEBOOK_SIDE or module.startswith(NOTEBOOK_SIDE[0] + "."):
            continue
        for external in NOTEBOOK_STACK:
            if external in graph.modules and graph.chain_exists(importer=module, imported=external):
                reached[module] = graph.find_shortest_chain(importer=module, imported=external)
    assert reached == {}


def test_the_cache_never_imports_the_orchestrator_or_the_notebook_layer(graph):
    for upper in (f"{PACKAGE}._orchestrator", f"{PACKAGE}._sweep", f"{PACKAGE}._api", f"{PACKAGE}._notebook"):
        assert not graph.chain_exists(importer=f"{PACKAGE}._cache", imported=upper, as_packages=True), upper


def test_the_layer_contract_names_every_module_and_wing():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(contract["layers"] for contract in contracts if contract["type"] == "layers")
    named = {name.strip() for layer in layers for name in layer.split("|")}
    package = ROOT / PACKAGE
    present = {f"{PACKAGE}.{path.stem}" for path in package.glob("*.py") if path.name != "__init__.py"}
    present |= {f"{PACKAGE}.{path.parent.name}" for path in package.glob("*/__init__.py")}
    assert present - named == set()
    assert named - present == set()


@pytest.mark.parametrize(
    "code",
    [
        "import claude_force_nb",
        "import claude_force_nb._notebook.magics",
        "from claude_force_nb import AsyncAgentOrchestrator; AsyncAgentOrchestrator(cache_path='cache.sqlite')",
    ],
)
def test_the_sdk_is_not_imported_until_a_request_needs_it(code):
    check = f"{code}\nimport sys\nprint(sorted(m for m in ('anthropic', 'ipywidgets', 'pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
