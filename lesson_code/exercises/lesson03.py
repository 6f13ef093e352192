"""Exercises for 03_middleware: read the key from the ASGI scope, shape the refusal, write the middleware.

`ReferenceApiKeyMiddleware` is the reference answer to q3. Later lessons use
`lesson03.q3.solved_or_reference(MyApiKeyMiddleware)` to run the learner's own
class when it passes, and this one otherwise. `run_cases(cls)` runs the same
in-process battery that `q3.check` reports on.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lesson_code import errors
from lesson_code.exercises.core import Exercise, Incorrect, NotAttempted, call, run_coroutine
from lesson_code.keys import generate_key

# -- the reference answer to q3 -------------------------------------------------------------


class ReferenceApiKeyMiddleware:
    """Pass a request on to `app` only if it carries a valid x-api-key; GET /health is public."""

    def __init__(self, app, valid_digests):
        self.app = app
        self.valid_digests = valid_digests

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":  # start-up and shut-down: no request, nothing to check
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # a websocket, say: this server offers none, so it gets nothing
            return
        if scope["method"] == "GET" and scope["path"] == "/health":  # public: health checks carry no key
            await self.app(scope, receive, send)
            return
        keys = [value for name, value in scope["headers"] if name.lower() == b"x-api-key"]
        if len(keys) == 1 and hashlib.sha256(keys[0]).hexdigest() in self.valid_digests:
            await self.app(scope, receive, send)  # the counterpart of next(): pass the request on
            return
        if keys:
            code, message = errors.INVALID_API_KEY, "Unauthorized: invalid API key."
        else:
            code, message = errors.MISSING_API_KEY, "Unauthorized: missing API key. Send it in the x-api-key header."
        body = json.dumps({"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": None}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"www-authenticate", b'ApiKey realm="mcp", header="x-api-key"'),
        ]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})


# -- q1: read the key from the scope -----------------------------------------------------------


def _scope(headers: list[tuple[bytes, bytes]], method: str = "POST", path: str = "/mcp") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"lesson03.test"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("lesson03.test", 80),
    }


class ReadApiKey(Exercise):
    todo = "write read_api_key(scope) so that it returns the x-api-key header's value, or None."
    hint_text = (
        "Loop over scope['headers']: each item is a (name, value) pair of bytes. Compare name.lower() "
        "with b'x-api-key'."
    )
    solution_code = """def read_api_key(scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name.lower() == b"x-api-key":
            return value
    return None"""

    def _check(self, read_api_key: object) -> str:
        cases = [
            ([(b"accept", b"application/json"), (b"x-api-key", b"demo-key-1")], b"demo-key-1", "x-api-key"),
            ([(b"X-API-Key", b"demo-key-2")], b"demo-key-2", "X-API-Key (capitals)"),
            ([(b"accept", b"application/json")], None, "no x-api-key header"),
        ]
        for headers, expected, label in cases:
            got = call(read_api_key, _scope(headers), shown_args="scope")  # type: ignore[arg-type]
            if got == expected and type(got) is type(expected):
                continue
            prefix = f"with {label}, read_api_key(scope) returned {got!r}"
            if expected is None:
                raise Incorrect(f"{prefix}; return None when the request carries no key.")
            if isinstance(got, str):
                raise Incorrect(f"{prefix}, a str. Return the raw bytes: hashing works on bytes, no decoding needed.")
            if got is None and label.startswith("X-"):
                raise Incorrect(
                    f"{prefix}. Header names are case-insensitive, and an ASGI server may keep the client's "
                    "spelling: compare name.lower() with b'x-api-key'."
                )
            if got is None:
                raise Incorrect(
                    f"{prefix}, though the request carries the header. Names and values in scope['headers'] "
                    "are bytes: compare with b'x-api-key', not 'x-api-key'."
                )
            raise Incorrect(f"{prefix}; expected {expected!r}.")
        return "bytes in, bytes out, and the header name matched in any case."


# -- q2: the refusal's body -----------------------------------------------------------------------


class RefusalBody(Exercise):
    todo = "fill in refusal: the JSON-RPC 2.0 error the middleware sends when the key is missing."
    hint_text = (
        "Three keys: 'jsonrpc' (the text \"2.0\"), 'error' (a dict with 'code' and 'message') and 'id'. "
        "The code for a missing key is in the table above."
    )
    solution_code = """refusal = {
    "jsonrpc": "2.0",
    "error": {
        "code": errors.MISSING_API_KEY,
        "message": "Unauthorized: missing API key. Send it in the x-api-key header.",
    },
    "id": None,
}"""

    def _check(self, refusal: object) -> str:
        if not isinstance(refusal, dict):
            raise Incorrect(f"refusal should be a dict (it becomes the JSON body); got {type(refusal).__name__}.")
        version = refusal.get("jsonrpc")
        if version != "2.0" or not isinstance(version, str):
            if isinstance(version, int | float) and version == 2:
                raise Incorrect('"jsonrpc" must be the text "2.0", in quotes: clients compare it as a string.')
            raise Incorrect('every JSON-RPC 2.0 message says "jsonrpc": "2.0".')
        if "result" in refusal:
            raise Incorrect('a JSON-RPC response carries "result" or "error", never both. This one is an error.')
        error = refusal.get("error")
        if not isinstance(error, dict) or "code" not in error or "message" not in error:
            raise Incorrect('"error" should be a dict with a "code" (a number) and a "message" (text).')
        code = error["code"]
        if isinstance(code, bool) or not isinstance(code, int):
            raise Incorrect(f'error "code" must be an integer, not {code!r}.')
        if code in (401, 403):
            raise Incorrect(
                f"{code} is an HTTP status, and that travels in the response's status line. error.code is a "
                "JSON-RPC code: this course uses -32010 (errors.MISSING_API_KEY) for a missing key."
            )
        if code in (-32000, -32001):
            raise Incorrect(
                f"the MCP client reads {code} as connection trouble and retries, so a missing key would look "
                "like a hang. Use -32010 (errors.MISSING_API_KEY)."
            )
        if code == errors.INVALID_API_KEY:
            raise Incorrect("-32011 means a wrong key. This refusal is for a missing one: -32010.")
        if code != errors.MISSING_API_KEY:
            raise Incorrect(f"use -32010 (errors.MISSING_API_KEY) for a missing key, not {code}.")
        message = error["message"]
        if not isinstance(message, str) or not message.strip():
            raise Incorrect('say what went wrong in error "message", e.g. "Unauthorized: missing API key."')
        if "id" not in refusal:
            raise Incorrect('a JSON-RPC response always has an "id"; here it is None (null).')
        if refusal["id"] is not None:
            raise Incorrect(
                f'"id" is {refusal["id"]!r}, but the middleware refuses before reading the body, so it cannot '
                "know the request's id. JSON-RPC says: use None (null)."
            )
        extra = sorted(set(refusal) - {"jsonrpc", "error", "id"})
        if extra:
            raise Incorrect(f"a JSON-RPC error response has exactly jsonrpc, error and id; remove {extra}.")
        json.dumps(refusal)  # must be serialisable
        return "a client that speaks JSON-RPC finds error.code and error.message where it expects them."


# -- q3: the middleware -------------------------------------------------------------------------------


@dataclass
class _Exchange:
    """What the middleware did with one request: the app's part and the messages it sent."""

    reached_app: list[str] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    error: BaseException | None = None

    @property
    def starts(self) -> list[dict[str, Any]]:
        return [m for m in self.sent if m.get("type") == "http.response.start"]

    @property
    def status(self) -> int | None:
        return self.starts[0].get("status") if self.starts else None

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.starts[0].get("headers", []) if self.starts else []:
            if bytes(key).lower() == name:
                return bytes(value)
        return None

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m.get("type") == "http.response.body")


