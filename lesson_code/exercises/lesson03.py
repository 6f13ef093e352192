"""Exercises for 03_middleware: read the key from the ASGI scope, shape the refusal, write the middleware.

q3's battery tests what the task asks, case by case, in-process (see
`asgi_harness`): a refusal never calls the app, a pass never sends a second
response, only `GET /health` is public, exactly one `x-api-key`, lifespan
through, websockets out. `run_cases(cls)` runs the same battery that
`q3.check` reports on. The reference answer, `ReferenceApiKeyMiddleware`,
lives in `references`; later lessons use
`lesson03.q3.solved_or_reference(MyApiKeyMiddleware)` to run the learner's own
class when it passes, and the reference otherwise.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lesson_code import errors
from lesson_code.exercises.asgi_harness import (
    Exchange,
    drive,
    http_scope,
    lifespan_scope,
    recording_app,
    websocket_scope,
)
from lesson_code.exercises.core import Exercise, Incorrect, NotAttempted, call, run_coroutine
from lesson_code.exercises.references import ReferenceApiKeyMiddleware
from lesson_code.keys import generate_key

if TYPE_CHECKING:
    from lesson_code.attacks.catalogue import Attack

__all__ = [
    "OUTSIDE_THE_TASK",
    "CaseOutcome",
    "ReferenceApiKeyMiddleware",
    "outside_the_task",
    "q1",
    "q2",
    "q3",
    "run_cases",
]


# -- q1: read the key from the scope -----------------------------------------------------------


def _scope(headers: list[tuple[bytes, bytes]], method: str = "POST", path: str = "/mcp") -> dict[str, Any]:
    return http_scope(headers, method, path)


class ReadApiKey(Exercise):
    todo = "write read_api_key(scope) so that it returns the x-api-key header's value, or None."
    hint_text = (
        "Each item of scope['headers'] is a (name, value) pair, both bytes. Which name are you looking for, "
        "and may it arrive spelled in capitals?"
    )
    solution_code = """def read_api_key(scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name.lower() == b"x-api-key":
            return value
    return None"""

    def _check(self, read_api_key: object) -> str:
        cases = [
            ([(b"x-api-key", b"demo-key-1")], b"demo-key-1", "x-api-key"),
            (
                [(b"x-api-key-extra", b"not-the-key"), (b"x-api-key", b"demo-key-3")],
                b"demo-key-3",
                "an x-api-key-extra header before x-api-key",
            ),
            ([(b"x-api-key-old", b"not-the-key")], None, "only an x-api-key-old header"),
            ([(b"X-API-Key", b"demo-key-2")], b"demo-key-2", "X-API-Key (capitals)"),
            ([], None, "no x-api-key header"),
        ]
        for headers, expected, label in cases:
            got = call(read_api_key, _scope(headers), shown_args="scope")
            if got == expected and type(got) is type(expected):
                continue
            prefix = f"with {label}, read_api_key(scope) returned {got!r}"
            if got in (b"not-the-key", "not-the-key"):
                raise Incorrect(
                    f"{prefix}, the value of another header. x-api-key-extra is not x-api-key: compare the whole "
                    "name (==), not its start (startswith) or a part of it (in)."
                )
            if expected is None:
                raise Incorrect(f"{prefix}; return None when the request carries no key.")
            if isinstance(got, str):
                raise Incorrect(f"{prefix}, a str. Return the raw bytes: hashing works on bytes, no decoding needed.")
            if got is None and label.startswith("X-"):
                raise Incorrect(
                    f"{prefix}. Header names are case-insensitive, and the ASGI specification only recommends "
                    "that servers lower-case them (uvicorn does): compare name.lower() with b'x-api-key'."
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

NOT_PURE_ASGI = (
    "{name} builds on Starlette's BaseHTTPMiddleware. This course writes pure ASGI middleware instead, for two "
    "reasons: BaseHTTPMiddleware hands every non-HTTP connection (a websocket) to the app unchecked, and it relays "
    "each response through its own task and memory stream, which the MCP app's streamed (SSE) responses should not "
    "go through. Write `async def __call__(self, scope, receive, send)` as in section 3."
)

FORGOT_RETURN = (
    "`return` right after refusing, or the app runs anyway (a real server then fails with "
    "'response already completed')."
)


@dataclass(frozen=True)
class CaseOutcome:
    """One case of the battery: what was tried, whether it passed, and why not."""

    case: str
    passed: bool
    reason: str = ""

    def __str__(self) -> str:
        return f"{'✓' if self.passed else '✗'} {self.case}"


def _crash(exchange: Exchange) -> str:
    if exchange.timed_out:
        return "your middleware never finished (it waited for more than 2 s)"
    error = exchange.error
    return f"your middleware raised {type(error).__name__}: {error}"


def _expect_refused(exchange: Exchange, what: str, why: str) -> str | None:
    """Why this exchange is not a proper 401 refusal (`why` says what the task asks), or None if it is."""
    own = [m for m in exchange.by("middleware") if m.get("type") == "http.response.start"]
    if exchange.reached_app:
        if own:
            return f"{what}: your middleware sent a {own[0].get('status')} but then called the app too. {FORGOT_RETURN}"
        return f"{what} reached the app. {why}"
    if exchange.error is not None or exchange.timed_out:
        return f"{what}: {_crash(exchange)}"
    if exchange.status is None:
        return f"{what}: no response was sent. Refuse with http.response.start (status 401), then http.response.body."
    if len(exchange.starts) > 1:
        return f"{what}: your middleware sent {len(exchange.starts)} responses; send exactly one."
    if exchange.status == 403:
        return (
            f"{what} got 403. 403 means 'I know who you are, and you may not'; a missing or wrong key "
            "is 401 'who are you?'."
        )
    if exchange.status != 401:
        return f"{what} got HTTP {exchange.status}; expected 401. {why}"
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


def _expect_passed(exchange: Exchange, what: str, why_not: str) -> str | None:
    """Why this exchange did not pass the request to the app exactly once, untouched, or None if it did."""
    if exchange.error is not None or exchange.timed_out:
        return f"{what}: {_crash(exchange)}"
    if not exchange.reached_app:
        return f"{what} never reached the app. {why_not}"
    if exchange.app_calls > 1:
        return f"{what}: your middleware called the app {exchange.app_calls} times; call it once."
    own = exchange.by("middleware")
    if own:
        kinds = ", ".join(str(m.get("status", m.get("type"))) for m in own if m.get("type") != "http.response.body")
        return (
            f"{what} reached the app, but then your middleware sent a response of its own too ({kinds}). "
            "`return` right after `await self.app(...)`, or a real server fails with 'response already completed'."
        )
    return None


def _expect_websocket_kept_out(exchange: Exchange) -> str | None:
    what = "a websocket connection without a key"
    if exchange.error is not None or exchange.timed_out:
        return f"{what}: {_crash(exchange)}"
    if exchange.reached_app:
        return (
            f"{what} reached the app. Pass only lifespan scopes straight through; check or refuse everything else "
            "(this server offers no websockets, so returning without calling the app is enough)."
        )
    wrong = [m.get("type") for m in exchange.by("middleware") if m.get("type") != "websocket.close"]
    if wrong:
        return (
            f"{what}: your middleware sent {wrong[0]!r}, which a websocket cannot take (the server raises). For a "
            "websocket, return without sending anything, or send {'type': 'websocket.close'}."
        )
    return None


def _expect_lifespan_through(exchange: Exchange) -> str | None:
    what = "a lifespan event (the server starting up)"
    if exchange.error is not None or exchange.timed_out:
        return (
            f"{what}: {_crash(exchange)}. Only HTTP requests carry headers: send lifespan scopes straight to self.app."
        )
    if not exchange.reached_app:
        return (
            f"{what} never reached the app, so the MCP app could not start. Send lifespan scopes straight to self.app."
        )
    return _expect_passed(exchange, what, "")


# (label, scope builder, judge) for the cases after the three basic ones; each judge gets the exchange.
_HEALTH_GET_ONLY = (
    "The task opens only GET /health; every other method on /health needs a key. Check the method as well as the path."
)
_HEALTH_EXACT = (
    "Only the path /health itself is public: compare scope['path'] == '/health'. startswith('/health') also "
    "opens /healthz and /health/../mcp, which are other paths."
)
_EVERY_METHOD = (
    "Every method needs a key, not only POST: this server serves no browser pages, so not even OPTIONS "
    "(a CORS preflight) may pass without one. Deny by default."
)
_EXACTLY_ONE = (
    "The task says exactly one x-api-key header. With two, which one counts? Servers and frameworks disagree "
    "(some read the first, some the last), so an attacker could make your check read one and the app another. "
    "Collect every x-api-key value (a dict keeps only one) and refuse unless there is exactly one."
)
_LOOKALIKE = "x-api-key-old is another header, not x-api-key: compare the whole name (==), not its start (startswith)."
_CAPITALS = (
    "Uvicorn lower-cases header names before your middleware sees them, but HTTP says names are case-insensitive "
    "and the ASGI specification only recommends lower-casing, so another server (or a test client) may pass "
    "X-API-Key as sent. Match the name in any case: compare name.lower() with b'x-api-key'."
)


async def _battery(cls: type) -> list[CaseOutcome]:
    key = generate_key()
    digests = {hashlib.sha256(key.encode()).hexdigest()}
    raw_key = key.encode()
    wrong_key = generate_key().encode()
    outcomes: list[CaseOutcome] = []

    async def case(label: str, scope: dict[str, Any], judge: Callable[[Exchange], str | None]) -> None:
        exchange = await drive(cls, digests, scope)
        reason = judge(exchange)
        outcomes.append(CaseOutcome(label, reason is None, reason or ""))

    def refused(what: str, why: str) -> Callable[[Exchange], str | None]:
        return lambda ex: _expect_refused(ex, what, why)

    async def valid_key_why_not() -> str:
        """Why a valid key may have been refused: look the raw key up as if it were a digest."""
        for as_stored in ({key}, {raw_key}):
            # The probe stores the raw key (bytes) on purpose: it catches a check that compares undigested keys.
            probe = await drive(cls, as_stored, _scope([(b"x-api-key", raw_key)]))  # type: ignore[arg-type]
            if probe.reached_app:
                return (
                    "You look the key itself up in the set, but the set holds SHA-256 digests: hash the presented "
                    "bytes with hashlib.sha256(value).hexdigest() first."
                )
        return (
            "Check each step: names and values in scope['headers'] are bytes (compare with b'x-api-key'); hash the "
            "value with hashlib.sha256(value).hexdigest(); look that digest up in self.valid_digests."
        )

    await case("missing key → 401 with a JSON-RPC error", _scope([]), refused("a request without a key", ""))
    await case(
        "wrong key → 401",
        _scope([(b"x-api-key", wrong_key)]),
        refused("a request with a wrong key", "Only a key whose digest is in valid_digests may pass."),
    )
    why_not = await valid_key_why_not()
    await case(
        "valid key → passed to the app, once",
        _scope([(b"x-api-key", raw_key)]),
        lambda ex: _expect_passed(ex, "a request with a valid key", why_not),
    )
    await case(
        "two x-api-key headers, valid then wrong → 401",
        _scope([(b"x-api-key", raw_key), (b"x-api-key", wrong_key)]),
        refused("a request with two x-api-key headers (a valid key, then a wrong one)", _EXACTLY_ONE),
    )
    await case(
        "two x-api-key headers, wrong then valid → 401",
        _scope([(b"x-api-key", wrong_key), (b"x-api-key", raw_key)]),
        refused("a request with two x-api-key headers (a wrong key, then a valid one)", _EXACTLY_ONE),
    )
    await case(
        "the valid key in an x-api-key-old header → 401",
        _scope([(b"x-api-key-old", raw_key)]),
        refused("the valid key in a header named x-api-key-old", _LOOKALIKE),
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
    for method in ("POST", "DELETE"):
        await case(
            f"{method} /health without a key → 401",
            _scope([], method=method, path="/health"),
            refused(f"{method} /health without a key", _HEALTH_GET_ONLY),
        )
    for path in ("/healthz", "/health/../mcp"):
        await case(
            f"GET {path} without a key → 401",
            _scope([], method="GET", path=path),
            refused(f"GET {path} without a key", _HEALTH_EXACT),
        )
    await case(
        "POST /mcp/ without a key → 401",
        _scope([], path="/mcp/"),
        refused(
            "POST /mcp/ (with a trailing slash) without a key",
            "Protect every path except GET /health, rather than listing the paths to protect: a new route, or /mcp "
            "spelled differently, would slip past.",
        ),
    )
    for method in ("OPTIONS", "GET", "DELETE"):
        await case(
            f"{method} /mcp without a key → 401",
            _scope([], method=method, path="/mcp"),
            refused(f"{method} /mcp without a key", _EVERY_METHOD),
        )
    await case("lifespan (server start-up) → passed to the app", lifespan_scope(), _expect_lifespan_through)
    await case("websocket without a key → kept out", websocket_scope(), _expect_websocket_kept_out)
    await case(
        "X-API-Key in capitals → passed to the app",
        _scope([(b"X-API-Key", raw_key)]),
        lambda ex: _expect_passed(ex, "a valid key sent with the header name spelled X-API-Key", _CAPITALS),
    )
    return outcomes


#: Why lesson 04 sets some attacks aside when it scores a class written for this task.
OUTSIDE_THE_TASK = "not part of lesson 03's task, which reads only x-api-key (Authorization comes in lesson 06)"


def outside_the_task(attack: Attack) -> bool:
    """Attacks through the Authorization header: lesson 03's task never asks a class to read it."""
    return any(name.lower() == b"authorization" for name, _ in attack.headers)


def run_cases(cls: type) -> list[CaseOutcome]:
    """Run the battery against a middleware class `cls(app, valid_digests)`, in-process."""
    return run_coroutine(lambda: _battery(cls), timeout=60)  # 2 s at most per case


def _is_base_http_middleware(cls: type) -> bool:
    try:
        from starlette.middleware.base import BaseHTTPMiddleware
    except ImportError:  # pragma: no cover - starlette comes with the MCP SDK
        return False
    return issubclass(cls, BaseHTTPMiddleware)


class ApiKeyMiddlewareExercise(Exercise):
    todo = "write the body of MyApiKeyMiddleware.__call__ (replace the raise NotImplementedError line)."
    hint_text = (
        "Decide in the order of the task: which scope type goes straight through, which one request is public, "
        "and what exactly must hold for a request to pass. Everything else is refused, and after refusing "
        "(or after passing on) nothing more happens."
    )
    solution_code = inspect.getsource(ReferenceApiKeyMiddleware).replace(
        "class ReferenceApiKeyMiddleware:", "class MyApiKeyMiddleware:"
    )
    reference = ReferenceApiKeyMiddleware

    def _check(self, cls: object) -> str | tuple[str, list[str]]:
        if not isinstance(cls, type):
            raise Incorrect(f"pass the class itself, MyApiKeyMiddleware, not {cls!r}.")
        if _is_base_http_middleware(cls):
            raise Incorrect(NOT_PURE_ASGI.format(name=cls.__name__))
        try:
            cls(recording_app(Exchange()), set())
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
