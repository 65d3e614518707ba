"""The stats panel in a real browser: JupyterLab driven through Debian's Chromium by Playwright.

Needs ``/usr/bin/chromium`` and the ``browser`` extra (jupyterlab, playwright);
skipped otherwise. Answers come from the bundled local server, as they do
for a user without an API key.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Plugin settings applied before any user settings: no news prompt, no update check.
SETTINGS_OVERRIDES = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}
TIMEOUT_MS = 60_000


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is not installed (apt-get install chromium)"
    for module in ("jupyterlab", "playwright"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install 'claude-force-nb[browser]')"
    return None


# CI sets this: there a missing browser is a failure to see, not a test to skip.
REQUIRED = os.environ.get("CLAUDE_FORCE_NB_REQUIRE_BROWSER") == "1"

pytestmark = pytest.mark.skipif(_missing() is not None and not REQUIRED, reason=_missing() or "")


def test_the_browser_is_installed():
    assert _missing() is None, f"CLAUDE_FORCE_NB_REQUIRE_BROWSER=1, but {_missing()}"


@dataclass
class Lab:
    url: str
    token: str
    root: Path

    def api(self, method: str, path: str) -> object:
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        # Loopback only: a proxy configured on the machine must not see these requests.
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=5) as response:
            body = response.read()
        return json.loads(body) if body else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _lab_env(base: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_", "JUPYTER_", "IPYTHON"))}
    env.update(
        HOME=str(base / "home"),
        CLAUDE_FORCE_NB_HOME=str(base / "nb-home"),
        CLAUDE_FORCE_NB_SIMULATOR_LATENCY="0.01",
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    return env


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on loopback with a token, its own HOME and no API key."""
    base = tmp_path_factory.mktemp("lab")
    for name in ("home", "nb-home", "notebooks", "app-settings"):
        (base / name).mkdir()
    (base / "app-settings" / "overrides.json").write_text(json.dumps(SETTINGS_OVERRIDES))
    token, port = secrets.token_hex(16), _free_port()
    log = (base / "lab.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            "--ServerApp.open_browser=False",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={base / 'notebooks'}",
            f"--LabApp.app_settings_dir={base / 'app-settings'}",
            "--LabApp.extension_manager=readonly",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        env=_lab_env(base),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Lab(f"http://127.0.0.1:{port}", token, base / "notebooks")
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}; see {base / 'lab.log'}")
            try:
                server.api("GET", "/api/status")
                break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer within 60 s; see {base / 'lab.log'}")
                time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(lab, browser):
    """A fresh page; afterwards every session (and its kernel) is deleted."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()
    for session in lab.api("GET", "/api/sessions"):
        lab.api("DELETE", f"/api/sessions/{session['id']}")


@contextlib.contextmanager
def screenshot_on_failure(page, path: Path):
    """On failure, save a screenshot and add it, and any error output of the cells, to the message."""
    try:
        yield
    except Exception as exc:
        page.screenshot(path=str(path), full_page=True)
        raise AssertionError(f"{exc}\nScreenshot: {path}") from exc


def cell_errors(page):
    # Errors and stderr share a mime type; the offline notice on stderr is not an error.
    return page.locator(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]',
        has_text=re.compile(r"Traceback|\w+Error\b"),
    )


def wait_for(page, locator) -> None:
    """Wait until ``locator`` shows up; fail at once, with the traceback, if a cell raises instead."""
    locator.or_(cell_errors(page)).first.wait_for()
    errors = cell_errors(page).all_inner_texts()
    if errors:
        raise AssertionError("A cell raised:\n" + "\n---\n".join(errors))


def write_notebook(lab: Lab, name: str, cells: list[str]) -> str:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(notebook, lab.root / name)
    return name


def open_and_run_all(page, lab: Lab, name: str) -> None:
    # A workspace of its own, so the notebooks of earlier tests are not reopened.
    workspace = Path(name).stem
    page.goto(f"{lab.url}/lab/workspaces/{workspace}/tree/{name}?token={lab.token}")
    # The kernel's own status; the execution indicator says idle before any kernel exists.
    kernel_status = page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\| Idle$"))
    kernel_status.wait_for()
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_text("Run All Cells", exact=True).click()


def test_second_sweep_panel_shows_all_hits_and_a_full_bar(lab, page, tmp_path):
    from playwright.sync_api import expect

    sweep = "%%agents code-reviewer explainer\nReview: def add(a, b): return a + b"
    name = write_notebook(lab, "sweep-twice.ipynb", ["%load_ext claude_force_nb", sweep, sweep])
    with screenshot_on_failure(page, tmp_path / "sweep-twice.png"):
        open_and_run_all(page, lab, name)
        panels = page.locator(".cfnb-panel")
        wait_for(page, panels.nth(1))
        expect(panels).to_have_count(2)
        first, second = panels.nth(0), panels.nth(1)
        expect(second.locator(".cfnb-done")).to_have_text("2/2 done")
        expect(second.locator(".cfnb-sweep-hit-rate")).to_have_text("100.0 % hit rate")
        expect(second.locator(".cfnb-progress .progress-bar")).to_have_attribute("style", re.compile(r"width: 100%"))
        expect(second.locator(".cfnb-hit-rate .cfnb-value")).to_have_text("50.0 %")  # the cache since start
        expect(first.locator(".cfnb-sweep-hit-rate")).to_have_text("0.0 % hit rate")
        second.scroll_into_view_if_needed()
        second.screenshot(path=str(tmp_path / "panel.png"))


def test_background_sweep_panel_updates_between_cells(lab, page, tmp_path):
    from playwright.sync_api import expect

    name = write_notebook(
        lab,
        "background.ipynb",
        [
            "%load_ext claude_force_nb",
            "items = [f'note {i}' for i in range(12)]",
            "%%agents summarizer --over items -c 2 --background -o run\nSummarize: {item}",
        ],
    )
    with screenshot_on_failure(page, tmp_path / "background.png"):
        open_and_run_all(page, lab, name)
        panel = page.locator(".cfnb-panel")
        wait_for(page, panel.locator(".cfnb-done", has_text="12/12 done"))
        expect(panel.locator(".cfnb-progress .progress-bar")).to_have_attribute("style", re.compile(r"width: 100%"))
        expect(panel.locator(".cfnb-in-flight")).to_have_text("0 in flight")
