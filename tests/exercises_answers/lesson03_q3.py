"""03 q3, the middleware: mistakes learners make, and right answers written differently from the solution."""

_HEAD = """
class MyApiKeyMiddleware:
    def __init__(self, app, valid_digests):
        self.app = app
        self.valid_digests = valid_digests

    async def __call__(self, scope, receive, send):
"""

_REFUSE = """
        body = json.dumps({"jsonrpc": "2.0", "error": {"code": -32010, "message": "no key"}, "id": None}).encode()
        headers = [(b"content-type", b"application/json"), (b"www-authenticate", b'ApiKey header="x-api-key"')]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})
"""


def _valid(expression: str) -> str:
    return f"hashlib.sha256({expression}).hexdigest() in self.valid_digests"


WRONG = [
    (
        "refuses, forgets return, then calls the app",
        _HEAD
        + """
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, send)
        if scope["type"] != "http":
            return
        keys = [v for n, v in scope["headers"] if n.lower() == b"x-api-key"]
        ok = len(keys) == 1 and """
        + _valid("keys[0]")
        + """
        if not ok and not (scope["method"] == "GET" and scope["path"] == "/health"):
"""
        + _REFUSE.replace("\n        ", "\n            ")
        + """
        await self.app(scope, receive, send)
""",
        "sent a 401 but then called the app too",
    ),
    (
        "passes a valid key on, forgets return, then refuses too",
        _HEAD
        + """
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, send)
        if scope["type"] != "http":
            return
        if scope["method"] == "GET" and scope["path"] == "/health":
            return await self.app(scope, receive, send)
        keys = [v for n, v in scope["headers"] if n.lower() == b"x-api-key"]
        if len(keys) == 1 and """
        + _valid("keys[0]")
        + """:
            await self.app(scope, receive, send)
"""
        + _REFUSE,
        "response already completed",
    ),
    (
        "/health open to every method",
        _HEAD
        + """
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, send)
        if scope["type"] != "http":
            return
        if scope["path"] == "/health":
            return await self.app(scope, receive, send)
        keys = [v for n, v in scope["headers"] if n.lower() == b"x-api-key"]
        if len(keys) == 1 and """
        + _valid("keys[0]")
        + """:
            return await self.app(scope, receive, send)
"""
        + _REFUSE,
        "opens only GET /health",
    ),
    (
        "path.startswith('/health')",
        _HEAD
        + """
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, send)
        if scope["type"] != "http":
            return
        if scope["method"] == "GET" and scope["path"].startswith("/health"):
            return await self.app(scope, receive, send)
        keys = [v for n, v in scope["headers"] if n.lower() == b"x-api-key"]
        if len(keys) == 1 and """
        + _valid("keys[0]")
        + """:
            return await self.app(scope, receive, send)
"""
        + _REFUSE,
        "startswith('/health') also opens /healthz",
    ),
    (
        "headers read into a dict: of two x-api-key headers the last wins",
        _HEAD
        + """
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, send)
        if scope["type"] != "http":
            return
        if scope["method"] == "GET" and scope["path"] == "/health":
            return await self.app(scope, receive, send)
        headers = {name.lower(): value for name, value in scope["headers"]}
        key = headers.get(b"x-api-key")
        if key is not None and """
        + _valid("key")
        + """:
            return await self.app(scope, receive, send)
"""
        + _REFUSE,
        "exactly one x-api-key header",
    ),
    (
        "the first x-api-key header wins (lesson 03 q1's read_api_key reused)",
        _HEAD
        + """
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, send)
        if scope["type"] != "http":
            return
        if scope["method"] == "GET" and scope["path"] == "/health":
            return await self.app(scope, receive, send)
        key = next((v for n, v in scope["headers"] if n.lower() == b"x-api-key"), None)
        if key is not None and """
        + _valid("key")
        + """:
            return await self.app(scope, receive, send)
"""
        + _REFUSE,
        "exactly one x-api-key header",
    ),
    (
        "every OPTIONS request let through (CORS preflight)",
        _HEAD
        + """
        if scope["type"] == "lifespan" or (scope["type"] == "http" and scope["method"] == "OPTIONS"):
            return await self.app(scope, receive, send)
        if scope["type"] != "http":
            return
        if scope["method"] == "GET" and scope["path"] == "/health":
            return await self.app(scope, receive, send)
        keys = [v for n, v in scope["headers"] if n.lower() == b"x-api-key"]
        if len(keys) == 1 and """
        + _valid("keys[0]")
        + """:
            return await self.app(scope, receive, send)
"""
        + _REFUSE,
        "not even OPTIONS",
    ),
    (
        "name.lower().startswith(b'x-api-key')",
        _HEAD
        + """
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, send)
        if scope["type"] != "http":
            return
        if scope["method"] == "GET" and scope["path"] == "/health":
            return await self.app(scope, receive, send)
        keys = [v for n, v in scope["headers"] if n.lower().startswith(b"x-api-key")]
        if len(keys) == 1 and """
        + _valid("keys[0]")
        + """:
            return await self.app(scope, receive, send)
"""
        + _REFUSE,
        "not its start (startswith)",
    ),
    (
        "lifespan treated as a request",
        _HEAD
        + """
        if scope.get("type") == "http" and scope["method"] == "GET" and scope["path"] == "/health":
            return await self.app(scope, receive, send)
        keys = [v for n, v in scope.get("headers", []) if n.lower() == b"x-api-key"]
        if len(keys) == 1 and """
        + _valid("keys[0]")
        + """:
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return
"""
        + _REFUSE,
        "lifespan event",
    ),
    (
        "everything that is not HTTP passed through, websockets included",
        _HEAD
        + """
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["method"] == "GET" and scope["path"] == "/health":
            return await self.app(scope, receive, send)
        keys = [v for n, v in scope["headers"] if n.lower() == b"x-api-key"]
        if len(keys) == 1 and """
        + _valid("keys[0]")
        + """:
            return await self.app(scope, receive, send)
"""
        + _REFUSE,
        "websocket connection without a key reached the app",
    ),
    (
        "a 401 sent on a websocket",
        _HEAD
        + """
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, send)
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == "/health":
            return await self.app(scope, receive, send)
        keys = [v for n, v in scope["headers"] if n.lower() == b"x-api-key"]
        if scope["type"] == "http" and len(keys) == 1 and """
        + _valid("keys[0]")
        + """:
            return await self.app(scope, receive, send)
"""
        + _REFUSE,
        "which a websocket cannot take",
    ),
    (
        "Starlette's BaseHTTPMiddleware with request.headers.getlist",
        """
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import JSONResponse

class MyApiKeyMiddleware(BaseHTTPMiddleware):
    def __init__(self, app, valid_digests):
        super().__init__(app)
        self.valid_digests = valid_digests

    async def dispatch(self, request, call_next):
        if request.method == "GET" and request.url.path == "/health":
            return await call_next(request)
        keys = request.headers.getlist("x-api-key")
        if len(keys) == 1 and hashlib.sha256(keys[0].encode()).hexdigest() in self.valid_digests:
            return await call_next(request)
        body = {"jsonrpc": "2.0", "error": {"code": -32010, "message": "no key"}, "id": None}
        return JSONResponse(body, status_code=401, headers={"www-authenticate": 'ApiKey header="x-api-key"'})
""",
        "pure ASGI middleware instead",
    ),
    (
        "compares the raw key with the digests",
        _HEAD
        + """
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, send)
        if scope["type"] != "http":
            return
        if scope["method"] == "GET" and scope["path"] == "/health":
            return await self.app(scope, receive, send)
        keys = [v for n, v in scope["headers"] if n.lower() == b"x-api-key"]
        if len(keys) == 1 and keys[0].decode() in self.valid_digests:
            return await self.app(scope, receive, send)
"""
        + _REFUSE,
        "hash the presented bytes",
    ),
    (
        "header name compared as it arrives (no lower())",
        _HEAD
        + """
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, send)
        if scope["type"] != "http":
            return
        if scope["method"] == "GET" and scope["path"] == "/health":
            return await self.app(scope, receive, send)
        keys = [v for n, v in scope["headers"] if n == b"x-api-key"]
        if len(keys) == 1 and """
        + _valid("keys[0]")
        + """:
            return await self.app(scope, receive, send)
"""
        + _REFUSE,
        "ASGI specification only recommends lower-casing",
    ),
]

