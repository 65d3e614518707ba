"""binder/ as repo2docker uses it: the environment it describes, built and used.

The first test installs binder/requirements.txt into a fresh virtualenv from
the repository root, as the Dockerfile repo2docker writes does, and runs the
tutorials there with nbval. The second asks repo2docker itself for that
Dockerfile (no Docker needed) and checks it. Both need the package index;
deselect them with ``-m "not binder"``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
# Read at import, before the isolated_env fixture points HOME at a temporary
# directory: pip needs the real one for its cache and configuration.
REAL_HOME = os.environ.get("HOME", "")
# The versions the suite was last green with: a registry release cannot change what this tests.
CONSTRAINTS = ROOT / "constraints.txt"
REPO2DOCKER = "jupyter-repo2docker==2026.4.0"

pytestmark = [pytest.mark.binder, pytest.mark.timeout(600)]


def runtime_version() -> str:
    text = (BINDER / "runtime.txt").read_text().strip()
    match = re.fullmatch(r"python-(\d+\.\d+)", text)
    assert match, f"binder/runtime.txt should read python-X.Y, not {text!r}"
    return match.group(1)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH")}
    env.update(HOME=REAL_HOME, PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


def run(*args: object, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, args))}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def binder_python(tmp_path_factory) -> Path:
    """A fresh virtualenv with binder/requirements.txt installed from the repository root."""
    base = shutil.which(f"python{runtime_version()}") or sys.executable
    venv = tmp_path_factory.mktemp("binder") / "venv"
    run(base, "-m", "venv", venv, env=clean_env())
    python = venv / "bin" / "python"
    # Without the package index there is nothing to build; that is a machine's limit, not a failure here.
    probe = subprocess.run(
        [python, "-m", "pip", "download", "-q", "--no-deps", "-d", venv.parent / "probe", "cachetools"],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(),
    )
    if probe.returncode != 0:
        pytest.skip(f"the package index cannot be reached: {probe.stderr.strip()[-300:]}")
    run(python, "-m", "pip", "install", "-q", "-r", BINDER / "requirements.txt", env=clean_env())
    return python


def test_runtime_is_a_python_the_package_supports():
    major, minor = map(int, runtime_version().split("."))
    assert (major, minor) >= (3, 10)
    assert not (BINDER / "postBuild").exists() or "set -e" in (BINDER / "postBuild").read_text()


def test_tutorials_pass_in_the_binder_environment(binder_python):
    run(
        binder_python,
        "-m",
        "pip",
        "install",
        "-q",
        "-c",
        CONSTRAINTS,
        "pytest",
        "pytest-timeout",
        "nbval",
        env=clean_env(),
    )
    # The same nbval options and sanitize file as the main run (pyproject.toml), with this environment's kernel.
    result = run(
        binder_python, "-m", "pytest", "notebooks", "-q", "-p", "no:cacheprovider", env=clean_env(), timeout=400
    )
    assert re.search(r"\b\d+ passed\b", result.stdout)


def test_repo2docker_builds_the_expected_dockerfile(binder_python):
    install = subprocess.run(
        [binder_python, "-m", "pip", "install", "-q", REPO2DOCKER],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_env(),
    )
    if install.returncode != 0:
        pytest.skip(f"jupyter-repo2docker could not be installed: {install.stderr.strip()[-300:]}")
    result = run(binder_python.parent / "repo2docker", "--no-build", "--no-run", "--debug", ROOT, env=clean_env())
    log = result.stdout + result.stderr
    assert f"Building conda environment for python={runtime_version()}" in log
    dockerfile = log[log.index("FROM ") :]
    # One environment: the kernel's packages sit beside JupyterLab, whose widget front end the panel needs.
    assert "ENV KERNEL_PYTHON_PREFIX=${NB_PYTHON_PREFIX}" in dockerfile
    pip = '${KERNEL_PYTHON_PREFIX}/bin/pip install --no-cache-dir -r "binder/requirements.txt"'
    assert pip in dockerfile
    # "." in requirements.txt means the repository: pip runs there, after the repository is copied in.
    assert (
        dockerfile.index("WORKDIR ${REPO_DIR}")
        < dockerfile.index("COPY --chown=0:0 src/ ${REPO_DIR}/")
        < dockerfile.index(pip)
    )
    assert "binder/postBuild" not in dockerfile  # nothing to run after pip: the widget front end ships prebuilt
