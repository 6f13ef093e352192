"""Shared test setup: offline agents, no tracing, async tests run on asyncio
with anyio's pytest plugin (modules mark themselves with `pytestmark = pytest.mark.anyio`)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")
os.environ.pop("OPENAI_API_KEY", None)  # the suite must prove the offline path, whatever the shell has


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
