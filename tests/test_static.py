"""Static checks run by the test command: ruff (lint and format), mypy, and the import-linter contracts.

Their configuration is in pyproject.toml.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.timeout(300)


def run(tool: str, *args: str) -> subprocess.CompletedProcess:
    executable = BIN / tool if (BIN / tool).exists() else shutil.which(tool)
    if executable is None:
        pytest.fail(f"{tool} is not installed: pip install -e '.[test]'")
    return subprocess.run([str(executable), *args], cwd=ROOT, capture_output=True, text=True, timeout=280)


@pytest.mark.parametrize(
    "command",
    [
        ("ruff", "check", "--no-cache", "."),
        ("ruff", "format", "--check", "--no-cache", "."),
        ("mypy",),
        ("lint-imports",),
    ],
    ids=["ruff-check", "ruff-format", "mypy", "import-linter"],
)
def test_static_check_is_clean(command):
    result = run(*command)
    assert result.returncode == 0, result.stdout + result.stderr
