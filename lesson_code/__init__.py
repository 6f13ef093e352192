"""lesson_code: the shopping-assistant MCP server and how it is secured with API keys.

Where things live (one idea per module):

    keys.py             making, storing (digests only) and checking API keys
    auth.py             THE KEY CHECK: pure ASGI middleware, 401 + JSON-RPC error
    errors.py           the JSON-RPC 2.0 error bodies and their codes
    roles.py            roles (shopper, viewer) and the scope each tool needs
    throttle.py         429 after too many failed attempts from one address
    audit.py            JSON-lines audit log of auth decisions and tool calls
    redaction.py        masks key-shaped text in displays and logs; safe-to-log paths
    tls.py              a local development CA for HTTPS
    store.py            the shopping list and orders, in SQLite
    shopping_server.py  the MCP server and its five tools
    app.py              puts the layers together: secured app, open app (lesson 01)
    net.py              is this host loopback? (a leaf: no server imports)
    sdk_bearer.py       the MCP SDK's own Bearer-token check, for comparison
    raw_requests.py     hand-built MCP requests (headers, `_meta`) for httpx and curl
    attacks/            the attack catalogue and a scorecard for any ASGI app
    background.py       uvicorn in a background thread for notebooks and tests
    agent.py            the OpenAI Agents SDK agent that sends its key
    offline_model.py    a deterministic stand-in model for offline runs
    cli.py              `python -m lesson_code keys|serve|demo`
    widgets/            the notebooks' playground, agent console and key manager
    exercises/          the notebooks' exercise checks (q1.check / hint / solution)

Submodules are imported on demand so that `import lesson_code` stays fast.
"""

__version__ = "1.0.0"
