"""Fixtures for the browser tests: one JupyterLab and one Chromium for the whole session.

A missing or broken browser is a failure, never a skip: these tests exist to
prove the course works where learners use it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lab_driver import LabServer, copy_course, launch_chromium, new_page
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


@pytest.fixture
def page(browser: Browser, lab: LabServer) -> Iterator[Page]:
    page = new_page(browser)
    yield page
    page.close()
    lab.shut_down_kernels()
