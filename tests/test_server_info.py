"""The server says which release it is, and a fresh client process does not build grammars it never uses.

* serverInfo: a client (or a log line, or a bug report) can tell which course release
  answered. `MCPServer(...)` reports an empty version unless told one.
* Cold start: the MCP client validates tool results with `jsonschema`, whose import would
  build an unused RFC 3987 grammar (about a second). `lesson_code.perf_startup` defers it
  until an IRI is really checked. The subprocess checks below start fresh interpreters,
  because the point is what a *new* process imports.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client

import lesson_code
from lesson_code.shopping_server import build_shopping_server
from lesson_code.store import ShoppingStore

pytestmark = pytest.mark.anyio

PROJECT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_server_info_carries_the_package_version(tmp_path: Path, mode: str) -> None:
    store = ShoppingStore(tmp_path / "shop.sqlite3")
    try:
        async with Client(build_shopping_server(store), mode=mode) as client:
            info = client.server_info
            assert info is not None
            assert info.name == "shopping-assistant"
            assert info.version == lesson_code.__version__
    finally:
        store.close()


def test_package_version_matches_the_installed_distribution() -> None:
    assert lesson_code.__version__ == importlib.metadata.version("lesson-code")


def run_fresh(code: str) -> dict[str, object]:
    """Run `code` in a new interpreter; it prints one JSON object as its last line."""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_importing_jsonschema_after_the_agent_builds_no_iri_grammar() -> None:
    result = run_fresh(
        "import json, sys\n"
        "import lesson_code.agent\n"
        "from lesson_code import perf_startup\n"
        "thread = perf_startup.warm_tool_result_validation()\n"
        "thread.join(60)\n"
        "import jsonschema\n"
        "print(json.dumps({'warmed': not thread.is_alive(),"
        " 'grammar_built': 'rfc3987_syntax.syntax_helpers' in sys.modules,"
        " 'validators_loaded': 'jsonschema.validators' in sys.modules}))"
    )
    assert result == {"warmed": True, "grammar_built": False, "validators_loaded": True}


IRIS = ["https://example.com/caf\u00e9", "not an iri", "http://[::1]:80/x?y#z", "urn:isbn:0451450523", ""]
CHECK_IRIS = (
    "import jsonschema\n"
    "V = jsonschema.Draft202012Validator\n"
    "check = V({'type': 'string', 'format': 'iri'}, format_checker=V.FORMAT_CHECKER)\n"
    f"answers = [check.is_valid(text) for text in {IRIS!r}]\n"
)


def test_iri_format_checks_still_give_the_real_answers() -> None:
    """Deferred, not disabled: a validator that checks the `iri` format builds the grammar and answers as before.

    The reference answers come from a process that imported jsonschema first, where deferring is
    too late and must say so rather than pretend.
    """
    deferred = run_fresh(
        "import json, sys\n"
        "from lesson_code.perf_startup import defer_iri_grammar\n"
        "installed = defer_iri_grammar()\n"
        "import jsonschema\n"
        "before = 'rfc3987_syntax.syntax_helpers' in sys.modules\n" + CHECK_IRIS + "import rfc3987_syntax\n"
        "print(json.dumps({'installed': installed, 'before': before, 'answers': answers,"
        " 'after': 'rfc3987_syntax.syntax_helpers' in sys.modules, 'parse': callable(rfc3987_syntax.parse)}))"
    )
    plain = run_fresh(
        "import json\n" + CHECK_IRIS + "from lesson_code.perf_startup import defer_iri_grammar\n"
        "print(json.dumps({'answers': answers, 'installed': defer_iri_grammar()}))"
    )
    answers = plain["answers"]
    assert isinstance(answers, list) and answers[:2] == [True, False]  # the checker is really on in this environment
    assert plain["installed"] is False  # too late: jsonschema was imported first
    assert deferred == {"installed": True, "before": False, "answers": answers, "after": True, "parse": True}
