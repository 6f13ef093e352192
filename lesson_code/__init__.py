"""lesson_code: the shopping-assistant MCP server and how it is secured with API keys.

Where things live, one idea per module, from the leaves up (a module imports only
modules above it in its group or in earlier groups):

  Leaves: pure helpers, the standard library only
    net.py              is this host loopback?
    text.py             shorten, join_words, text_table: one of each, used everywhere
    sse.py              the one server-sent-events `data:` parser
    roles.py            roles (shopper, viewer) and the scope each tool needs
    raw_requests.py     THE wire shape of MCP requests (body, headers) for httpx, curl and raw bytes
    tool_output.py      decoding what a tool returned from the Agents SDK's output shapes

  Keys and the key check
    errors.py           the JSON-RPC 2.0 error bodies and their codes
    keys.py             making, storing (digests only), loading and checking API keys
    masked_key.py       MaskedKey: a key whose every display is masked; reveal() on request
    redaction.py        masks key-shaped text in displays and logs; safe-to-log paths
    throttle.py         429 for failed attempts from one address (a valid key is still served)
    audit.py            the JSON-lines audit log of auth decisions and tool calls
    auth.py             THE KEY CHECK: pure ASGI middleware, 401 + JSON-RPC error
    tls.py              a local development CA for HTTPS

  The server
    store.py            the shopping list and orders, in SQLite (files 0600)
    shopping_server.py  the MCP server and its five tools
    app.py              puts the layers together: secured app, open app (lesson 01)
    sdk_bearer.py       the MCP SDK's own Bearer-token check, for comparison
    uvicorn_config.py   how uvicorn runs: trusted proxies, idle timeout, connection cap
    background.py       uvicorn in a background thread for notebooks and tests

  Scaling out (lesson 07)
    redis_keys.py       the shared key store in Redis
    redis_sync.py       a replica's key set kept in step with it; fails closed without it
    redis_throttle.py   the throttle's counts in Redis
    redis_audit.py      each replica names itself in the audit log; optional Redis stream
    redis_replica.py    one replica's shared state, wired in one place
    redis_propagation.py  how long a revocation takes to reach every replica
    nginx_config.py     the front's nginx configuration, as text
    cluster.py          Redis, N replicas and nginx in one command

  The agent
    model_mode.py       online or offline model, and whether the online one answers
    offline_model.py    a deterministic stand-in model for offline runs
    perf_startup.py     keeps the first tool call in a fresh process fast
    agent.py            the OpenAI Agents SDK agent that sends its key

  Notebooks
    setup_guard_cell.py the lines every notebook's first cell starts with
    setup_check.py      that first cell's check: is this kernel's environment the course's?
    notebook_steps.py   a cell that needs an earlier one says so in one line
    attacks/            the attack catalogue, raw-socket sending, and a scorecard for any ASGI app
    widgets/            the playground, agent console and key manager (exchange, display, scheduler)
    exercises/          the exercise checks (q1.check / hint / solution); wire.py shows MCP requests

  The command line
    cli_errors.py       a missing package in one line, a bug with its traceback
    redis_cli.py        the command line's Redis parts (--redis, audit)
    cli.py              `python -m lesson_code keys|serve|demo`
    __main__.py         `python -m lesson_code`

Submodules are imported on demand so that `import lesson_code` stays fast.
"""

__version__ = "1.0.0"