RIGHT = [
    (
        "return await, a for loop, hmac.compare_digest over the digests, websocket closed",
        _HEAD
        + """
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["path"] == "/health" and scope["method"] == "GET":
            return await self.app(scope, receive, send)
        presented = []
        for name, value in scope["headers"]:
            if name.lower() == b"x-api-key":
                presented.append(value)
        if len(presented) == 1:
            digest = hashlib.sha256(presented[0]).hexdigest()
            for known in self.valid_digests:
                if hmac.compare_digest(digest, known):
                    return await self.app(scope, receive, send)
        code = errors.INVALID_API_KEY if presented else errors.MISSING_API_KEY
        body = json.dumps({"jsonrpc": "2.0", "error": {"code": code, "message": "Unauthorized"}, "id": None})
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json; charset=utf-8"),
                    (b"www-authenticate", b'ApiKey realm="mcp", header="x-api-key"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})
""",
    ),
    (
        "a helper method and an if/else chain, HEAD /health open too",
        _HEAD
        + """
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, receive, send)
        elif kind != "http":
            pass
        elif scope["path"] == "/health" and scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
        elif self._allowed(scope["headers"]):
            await self.app(scope, receive, send)
        else:
            await self._refuse(send)

    def _allowed(self, headers):
        values = [value for name, value in headers if name.lower() == b"x-api-key"]
        return len(values) == 1 and hashlib.sha256(values[0]).hexdigest() in self.valid_digests

    async def _refuse(self, send):
        body = json.dumps({"jsonrpc": "2.0", "error": {"code": -32010, "message": "Unauthorized"}, "id": None})
        headers = [(b"content-type", b"application/json"), (b"www-authenticate", b'ApiKey header="x-api-key"')]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body.encode()})
""",
    ),
]
