"""Interactive widgets for the lessons: poke the key check, watch the agent, manage keys.

    playground.py     AuthPlayground (lesson 04): one request, chosen key, see the answer
    agent_console.py  AgentConsole (lesson 05): run the agent, tool calls stream in
    key_manager.py    KeyManager (lesson 06): create, test, revoke keys on a live server
    exchange.py       one HTTP exchange (sync from a cell, async from a button), read the same way
    display.py        badges, escaped HTML tables, one-line errors, the widget display hook
    scheduler.py      runs button callbacks as tasks on the kernel's loop and keeps them alive

Keys come back to Python as `lesson_code.masked_key.MaskedKey`: every display of one is
masked, and `key.reveal()` gives the key itself.

Every widget is an object with `.widget` (the ipywidgets container) and methods that
do what its buttons do, so a notebook, a test, or a reader without a browser gets the
same behaviour; displaying the object shows the widget, and its text form is a
readable summary. None of them ever shows a full API key.
"""

from lesson_code.masked_key import MaskedKey
from lesson_code.redaction import redact
from lesson_code.widgets.agent_console import AgentConsole
from lesson_code.widgets.key_manager import KeyManager
from lesson_code.widgets.playground import CALLS, AuthPlayground, PlaygroundResult

__all__ = ["CALLS", "AgentConsole", "AuthPlayground", "KeyManager", "MaskedKey", "PlaygroundResult", "redact"]
