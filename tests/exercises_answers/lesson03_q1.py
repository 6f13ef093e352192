"""03 q1, read the key from the scope."""

WRONG = [
    (
        "a dict, str name",
        'def read_api_key(scope):\n    return dict(scope["headers"]).get("x-api-key")',
        "compare with b'x-api-key'",
    ),
    (
        "a dict, no lower()",
        'def read_api_key(scope):\n    return dict(scope["headers"]).get(b"x-api-key")',
        "case-insensitive",
    ),
    (
        "decoded to str",
        "def read_api_key(scope):\n"
        '    value = dict((k.lower(), v) for k, v in scope["headers"]).get(b"x-api-key")\n'
        "    return value.decode() if value else None",
        "Return the raw bytes",
    ),
    (
        "name.lower().startswith(b'x-api-key')",
        "def read_api_key(scope):\n"
        '    for name, value in scope["headers"]:\n'
        '        if name.lower().startswith(b"x-api-key"):\n'
        "            return value\n"
        "    return None",
        "not its start (startswith)",
    ),
]

RIGHT = [
    (
        "next() over a generator",
        "def read_api_key(scope):\n"
        '    return next((v for n, v in scope["headers"] if n.lower() == b"x-api-key"), None)',
    ),
    (
        "a lower-cased dict",
        'def read_api_key(scope):\n    return {n.lower(): v for n, v in scope["headers"]}.get(b"x-api-key")',
    ),
]
