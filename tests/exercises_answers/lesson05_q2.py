"""05 q2, show each event."""

WRONG = [
    (
        "wrong kind names",
        'def show(event):\n    if event.kind == "call":\n        print(event.tool)',
        "The kinds are exactly",
    ),
    ("text only", "def show(event):\n    print(event.text)", "should name the tool"),
    (
        "returns the line instead of printing it",
        "def show(event):\n    return f\"{event.kind}: {event.tool or ''} {event.text}\"",
        "instead of printing it",
    ),
]

RIGHT = [
    (
        "a dict of prefixes",
        "def show(event):\n"
        '    prefix = {"tool_call": f"call {event.tool}", "tool_result": "result", "answer": "answer"}[event.kind]\n'
        '    print(prefix + ": " + event.text)',
    ),
]
