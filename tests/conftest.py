"""Shared test setup: offline agents, no tracing, async tests run on asyncio
with anyio's pytest plugin (modules mark themselves with `pytestmark = pytest.mark.anyio`).

The test process defers `rfc3987_syntax`'s grammar as `lesson_code.agent` does for a learner's
process (`lesson_code.perf_startup`): reading a notebook with nbformat or a tool result with the
MCP client imports jsonschema, which would build it (about 1 s of CPU in each pytest process),
and no test here checks an IRI's syntax in process. Subprocesses are untouched: whether a fresh
process builds the grammar is what tests/test_server_info.py checks.
"""

from __future__ import annotations

import os

import pytest

from lesson_code.perf_startup import defer_iri_grammar

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")
os.environ.pop("OPENAI_API_KEY", None)  # the suite must prove the offline path, whatever the shell has
defer_iri_grammar()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
