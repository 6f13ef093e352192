"""04 q1, stack the layers."""

WRONG = [
    (
        "layers swapped",
        "def wrap(mcp_app, keyring):\n    return AuthContextMiddleware(ApiKeyMiddleware(mcp_app, keyring))",
        "Swap them",
    ),
    (
        "no auth context",
        "def wrap(mcp_app, keyring):\n    return ApiKeyMiddleware(mcp_app, keyring)",
        "AuthContextMiddleware is missing",
    ),
    ("unchanged", "def wrap(mcp_app, keyring):\n    return mcp_app", "still open"),
    (
        "another key ring",
        "def wrap(mcp_app, keyring):\n    return ApiKeyMiddleware(AuthContextMiddleware(mcp_app), KeyRing())",
        "different key ring",
    ),
    (
        "/mcp made public",
        "def wrap(mcp_app, keyring):\n"
        '    return ApiKeyMiddleware(AuthContextMiddleware(mcp_app), keyring, public_paths={"/health", "/mcp"})',
        "without a key reached the MCP app",
    ),
    (
        "the key read from another header",
        "def wrap(mcp_app, keyring):\n"
        '    return ApiKeyMiddleware(AuthContextMiddleware(mcp_app), keyring, header="authorization")',
        "never reached the MCP app",
    ),
]

RIGHT = [
    (
        "two steps, keyword arguments",
        "def wrap(mcp_app, keyring):\n"
        "    inner = AuthContextMiddleware(app=mcp_app)\n"
        "    return ApiKeyMiddleware(inner, keyring=keyring)",
    ),
]
