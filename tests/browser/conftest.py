"""Fixtures for the browser tests: one JupyterLab, one Chromium and one page for the whole session.

The page keeps JupyterLab loaded between tests: each test closes what it opened and its
kernels are shut down, and the next test opens its notebook with JupyterLab's own command
(`lab_driver.open_notebook`), which saves loading the application again (about 4.5 s of
Chromium CPU per test).

A missing or broken browser is a failure, never a skip: these tests exist to
prove the course works where learners use it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lab_driver import LabServer, close_documents, copy_course, launch_chromium, new_page
from playwright.sync_api import Browser, Page, sync_playwright


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    server = LabServer(copy_course(tmp_path_factory.mktemp("course"))).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def shared_page(browser: Browser) -> Iterator[Page]:
    page = new_page(browser)
    yield page
    page.close()


@pytest.fixture
def page(shared_page: Page, lab: LabServer) -> Iterator[Page]:
    yield shared_page
    close_documents(shared_page)
    lab.shut_down_kernels()
