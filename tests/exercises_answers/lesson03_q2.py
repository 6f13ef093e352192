"""03 q2: wrong answers with the words of their ❌, and other ways to write a right one."""

WRONG = [
    (
        "HTTP 401 as the error code",
        'refusal = {"jsonrpc": "2.0", "error": {"code": 401, "message": "no key"}, "id": None}',
        "HTTP status",
    ),
    (
        "2.0 as a number",
        'refusal = {"jsonrpc": 2.0, "error": {"code": errors.MISSING_API_KEY, "message": "no key"}, "id": None}',
        "in quotes",
    ),
    (
        "the id of a request",
        'refusal = {"jsonrpc": "2.0", "error": {"code": errors.MISSING_API_KEY, "message": "no key"}, "id": 1}',
        "cannot know the request's id",
    ),
    (
        "-32001, which the client retries",
        'refusal = {"jsonrpc": "2.0", "error": {"code": -32001, "message": "no key"}, "id": None}',
        "retries",
    ),
]

RIGHT = [
    (
        "the message in other words",
        'refusal = {"id": None, "jsonrpc": "2.0", "error": {"message": "No API key: send x-api-key.", "code": -32010}}',
    ),
]