def _recording_app(exchange: _Exchange) -> Callable:
    async def app(scope: dict, receive: Callable, send: Callable) -> None:
        exchange.reached_app.append(scope["type"])
        if scope["type"] == "http":
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b'{"reached": "the app"}'})

    return app


async def _drive(cls: type, digests: set[str], scope: dict[str, Any]) -> _Exchange:
    exchange = _Exchange()
    middleware = cls(_recording_app(exchange), digests)

    async def receive() -> dict[str, Any]:
        if scope["type"] == "lifespan":
            return {"type": "lifespan.startup"}
        if scope["type"] == "websocket":
            return {"type": "websocket.connect"}
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        exchange.sent.append(message)

    try:
        await asyncio.wait_for(middleware(scope, receive, send), 2)
    except NotImplementedError:
        raise
    except Exception as exc:
        exchange.error = exc
    return exchange


@dataclass(frozen=True)
class CaseOutcome:
    """One case of the battery: what was tried, whether it passed, and why not."""

    case: str
    passed: bool
    reason: str = ""

    def __str__(self) -> str:
        return f"{'✓' if self.passed else '✗'} {self.case}"


def _crash(exchange: _Exchange) -> str:
    error = exchange.error
    return f"your middleware raised {type(error).__name__}: {error}"


def _expect_refused(exchange: _Exchange, what: str) -> str | None:
    """Why this exchange is not a proper 401 refusal, or None if it is."""
    if exchange.reached_app:
        if exchange.status == 401 or len(exchange.starts) > 1:
            return f"{what}: your middleware sent a 401 but then called the app too. `return` right after refusing."
        return f"{what} reached the app. Only a request with a valid key may pass."
    if exchange.error is not None:
        return f"{what}: {_crash(exchange)}"
    if exchange.status is None:
        return f"{what}: no response was sent. Refuse with http.response.start (status 401), then http.response.body."
    if exchange.status == 403:
        return (
            f"{what} got 403. 403 means 'I know who you are, and you may not'; a missing or wrong key "
            "is 401 'who are you?'."
        )
    if exchange.status != 401:
        return f"{what} got HTTP {exchange.status}; expected 401."
    try:
        payload = json.loads(exchange.body)
    except ValueError:
        return f"{what}: the 401's body is not JSON. Send a JSON-RPC error object."
    error = payload.get("error") if isinstance(payload, dict) else None
    if (
        not isinstance(payload, dict)
        or payload.get("jsonrpc") != "2.0"
        or "id" not in payload
        or not isinstance(error, dict)
        or not isinstance(error.get("code"), int)
        or not isinstance(error.get("message"), str)
    ):
        return (
            f'{what}: the body should be a JSON-RPC error: {{"jsonrpc": "2.0", '
            '"error": {"code": ..., "message": ...}, "id": null}.'
        )
    if payload["id"] is not None:
        return f'{what}: the body\'s "id" should be null (None): the middleware refuses before reading the request.'
    content_type = exchange.header(b"content-type") or b""
    if not content_type.startswith(b"application/json"):
        return f"{what}: say content-type: application/json, so clients parse the body as JSON."
    if exchange.header(b"www-authenticate") is None:
        return (
            f"{what}: a 401 must say how to authenticate. Add a www-authenticate header, e.g. "
            'ApiKey realm="mcp", header="x-api-key".'
        )
    return None


