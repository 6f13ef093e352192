"""Interactive widgets for the lessons: poke the key check, watch the agent, manage keys.

    playground.py     AuthPlayground (lesson 04): one request, chosen key, see the answer
    agent_console.py  AgentConsole (lesson 05): run the agent, tool calls stream in
    key_manager.py    KeyManager (lesson 06): create, test, revoke keys on a live server
    _shared.py        what they share: masking, one HTTP exchange, tables, scheduling

Every widget is an object with `.widget` (the ipywidgets container) and methods that
do what its buttons do, so a notebook, a test, or a reader without a browser gets the
same behaviour; displaying the object shows the widget, and its text form is a
readable summary. None of them ever shows a full API key.
"""

from lesson_code.widgets._shared import MaskedKey, redact
from lesson_code.widgets.agent_console import AgentConsole
from lesson_code.widgets.key_manager import KeyManager
from lesson_code.widgets.playground import CALLS, AuthPlayground, PlaygroundResult

__all__ = ["CALLS", "AgentConsole", "AuthPlayground", "KeyManager", "MaskedKey", "PlaygroundResult", "redact"]
