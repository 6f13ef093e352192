"""Drive JupyterLab in headless Chromium: start the server, open notebooks, run them, read results.

Everything here talks to JupyterLab the way a person's browser does, through
its own commands (`window.jupyterapp.commands`), so a passing test means a
learner clicking "Run All" would see the same thing.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Locator, Page, Playwright
from playwright.sync_api import Error as PlaywrightError

from lesson_code.background import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PROJECT = Path(__file__).resolve().parents[2]
SCREENSHOTS = PROJECT / "screenshots"

# JupyterLab settings for the test browser: render every cell (no windowing, so widgets far
# down the page exist in the DOM) and never reach for the internet (news, update checks).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}


@dataclass
class LabServer:
    """A JupyterLab server on loopback with a token, serving a copy of the course."""

    root: Path
    port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> LabServer:
        settings = self.root / ".lab-settings"
        for name, value in LAB_SETTINGS.items():
            path = settings / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value))
        env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings), "OPENAI_AGENTS_DISABLE_TRACING": "1"}
        env.pop("OPENAI_API_KEY", None)
        log = (self.root / "jupyter.log").open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--allow-root",
                "--ip=127.0.0.1",
                f"--port={self.port}",
                f"--ServerApp.token={self.token}",
                "--LabApp.expose_app_in_browser=True",
                f"--ServerApp.root_dir={self.root}",
                "--ServerApp.disable_check_xsrf=False",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.root,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited early; see {self.root / 'jupyter.log'}")
            try:
                if httpx.get(f"{self.base}/api/status", params={"token": self.token}, timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"JupyterLab did not answer within {timeout:g} s")
            time.sleep(0.3)

    def shut_down_kernels(self) -> None:
        """End every kernel session, so servers a notebook started never outlive its test."""
        params = {"token": self.token}
        for session in httpx.get(f"{self.base}/api/sessions", params=params, timeout=10).json():
            httpx.delete(f"{self.base}/api/sessions/{session['id']}", params=params, timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def copy_course(destination: Path) -> Path:
    """A private copy of the notebooks, so running them in the browser never edits the repo."""
    for folder in ("solutions", "notebooks"):
        shutil.copytree(PROJECT / folder, destination / folder)
    return destination


def launch_chromium(playwright: Playwright) -> Browser:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def new_page(browser: Browser) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    # Only loopback: the course must work offline, and the browser must not phone home.
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:"))
            else route.abort()
        ),
    )
    return page


# --- notebook actions, through JupyterLab's own command registry -----------------------

STATE_JS = """
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.content || !panel.sessionContext) return null;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = panel.content.widgets.filter(c => c.model.type === 'code');
  const outputs = cells.map(c => c.model.sharedModel.toJSON().outputs || []);
  return {
    kernel: kernel ? kernel.status : 'none',
    code_cells: cells.length,
    executed: cells.filter(c => c.model.executionCount !== null).length,
    running: Array.from(document.querySelectorAll('.jp-InputArea-prompt'))
      .filter(p => p.textContent.includes('*')).length,
    errors: outputs.flat().filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue),
    widget_outputs: outputs.flat().filter(o => o.data && o.data['application/vnd.jupyter.widget-view+json']).length,
    rendered_widgets: document.querySelectorAll('.jp-OutputArea-output > .jupyter-widgets').length,
    widget_failures: Array.from(document.querySelectorAll('.jp-OutputArea-output')).filter(
      o => /Error displaying widget|Loading widget/.test(o.textContent)).length,
    text: outputs.map(list => list.map(o => o.text || (o.data && o.data['text/plain']) || '').join('')),
  };
}
"""


@dataclass
class NotebookState:
    kernel: str
    code_cells: int
    executed: int
    running: int
    errors: list[str]
    widget_outputs: int
    rendered_widgets: int
    widget_failures: int
    text: list[str]


# True when the page shows a loaded JupyterLab with no document and no dialog open (JupyterLab opens a
# Launcher when the last tab closes; that is not a document): a notebook can be opened in it with
# JupyterLab's own "open" command instead of loading the whole application again.
CLEAN_LAB_JS = """
() => !!(window.jupyterapp && window.jupyterapp.shell
  && Array.from(window.jupyterapp.shell.widgets('main')).every(w => !w.context)
  && document.querySelectorAll('.jp-Dialog').length === 0)
