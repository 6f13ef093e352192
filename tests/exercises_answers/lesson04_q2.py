"""04 q2: wrong answers with the words of their ❌, and other ways to write a right one."""

# ruff: noqa: E501 - each answer is one dict literal, as a learner types it on one line

WRONG = [
    (
        "307 for POST /mcp/ (a redirect)",
        'predicted = {"GET /health, no key": 200, "POST /mcp, no key": 401, "POST /mcp/, no key": 307, "POST /MCP, no key": ____, "DELETE /health, no key": ____, "POST /mcp, valid key": ____}',
        "before the router",
    ),
    (
        "401 for GET /health",
        'predicted = {"GET /health, no key": 401, "POST /mcp, no key": ____, "POST /mcp/, no key": ____, "POST /MCP, no key": ____, "DELETE /health, no key": ____, "POST /mcp, valid key": ____}',
        "allow-list",
    ),
    (
        "405 for DELETE /health",
        'predicted = {"GET /health, no key": 200, "POST /mcp, no key": 401, "POST /mcp/, no key": 401, "POST /MCP, no key": 401, "DELETE /health, no key": 405, "POST /mcp, valid key": ____}',
        "Only GET (and HEAD)",
    ),
    (
        "200 in quotes",
        'predicted = {"GET /health, no key": "200", "POST /mcp, no key": ____, "POST /mcp/, no key": ____, "POST /MCP, no key": ____, "DELETE /health, no key": ____, "POST /mcp, valid key": ____}',
        "without quotes",
    ),
]

RIGHT: list[tuple[str, str]] = []
