"""06 q3, the tools a role allows."""

WRONG = [
    ("scopes instead of tools", "def allowed_tools(role):\n    return set(ROLES[role])", "returned scopes"),
    ("every tool", "def allowed_tools(role):\n    return set(TOOL_SCOPES)", "needs orders:write"),
    (
        "written out, not read from the tables",
        'def allowed_tools(role):\n    return set(TOOL_SCOPES) if role == "shopper" else {"list_items", "list_orders"}',
        "new role",
    ),
]

RIGHT = [
    (
        "a for loop",
        "def allowed_tools(role):\n"
        "    tools = set()\n"
        "    for tool, scope in TOOL_SCOPES.items():\n"
        "        if scope in ROLES[role]:\n"
        "            tools.add(tool)\n"
        "    return tools",
    ),
    (
        "a list, read from the tables",
        "def allowed_tools(role):\n    return [tool for tool in TOOL_SCOPES if TOOL_SCOPES[tool] in ROLES[role]]",
    ),
]
