"""The package's layout is what its docstring and the README say, and its leaves stay leaves.

`lesson_code/__init__.py` maps every module, grouped from the leaves up, and claims that a
module imports only modules listed before it. These tests hold the map, the README's
"The package" section and the code to each other, so the map cannot drift as modules come
and go, and a leaf (`net`, `text`, `sse`, ...) never starts pulling in the server stack.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import lesson_code

PACKAGE = Path(lesson_code.__file__).parent
README = PACKAGE.parent / "README.md"
MAP_LINE = re.compile(r"^    (\S+\.py|\S+/)\s")
THIRD_PARTY_SERVER_STACK = ("mcp", "starlette", "uvicorn", "httpx", "agents", "openai", "redis")


def mapped_modules() -> list[str]:
    """The module map's entries in order: `net.py`, ..., `attacks/`, ..."""
    assert lesson_code.__doc__
    return [found.group(1) for line in lesson_code.__doc__.splitlines() if (found := MAP_LINE.match(line))]


def package_modules() -> set[str]:
    """Every top-level module (`x.py`) and subpackage (`x/`) of lesson_code, except `__init__.py`."""
    modules = {path.name for path in PACKAGE.glob("*.py") if path.name != "__init__.py"}
    packages = {path.name + "/" for path in PACKAGE.iterdir() if (path / "__init__.py").exists()}
    return modules | packages


def imports_of(entry: str) -> set[str]:
    """The lesson_code modules that `entry` (a module or a whole subpackage) imports, anywhere in it."""
    files = sorted((PACKAGE / entry).rglob("*.py")) if entry.endswith("/") else [PACKAGE / entry]
    found: set[str] = set()
    for file in files:
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] == "lesson_code" and len(parts) > 1:
                    found.add(parts[1] + "/" if (PACKAGE / parts[1]).is_dir() else parts[1] + ".py")
    return found - {entry}


def test_the_module_map_lists_every_module_once() -> None:
    mapped = mapped_modules()
    assert len(mapped) == len(set(mapped)), [m for m in mapped if mapped.count(m) > 1]
    assert set(mapped) == package_modules(), {
        "in the map but not in the package": sorted(set(mapped) - package_modules()),
        "in the package but not in the map": sorted(package_modules() - set(mapped)),
    }


def test_modules_import_only_what_the_map_lists_before_them() -> None:
    position = {entry: index for index, entry in enumerate(mapped_modules())}
    upward = {
        f"{entry} imports {dependency}"
        for entry in position
        for dependency in imports_of(entry)
        if position.get(dependency, -1) > position[entry]
    }
    assert not upward, sorted(upward)


def test_the_readme_names_every_module() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## The package\n", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"[A-Za-z_0-9]+\.py|[a-z_]+/", section))
    missing = [entry for entry in package_modules() if entry not in named]
    assert not missing, f"README's 'The package' section does not name: {sorted(missing)}"


@pytest.mark.parametrize("leaf", ["net", "text", "sse", "roles", "raw_requests", "tool_output"])
def test_a_leaf_imports_no_server_stack(leaf: str) -> None:
    probe = (
        f"import sys, lesson_code.{leaf}; print(' '.join(m for m in {THIRD_PARTY_SERVER_STACK!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [], f"lesson_code.{leaf} pulls in {result.stdout.strip()}"