"""

# Close every open document without a "save your changes?" question: the tests never save, and the
# kernels behind them are shut down through the server's API (LabServer.shut_down_kernels).
CLOSE_DOCUMENTS_JS = """
() => {
  for (const widget of Array.from(window.jupyterapp.shell.widgets('main'))) {
    if (widget.context && widget.context.model) { widget.context.model.dirty = false; }
    widget.close();
  }
}
"""

KERNEL_IDLE_JS = """
path => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  return !!(panel && panel.context && panel.context.path === path && panel.sessionContext
    && panel.sessionContext.session && panel.sessionContext.session.kernel
    && panel.sessionContext.session.kernel.status === 'idle');
}
"""


def open_notebook(page: Page, lab: LabServer, path: str, timeout: float = 60) -> None:
    """Open `path` in JupyterLab and wait until its new kernel is idle.

    Loading JupyterLab costs Chromium about 4.5 s of CPU, so a page that already shows it, with
    nothing open (see `close_documents`), opens the notebook with the File Browser's own command,
    as a learner double-clicking it does. Any other page loads the application with `?reset`,
    so no tab or layout from an earlier test comes back.
    """
    if page.url.startswith(lab.base) and page.evaluate(CLEAN_LAB_JS):
        page.evaluate("path => { window.jupyterapp.commands.execute('docmanager:open', {path}); }", path)
    else:
        page.goto(f"{lab.base}/lab/tree/{path}?reset&token={lab.token}")
    page.wait_for_function(KERNEL_IDLE_JS, arg=path, timeout=timeout * 1000)


def close_documents(page: Page, timeout: float = 10) -> None:
    """Close every tab in the page's JupyterLab, leaving it ready for `open_notebook`.

    A page that cannot be brought back to an empty JupyterLab (a dialog left open by a failed
    test, say) is left as it is: `open_notebook` then loads the application again.
    """
    try:
        page.evaluate(CLOSE_DOCUMENTS_JS)
        page.wait_for_function(CLEAN_LAB_JS, timeout=timeout * 1000)
    except PlaywrightError:
        pass


def state(page: Page) -> NotebookState:
    return NotebookState(**page.evaluate(STATE_JS))


def run_command(page: Page, command: str) -> None:
    """Start a JupyterLab command without awaiting its promise (run-all resolves late)."""
    page.evaluate(f"() => {{ window.jupyterapp.commands.execute({command!r}); }}")


def wait_until_done(page: Page, timeout: float = 90, executed: int | None = None) -> NotebookState:
    """Wait until `executed` code cells (default: all) have run and the kernel is idle again."""
    deadline = time.monotonic() + timeout
    stable = 0
    while time.monotonic() < deadline:
        current = state(page)
        wanted = current.code_cells if executed is None else executed
        done = current.executed >= wanted and current.running == 0 and current.kernel == "idle"
        stable = stable + 1 if done else 0
        if stable >= 3:  # idle three polls in a row: no cell is about to start
            return current
        time.sleep(0.3)
    raise TimeoutError(f"notebook still running after {timeout:g} s: {state(page)}")


def run_all(page: Page, timeout: float = 90) -> NotebookState:
    run_command(page, "notebook:run-all-cells")
    return wait_until_done(page, timeout)


def run_through(page: Page, marker: str, timeout: float = 90) -> NotebookState:
    """Run the notebook from the top down to the first cell whose code contains `marker`.

    A widget is used while the notebook's server still runs, that is before the
    clean-up cells at the end, as a learner working down the page would.
    """
    index = page.evaluate(
        """marker => {
          const panel = window.jupyterapp.shell.currentWidget;
          const cells = panel.content.widgets;
          const index = cells.findIndex(
            c => c.model.type === 'code' && c.model.sharedModel.getSource().includes(marker));
          if (index >= 0) { panel.content.activeCellIndex = index; }
          return [index, cells.slice(0, index + 1).filter(c => c.model.type === 'code').length];
        }""",
        marker,
    )
    if index[0] < 0:
        raise AssertionError(f"no code cell contains {marker!r}")
    run_command(page, "notebook:run-all-above")
    wait_until_done(page, timeout, executed=index[1] - 1)
    run_command(page, "notebook:run-cell")
    return wait_until_done(page, timeout, executed=index[1])


def restart_and_run_all(page: Page, timeout: float = 90) -> NotebookState:
    run_command(page, "runmenu:restart-and-run-all")
    page.locator(".jp-Dialog .jp-mod-accept").click()
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.content.widgets"
        ".filter(c => c.model.type === 'code').every(c => c.model.executionCount === null"
        " || c.model.executionCount <= 1)",
        timeout=timeout * 1000,
    )
    return wait_until_done(page, timeout)


def widget_screenshot(widget: Locator, name: str) -> Path:
    """A picture of one widget, as the learner left it."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    widget.scroll_into_view_if_needed()
    widget.screenshot(path=str(path))
    return path


def screenshot(page: Page, name: str) -> Path:
    """A picture of the whole notebook: the viewport is stretched to the notebook's height."""
    SCREENSHOTS.mkdir(exist_ok=True)
    height = page.evaluate(
        "() => { const s = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer');"
        " return s ? s.scrollHeight : 900; }"
    )
    page.set_viewport_size({"width": 1280, "height": min(max(900, height + 200), 16000)})
    page.evaluate("() => document.querySelectorAll('.jp-WindowedPanel-outer').forEach(s => { s.scrollTop = 0; })")
    page.wait_for_timeout(500)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1280, "height": 900})
    return path


def _sanitizers() -> list[tuple[re.Pattern[str], str]]:
    lines = (PROJECT / "tests" / "nbval_sanitize.cfg").read_text(encoding="utf-8").splitlines()
    patterns = [line.removeprefix("regex: ") for line in lines if line.startswith("regex: ")]
    replacements = [line.removeprefix("replace: ") for line in lines if line.startswith("replace: ")]
    return [(re.compile(p), r) for p, r in zip(patterns, replacements, strict=True)]


def sanitize(text: str) -> str:
    """Apply nbval's sanitize rules, so browser runs are compared exactly as nbval compares them."""
    for pattern, replacement in _sanitizers():
        text = pattern.sub(replacement, text)
    return text
