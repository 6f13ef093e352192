"""05 q1, the connection parameters. No ❌ may show the key (the checks mask it)."""

WRONG = [
    (
        "the key at the top",
        'def make_params(url, key):\n    return {"url": url, "x-api-key": key}',
        "inside params['headers']",
    ),
    (
        "Authorization without a scheme",
        'def make_params(url, key):\n    return {"url": url, "headers": {"Authorization": key}}',
        "'Bearer ' + key",
    ),
    (
        "a pasted key",
        'def make_params(url, key):\n    return {"url": url, "headers": {"x-api-key": generate_key()}}',
        "not the one passed in",
    ),
    (
        "url cut short",
        'def make_params(url, key):\n    return {"url": url.removesuffix("/mcp"), "headers": {"x-api-key": key}}',
        "ends in /mcp",
    ),
    (
        "underscores",
        'def make_params(url, key):\n    return {"url": url, "headers": {"x_api_key": key}}',
        "dashes, not underscores",
    ),
    (
        "a scheme in x-api-key (the key must not be shown in full)",
        'def make_params(url, key):\n    return {"url": url, "headers": {"x-api-key": "Bearer " + key}}',
        "should be the key argument itself, not 'Bearer sk-mcp-",
    ),
]

RIGHT = [
    ("dict() and capitals", "def make_params(url, key):\n    return dict(url=url, headers={'X-API-Key': key})"),
    (
        "built up step by step",
        "def make_params(url, key):\n"
        "    params = {}\n"
        '    params["url"] = url\n'
        '    params["headers"] = {"x-api-key": key}\n'
        "    return params",
    ),
]
