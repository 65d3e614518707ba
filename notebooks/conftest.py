"""nbval runs each tutorial in a kernel that starts with the environment from execute.py.

nbval starts one kernel per notebook and the kernel inherits this process's
environment, so the hook below swaps that environment in while the kernel
starts and restores it straight after: a key, cache or IPython profile on
the machine never reaches the notebooks, and nothing leaks into other tests.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from execute import kernel_environment

_scratch_dirs: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    # pyproject.toml names the sanitize file relative to the repository root;
    # resolve it there so that pytest also works when started elsewhere.
    value = config.getoption("nbval_sanitize_with", None)
    if value and not os.path.isabs(value) and not os.path.exists(value):
        config.option.nbval_sanitize_with = str(config.rootpath / value)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    notebook = item.parent
    if item.path.suffix != ".ipynb" or getattr(notebook, "kernel", True) is not None:
        return (yield)  # not a notebook cell, or its kernel is already running
    scratch = tempfile.mkdtemp(prefix="claude-force-nb-notebook-")
    _scratch_dirs.append(scratch)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(kernel_environment(Path(item.path), Path(scratch), saved))
    try:
        return (yield)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def pytest_unconfigure(config: pytest.Config) -> None:
    for scratch in _scratch_dirs:
        shutil.rmtree(scratch, ignore_errors=True)
