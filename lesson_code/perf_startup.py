"""Keep a fresh process that runs the agent fast: its imports, and its first tool call.

Imports (`long_lived_imports()`): importing the Agents SDK (openai, mcp and
their pydantic models) creates about 165,000 objects that the cyclic garbage
collector tracks, all alive until the process exits. CPython's collector runs a
young pass every 700 allocations and a full one whenever the long-lived objects
have grown by a quarter: these imports paid for about 380 passes, two of them
full, that freed about a thousand objects in all (0.17 s of CPU); every later
full pass walked them again (the first query made pydantic build validators,
which triggered more), and at exit the interpreter's final collections walked
and tore them down (about 0.4 s, after `python -m lesson_code demo` had printed
everything). `long_lived_imports()` pauses the collector while such imports run
and then `gc.freeze()`s what they built: those objects move to the permanent
generation, which no collection visits and which the operating system reclaims
at exit. The collector is back on for everything created afterwards; use it only
for imports whose modules stay until exit (as every module does).

The first tool call: the MCP client validates every tool result against the tool's
output schema with `jsonschema`. Importing `jsonschema` imports its format
checkers, and one of them does `from rfc3987_syntax import is_valid_syntax`
(installed here as an extra of JupyterLab's `jupyter-events`). `rfc3987_syntax`
builds an Earley parser for the whole RFC 3987 grammar at import time: about
1.2 s of CPU, paid by the first tool call of every process (`python -m
lesson_code demo`, each notebook kernel), although the MCP client never checks
formats (it builds its validators without a format checker).

`defer_iri_grammar()` puts a small stand-in package under that name before
`jsonschema` is imported. Its `is_valid_syntax` imports the real
`rfc3987_syntax.syntax_helpers` (and so builds the grammar) on its first call,
then delegates; any other attribute loads the real module too. Nothing is
switched off: a validator that does check the `iri` format gets the same
answers, and pays for the grammar then, once.

What is left of the first call's extra cost is importing `jsonschema` itself
(about 0.1 s: attrs, referencing, its other format checkers) and building the
metaschema validator. `warm_tool_result_validation()` does that once in a
daemon thread started at import of `lesson_code.agent`, after that module's own
imports, while the client is still connecting; a tool call that comes sooner
simply waits for the import to finish, as it would have imported it itself.
`prepare_first_tool_call()` does both.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.util
import sys
import threading
import types
from collections.abc import Iterator
from importlib.machinery import ModuleSpec
from typing import Any, Final

MODULE: Final = "rfc3987_syntax"
HELPERS: Final = f"{MODULE}.syntax_helpers"


class _DeferredGrammar(types.ModuleType):
    """Stands in for the `rfc3987_syntax` package until something really needs its parser."""

    def __init__(self, spec: ModuleSpec) -> None:
        super().__init__(MODULE, __doc__)
        self.__spec__ = spec
        self.__package__ = MODULE
        self.__file__ = spec.origin
        self.__path__ = list(spec.submodule_search_locations or ())  # so `rfc3987_syntax.x` still imports
        self._lock = threading.RLock()
        self._loaded = False

    def load(self) -> types.ModuleType:
        """Import the real helpers (building the grammar) and copy their names here, as its `__init__` does."""
        with self._lock:
            helpers = importlib.import_module(HELPERS)
            if not self._loaded:
                names = getattr(helpers, "__all__", None) or [n for n in vars(helpers) if not n.startswith("_")]
                for name in names:
                    if name != "is_valid_syntax":  # keep the delegating function: callers may hold it already
                        setattr(self, name, getattr(helpers, name))
                self._loaded = True
            return helpers

    def is_valid_syntax(self, term: str, value: str) -> Any:
        return self.load().is_valid_syntax(term, value)

    def __getattr__(self, name: str) -> Any:
        # Only called for names not set yet. Dunders (probed by import machinery, inspect, pytest)
        # must not build the grammar as a side effect.
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.load(), name)


@contextlib.contextmanager
def long_lived_imports() -> Iterator[None]:
    """Run the imports inside without cyclic GC passes, then freeze what exists so that no pass visits it again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def prepare_first_tool_call() -> threading.Thread | None:
    """Defer the IRI grammar and warm `jsonschema` in the background; the warming thread (None if not needed)."""
    defer_iri_grammar()
    return warm_tool_result_validation()


def warm_tool_result_validation() -> threading.Thread | None:
    """Import `jsonschema` and build its metaschema check in a daemon thread, unless already done."""
    global _warming
    with _warming_lock:
        if _warming is None and "jsonschema.validators" not in sys.modules:
            _warming = threading.Thread(target=_warm, name="warm-jsonschema", daemon=True)
            _warming.start()
        return _warming


def _warm() -> None:
    # Warming is an optimisation: if it fails, the real first call does the same work and reports any problem.
    with contextlib.suppress(Exception):
        # jsonschema ships no type hints and types-jsonschema is not pinned here; we only call two functions.
        from jsonschema.validators import validator_for  # type: ignore[import-untyped]

        # What the MCP client does on its first call: pick the validator for a tool's output schema, check the
        # schema against the metaschema, validate a result. The schema has the parts pydantic generates
        # ($defs, $ref, anyOf, required), so the metaschema's lookups for them are resolved and cached now.
        validator = validator_for(_TYPICAL_OUTPUT_SCHEMA)
        validator.check_schema(_TYPICAL_OUTPUT_SCHEMA)
        validator(_TYPICAL_OUTPUT_SCHEMA).is_valid({"items": [{"name": "milk", "quantity": 1}]})


_TYPICAL_OUTPUT_SCHEMA: Final = {
    "$defs": {
        "Item": {
            "properties": {
                "name": {"title": "Name", "type": "string"},
                "quantity": {"anyOf": [{"type": "integer"}, {"type": "null"}], "title": "Quantity"},
            },
            "required": ["name", "quantity"],
            "title": "Item",
            "type": "object",
        }
    },
    "properties": {"items": {"items": {"$ref": "#/$defs/Item"}, "title": "Items", "type": "array"}},
    "required": ["items"],
    "title": "ShoppingList",
    "type": "object",
}
_warming: threading.Thread | None = None
_warming_lock = threading.Lock()


def defer_iri_grammar() -> bool:
    """Install the stand-in; True if installed, False if too late (already imported) or not installed."""
    if MODULE in sys.modules or "jsonschema._format" in sys.modules:
        return isinstance(sys.modules.get(MODULE), _DeferredGrammar)
    spec = importlib.util.find_spec(MODULE)
    if spec is None or spec.submodule_search_locations is None:
        return False
    sys.modules[MODULE] = _DeferredGrammar(spec)
    return True