def _expect_passed(exchange: _Exchange, what: str, why_not: str) -> str | None:
    if exchange.error is not None:
        return f"{what}: {_crash(exchange)}"
    if not exchange.reached_app:
        return f"{what} never reached the app. {why_not}"
    return None


async def _battery(cls: type) -> list[CaseOutcome]:
    key = generate_key()
    digests = {hashlib.sha256(key.encode()).hexdigest()}
    raw_key = key.encode()
    outcomes: list[CaseOutcome] = []

    async def case(label: str, scope: dict[str, Any], judge: Callable[[_Exchange], str | None]) -> None:
        exchange = await _drive(cls, digests, scope)
        reason = judge(exchange)
        outcomes.append(CaseOutcome(label, reason is None, reason or ""))

    await case(
        "missing key → 401 with a JSON-RPC error",
        _scope([]),
        lambda ex: _expect_refused(ex, "a request without a key"),
    )
    await case(
        "wrong key → 401",
        _scope([(b"x-api-key", b"sk-mcp-wrong")]),
        lambda ex: _expect_refused(ex, "a request with a wrong key"),
    )
    await case(
        "valid key → passed to the app",
        _scope([(b"x-api-key", raw_key)]),
        lambda ex: _expect_passed(
            ex,
            "a request with a valid key",
            "The set holds SHA-256 digests: hash the presented bytes with hashlib.sha256(value).hexdigest(), "
            "then look the digest up.",
        ),
    )
    await case(
        "X-API-Key in capitals → passed to the app",
        _scope([(b"X-API-Key", raw_key)]),
        lambda ex: _expect_passed(
            ex,
            "a valid key sent as X-API-Key",
            "Header names are case-insensitive, and an ASGI server may keep the client's spelling: "
            "compare name.lower() with b'x-api-key'.",
        ),
    )
    await case(
        "GET /health without a key → passed to the app",
        _scope([], method="GET", path="/health"),
        lambda ex: _expect_passed(
            ex,
            "GET /health without a key",
            "Health checks (load balancers, uptime monitors) carry no key: let GET /health through.",
        ),
    )
    await case(
        "POST /mcp/ without a key → 401",
        _scope([], path="/mcp/"),
        lambda ex: (
            None
            if _expect_refused(ex, "") is None
            else "POST /mcp/ (with a trailing slash) without a key was not refused with a 401. Protect every path "
            "except GET /health, rather than listing the paths to protect: a new route, or /mcp spelled "
            "differently, would slip past."
        ),
    )
    await case(
        "lifespan (server start-up) → passed to the app",
        {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
        lambda ex: (
            f"a lifespan event (the server starting up) made {_crash(ex)}. Only HTTP requests carry headers: "
            "send lifespan scopes straight to self.app."
            if ex.error is not None
            else None
            if ex.reached_app
            else "a lifespan event never reached the app, so the MCP app could not start. "
            "Send lifespan scopes straight to self.app."
        ),
    )
    await case(
        "websocket without a key → kept out",
        {**_scope([]), "type": "websocket", "scheme": "ws"},
        lambda ex: (
            "a websocket connection without a key reached the app. Pass only lifespan scopes straight "
            "through; check or refuse everything else."
            if ex.reached_app
            else None
        ),
    )
    return outcomes


def run_cases(cls: type) -> list[CaseOutcome]:
    """Run the battery against a middleware class `cls(app, valid_digests)`, in-process."""
    return run_coroutine(lambda: _battery(cls), timeout=30)


class ApiKeyMiddlewareExercise(Exercise):
    todo = "write the body of MyApiKeyMiddleware.__call__ (replace the raise NotImplementedError line)."
    hint_text = (
        "Three ways through, checked in order: lifespan → self.app; GET /health → self.app; one x-api-key whose "
        "SHA-256 digest is in self.valid_digests → self.app. Everything else: send a 401 with the JSON-RPC "
        "body from q2 and a www-authenticate header, then return."
    )
    solution_code = inspect.getsource(ReferenceApiKeyMiddleware).replace(
        "class ReferenceApiKeyMiddleware:", "class MyApiKeyMiddleware:"
    )
    reference = ReferenceApiKeyMiddleware

    def _check(self, cls: object) -> str:
        if not isinstance(cls, type):
            raise Incorrect(f"pass the class itself, MyApiKeyMiddleware, not {cls!r}.")
        try:
            cls(_recording_app(_Exchange()), set())
        except NotImplementedError:
            raise NotAttempted from None
        except Exception as exc:
            raise Incorrect(
                f"{cls.__name__}(app, valid_digests) raised {type(exc).__name__}: {exc}. "
                "Keep the signature __init__(self, app, valid_digests)."
            ) from None
        try:
            outcomes = run_cases(cls)
        except NotImplementedError:
            raise NotAttempted from None
        failed = [o for o in outcomes if not o.passed]
        if failed:
            raise Incorrect(failed[0].reason, [str(o) for o in outcomes])
        return f"{cls.__name__} passed all {len(outcomes)} cases.", [str(o) for o in outcomes]


q1 = ReadApiKey()
q2 = RefusalBody()
q3 = ApiKeyMiddlewareExercise()
