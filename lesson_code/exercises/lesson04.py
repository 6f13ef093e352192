"""Exercises for 04_secure_the_endpoint: stack the layers, predict default deny, predict session binding."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from lesson_code.exercises.asgi_harness import Exchange, http_scope, recording_app
from lesson_code.exercises.core import DictExercise, Exercise, Incorrect, call, run_coroutine
from lesson_code.exercises.references import reference_wrap
from lesson_code.keys import KeyRing, generate_key

__all__ = ["REQUESTS", "STATUS_OF", "q1", "q2", "q3", "reference_wrap"]

# -- q1: wrap the MCP app -----------------------------------------------------------------------


def _inner_app(exchange: Exchange) -> Callable[..., Any]:
    """Stands in for the MCP app: records each call and answers 200."""
    return recording_app(exchange)


async def _through(outer: Any, exchange: Exchange, scope: dict[str, Any]) -> Exchange:
    """Send one scope through the wrapped app; `exchange` is the one the inner stand-in records into."""
    exchange.app_calls, exchange.sent = 0, []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        exchange.sent.append(("app" if exchange.inside_app else "middleware", message))

    await outer(scope, receive, send)
    return exchange


def _send_through(outer: Any, exchange: Exchange, scope: dict[str, Any]) -> Exchange:
    return run_coroutine(lambda: _through(outer, exchange, scope))


def _layers(app: Any, stop: Any) -> list[Any]:
    """The chain of `.app` attributes from `app` down to `stop` (at most a few levels)."""
    chain = [app]
    while chain[-1] is not stop and len(chain) < 6:
        inner = getattr(chain[-1], "app", None)
        if inner is None:
            break
        chain.append(inner)
    return chain


def _name(layer: Any, inner: Any) -> str:
    return "the MCP app" if layer is inner else type(layer).__name__


class Wrap(Exercise):
    todo = "write wrap(mcp_app, keyring) so that it returns the MCP app inside both middlewares."
    hint_text = (
        "Build it from the inside out. Each middleware takes the app it wraps as its first argument, and the "
        "outermost layer runs first: which check must a request meet first, and which layer needs what it found?"
    )
    solution_code = """def wrap(mcp_app, keyring):
    return ApiKeyMiddleware(AuthContextMiddleware(mcp_app), keyring)"""
    reference = staticmethod(reference_wrap)

    def _check(self, wrap: object) -> str:
        exchange = Exchange()
        inner = _inner_app(exchange)
        key = generate_key()
        keyring = KeyRing.from_keys({"check": key})
        outer = call(wrap, inner, keyring, shown_args="mcp_app, keyring")
        if outer is inner:
            raise Incorrect("wrap returned the MCP app unchanged: nothing checks the key, so the server is still open.")
        if not callable(outer):
            raise Incorrect(f"wrap returned {type(outer).__name__}; return an ASGI app (the outermost middleware).")
        chain = _layers(outer, inner)
        names = [_name(layer, inner) for layer in chain]
        shown = " → ".join(names)
        expected = ["ApiKeyMiddleware", "AuthContextMiddleware", "the MCP app"]
        if names == expected:
            if outer.keyring is not keyring:
                raise Incorrect("ApiKeyMiddleware got a different key ring: pass the keyring that wrap was given.")
            self._behaves(outer, exchange, key)
            return "ApiKeyMiddleware → AuthContextMiddleware → the MCP app. The key check runs first."
        if names == ["AuthContextMiddleware", "ApiKeyMiddleware", "the MCP app"]:
            raise Incorrect(
                f"your layers run {shown}. AuthContextMiddleware looks for scope['user'] before the key check "
                "has put it there, so it finds nobody and tools cannot ask who is calling. Swap them."
            )
        if names == ["ApiKeyMiddleware", "the MCP app"]:
            raise Incorrect(
                "the key check is there, but AuthContextMiddleware is missing: get_access_token() inside a "
                "tool would return None. Put AuthContextMiddleware between the key check and the MCP app."
            )
        if names == ["AuthContextMiddleware", "the MCP app"]:
            raise Incorrect(
                "AuthContextMiddleware only passes on who is calling; it checks no key. Without ApiKeyMiddleware "
                "outside it, the server is still open."
            )
        if "ApiKeyMiddleware" not in names:
            raise Incorrect(f"your layers run {shown}: no ApiKeyMiddleware, so nothing checks the key.")
        if chain[-1] is not inner:
            raise Incorrect(f"your layers run {shown} and never reach the MCP app you were given: wrap mcp_app.")
        raise Incorrect(f"your layers run {shown}; expected {' → '.join(expected)}.")

    @staticmethod
    def _behaves(outer: Any, exchange: Exchange, key: str) -> None:
        """The layers are right; now do they keep /mcp closed without a key and open with one?"""
        for method, path in (("POST", "/mcp"), ("GET", "/mcp"), ("POST", "/health")):
            _send_through(outer, exchange, http_scope([], method, path))
            if exchange.reached_app:
                raise Incorrect(
                    f"the layers are in the right order, but {method} {path} without a key reached the MCP app. "
                    "Did you give ApiKeyMiddleware extra arguments (public_paths, header)? Its defaults are the "
                    "course's policy: only GET /health is public, and the key travels in x-api-key. Pass only "
                    "the app and the keyring."
                )
        _send_through(outer, exchange, http_scope([(b"x-api-key", key.encode())]))
        if not exchange.reached_app:
            raise Incorrect(
                "the layers are in the right order, but a request with a valid key in x-api-key never reached the "
                "MCP app. Pass only the app and the keyring: ApiKeyMiddleware's defaults read x-api-key."
            )


# -- q2: predict default deny ---------------------------------------------------------------------

REQUESTS: Final = (
    "GET /health, no key",
    "POST /mcp, no key",
    "POST /mcp/, no key",
    "POST /MCP, no key",
    "DELETE /health, no key",
    "POST /mcp, valid key",
)
STATUS_OF: Final = {
    "GET /health, no key": 200,
    "POST /mcp, no key": 401,
    "POST /mcp/, no key": 401,
    "POST /MCP, no key": 401,
    "DELETE /health, no key": 401,
    "POST /mcp, valid key": 200,
}
_WHY: Final = {
    "GET /health, no key": (
        "GET /health is on the allow-list, so a load balancer can ask whether the server is up "
        "without holding a key: 200."
    ),
    "POST /mcp, no key": "no key, and /mcp is not on the allow-list: 401 before any tool runs.",
    "POST /mcp/, no key": (
        "the middleware answers before the router has looked at the path. It does not protect '/mcp'; "
        "it lets through only GET /health, so any other spelling gets 401."
    ),
    "POST /MCP, no key": (
        "the router would say 404, but it never gets the chance: the middleware refuses first, whatever the path. 401."
    ),
    "DELETE /health, no key": (
        "only GET (and HEAD) of /health are public. Any other method needs a key, so the middleware "
        "answers 401 before the router could say 405."
    ),
    "POST /mcp, valid key": "a valid key passes the check, and tools/list answers 200 with the tool list.",
}


class PredictStatuses(DictExercise):
    todo = "fill in the status code (a number such as 200) you expect for each request in predicted."
    hint_text = (
        "The middleware runs before the router. What does it let through without a key, and does the path's "
        "spelling or the method change what it answers for everything else?"
    )
    solution_code = """predicted = {
    "GET /health, no key": 200,
    "POST /mcp, no key": 401,
    "POST /mcp/, no key": 401,
    "POST /MCP, no key": 401,
    "DELETE /health, no key": 401,
    "POST /mcp, valid key": 200,
}"""
    variable = "predicted"
    keys = REQUESTS
    quote_keys = True
    success = "default deny: one public door (GET /health), and a key for everything else, whatever the spelling."

    def check_entry(self, request: str, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Incorrect(f"{request}: write the status as a number without quotes, e.g. 401, not {value!r}.")
        if value != STATUS_OF[request]:
            why = _WHY[request]
            raise Incorrect(f"{request}: not {value}. {why[0].upper()}{why[1:]}")


# -- q3: predict session binding --------------------------------------------------------------------

_SESSION_WHY: Final = {
    200: (
        "Then any valid key could ride on anyone's session, and one leaked session id would hand over "
        "another person's conversation. The SDK remembers which key opened a session."
    ),
    401: (
        "Bob's key is valid, so the key check lets him through. It is the SDK's session manager, "
        "further in, that refuses him."
    ),
    403: (
        "Close: he is refused. But 403 would admit the session exists. The SDK answers as if it did not, "
        "so a guessed or stolen id tells Bob nothing."
    ),
    400: "The request is well formed; what is wrong is who is asking. Think about what the session manager knows.",
}


class PredictSessionBinding(Exercise):
    todo = "set bob_gets to the HTTP status (a number) you expect when Bob uses Alice's session id."
    hint_text = (
        "Bob passes the key check. Then the SDK looks up the session id and compares the session's "
        "owner with scope['user']. What does a server answer for a session it will not admit exists?"
    )
    solution_code = "bob_gets = 404"

    def _check(self, bob_gets: object) -> str:
        if isinstance(bob_gets, bool) or not isinstance(bob_gets, int):
            raise Incorrect(f"write the status as a number without quotes, e.g. 200, not {bob_gets!r}.")
        if bob_gets == 404:
            return "404 'Session not found': to Bob, Alice's session does not exist."
        reason = _SESSION_WHY.get(bob_gets, f"{bob_gets} is not what the SDK answers. {_SESSION_WHY[400]}")
        raise Incorrect(f"not {bob_gets}. {reason}")


q1 = Wrap()
q2 = PredictStatuses()
q3 = PredictSessionBinding()
