"""The widgets, used in JupyterLab as a learner would: pick, click, read what comes back.

Each test opens the solution notebook that shows the widget, runs it through
JupyterLab, then works the widget with real clicks in Chromium. The server the
widget talks to is the one the notebook started inside its kernel. (Restart Kernel and
Run All for the lessons that start servers is checked in test_notebooks_in_lab.py.)
"""

from __future__ import annotations

import re
from pathlib import Path

from lab_driver import PROJECT, LabServer, open_notebook, run_through, widget_screenshot
from playwright.sync_api import Locator, Page, expect

TIMEOUT_MS = 30_000


def notebook_showing(constructor: str) -> str:
    """The first solution notebook whose code creates `constructor`, e.g. `AuthPlayground(`."""
    for path in sorted((PROJECT / "solutions").glob("*.ipynb")):
        if constructor in path.read_text(encoding="utf-8"):
            return path.name
    raise AssertionError(f"no solution notebook uses {constructor}")


def button(scope: Page | Locator, label: str) -> Locator:
    """A button by its label; ipywidgets put an icon glyph before the text, so allow one."""
    return scope.get_by_role("button", name=re.compile(rf"^\W*{re.escape(label)}\s*$"))


def widget_with_button(page: Page, label: str) -> Locator:
    """The output area that holds the widget with a button labelled `label`."""
    area = page.locator(".jp-OutputArea-output").filter(has=button(page, label))
    expect(area.first).to_be_visible(timeout=TIMEOUT_MS)
    return area.first


def choose(select: Locator, starting_with: str) -> None:
    """Pick the option of a Dropdown whose label starts with `starting_with`."""
    labels = select.locator("option").all_inner_texts()
    matches = [label for label in labels if label.startswith(starting_with)]
    assert matches, f"no option starting with {starting_with!r} in {labels}"
    select.select_option(label=matches[0])


def open_and_run(page: Page, lab: LabServer, constructor: str) -> str:
    """Open the notebook that shows the widget and run it down to the widget's cell."""
    name = notebook_showing(constructor)
    open_notebook(page, lab, f"solutions/{name}")
    result = run_through(page, constructor)
    assert result.errors == [], result.errors
    return name


def test_auth_playground_missing_key_then_valid_key(page: Page, lab: LabServer) -> None:
    name = open_and_run(page, lab, "AuthPlayground(")
    playground = widget_with_button(page, "Send")
    key_picker, call_picker = playground.locator("select").nth(0), playground.locator("select").nth(1)
    choose(call_picker, "tools/list")

    choose(key_picker, "missing")
    button(playground, "Send").click()
    expect(playground).to_contain_text("401", timeout=TIMEOUT_MS)
    expect(playground).to_contain_text("www-authenticate", timeout=TIMEOUT_MS)
    expect(playground).to_contain_text("-32010", timeout=TIMEOUT_MS)

    choose(key_picker, "valid")
    button(playground, "Send").click()
    expect(playground).to_contain_text("200", timeout=TIMEOUT_MS)
    expect(playground).to_contain_text("place_order", timeout=TIMEOUT_MS)  # the tool list came back
    widget_screenshot(playground, f"{Path(name).stem}-playground")


def test_agent_console_runs_the_shopping_query_and_places_an_order(page: Page, lab: LabServer) -> None:
    name = open_and_run(page, lab, "AgentConsole(")
    console = widget_with_button(page, "Run")
    button(console, "Run").click()
    expect(console).to_contain_text("place_order", timeout=TIMEOUT_MS)
    expect(console).to_contain_text("answer:", timeout=TIMEOUT_MS)
    expect(console).to_contain_text("ord-", timeout=TIMEOUT_MS)
    widget_screenshot(console, f"{Path(name).stem}-agent-console")


def test_key_manager_create_use_revoke_refused(page: Page, lab: LabServer) -> None:
    name = open_and_run(page, lab, "KeyManager(")
    manager = widget_with_button(page, "Create key")
    manager.locator("input[type=text]").first.fill("browser-test-key")
    button(manager, "Create key").click()
    expect(manager).to_contain_text("new key browser-test-key", timeout=TIMEOUT_MS)
    expect(manager.locator("select").last).to_have_value("browser-test-key", timeout=TIMEOUT_MS)

    button(manager, "Test key").click()
    expect(manager).to_contain_text("the key works", timeout=TIMEOUT_MS)

    button(manager, "Revoke").click()
    expect(manager).to_contain_text("revoked browser-test-key", timeout=TIMEOUT_MS)

    button(manager, "Test key").click()
    expect(manager).to_contain_text("the key is refused", timeout=TIMEOUT_MS)
    assert "sk-mcp-" not in manager.inner_text() or "…" in manager.inner_text()
    widget_screenshot(manager, f"{Path(name).stem}-key-manager")
