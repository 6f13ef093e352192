"""The attack catalogue: requests that must NOT get past an API-key check, and a scorecard.

Why a catalogue: "my middleware checks the key" is easy to believe and easy to get
wrong. A key check can be slipped past by spelling the path differently (`/mcp/`,
`//mcp`), by a method nobody thought of, by sending two keys and letting the check
read one while the app reads the other, by a key in the wrong header, or by a
look-alike value that a sloppy comparison accepts. Each case here is one such trick,
written down as data, so a learner can run all of them against their own middleware
and read which ones got through, and why.

How a case is judged: the request is sent over real HTTP (a raw socket, so duplicate
headers, raw bytes and odd request targets go out exactly as written), and the
attack is stopped only if

* the answer's status is one the case allows (401 mostly; 400 when the HTTP server
  itself refuses malformed bytes; 403/421 from the SDK's Origin/Host checks; 413/431
  for oversized requests; 429 from a throttle, if allowed),
* the shopping list and orders are exactly as before (`store.snapshot()` is taken
  before and after every single attack; nothing is reset in between), and
* no key the attacker presented is echoed back in the response.

Usage in a notebook (top-level `await` works in Jupyter):

    scorecard = await run_attacks(MyMiddleware(inner_app, ...), store=shop.store, valid_key=KEY)
    scorecard                      # a short summary plus the failures
    print(scorecard.table())       # every case, one line each

An ASGI app is served with uvicorn on loopback for the run (its lifespan runs there,
which the MCP app needs) and stopped afterwards; an app can run its lifespan only
once, so pass a freshly built app, a zero-argument factory, or the URL (or
`BackgroundServer`) of a server that is already running.
"""

from __future__ import annotations

import base64
import html
import inspect
import json
import logging
import ssl
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import anyio
import h11
from starlette.types import ASGIApp

from lesson_code.background import BackgroundServer, ServerStartError
from lesson_code.keys import generate_key, key_digest
from lesson_code.raw_requests import PROTOCOL_VERSION, mcp_body
from lesson_code.store import ShoppingStore, Snapshot

__all__ = [
    "CATALOGUE",
    "GROUPS",
    "Attack",
    "AttackContext",
    "AttackResult",
    "RawResponse",
    "Scorecard",
    "describe_change",
    "get_attack",
    "judge",
    "run_attacks",
    "send_attack",
]

Header = tuple[bytes, bytes]

GROUPS: Final[dict[str, str]] = {
    "header": "the key header itself: missing, malformed, duplicated, look-alike or in the wrong header",
    "path": "other spellings of the path, hoping the check only guards '/mcp'",
    "method": "every HTTP method, hoping the check only guards POST",
    "body": "abusive bodies sent without a key: the check must refuse before reading them",
    "origin-host": "a valid key from a foreign web page (Origin) or a rebinding DNS name (Host)",
    "identity": "keys that exist but may not do this: revoked, read-only, or two keys at once",
}

# Placeholders an attack may use in its target, headers or body; the runner fills them in.
VALID: Final = b"{valid}"
SECOND: Final = b"{second}"
VIEWER: Final = b"{viewer}"
REVOKED: Final = b"{revoked}"
RANDOM: Final = b"{random}"
HOST: Final = b"{host}"
PORT: Final = b"{port}"
_OPTIONAL_KEYS: Final = {SECOND: "second_key", VIEWER: "viewer_key", REVOKED: "revoked_key"}
_MAX_BODY_KEPT: Final = 256 * 1024  # of a response, enough to judge it; a stream could be endless
_STREAM_GRACE_SECONDS: Final = 0.5  # how long to read a GET event stream that got through
_SEND_CHUNK: Final = 64 * 1024
_EXPECT_CONTINUE_OVER: Final = 64 * 1024  # bigger bodies wait for "100 Continue", as curl's do
_CONTINUE_WAIT_SECONDS: Final = 1.0
_SHOWN_FAILURES: Final = 15  # notebook views stay short; table() has everything
# Loggers that warn about each rejected Origin/Host/session: expected noise while attacking on purpose.
_NOISY_LOGGERS: Final = ("mcp.server.transport_security", "mcp.server.streamable_http_manager")


# --- the context the runner provides -------------------------------------------------------------


@dataclass(frozen=True)
class AttackContext:
    """The keys and address an attack is filled in with. Keys are kept out of `repr` on purpose.

    Only `valid_key` is required. Attacks that need a second shopper key, a viewer key or a
    revoked key are skipped (and reported as skipped) when that key is not given.
    """

    valid_key: str = field(repr=False)
    host: str = "127.0.0.1"
    second_key: str | None = field(default=None, repr=False)
    viewer_key: str | None = field(default=None, repr=False)
    revoked_key: str | None = field(default=None, repr=False)
    random_key: str = field(default_factory=generate_key, repr=False)  # well-formed, never issued

    def substitutions(self) -> dict[bytes, bytes]:
        """Placeholder -> bytes for every placeholder this context can fill."""
        valid = self.valid_key.encode()
        values: dict[bytes, bytes] = {
            VALID: valid,
            b"{valid_truncated}": valid[:-1],
            b"{valid_upper}": valid.upper(),
            b"{valid_digest}": key_digest(self.valid_key).encode(),
            b"{valid_basic}": base64.b64encode(b"user:" + valid),
            RANDOM: self.random_key.encode(),
            HOST: self.host.encode(),
            PORT: str(urlsplit(f"//{self.host}").port or 80).encode(),
        }
        for placeholder, name in _OPTIONAL_KEYS.items():
            key = getattr(self, name)
            if key is not None:
                values[placeholder] = key.encode()
        return values

    def secrets(self) -> list[bytes]:
        """Every key this context holds: none of them may ever appear in a response."""
        keys = [self.valid_key, self.second_key, self.viewer_key, self.revoked_key, self.random_key]
        return [k.encode() for k in keys if k]

    def missing(self, attack: Attack) -> list[str]:
        """The context keys `attack` needs but this context lacks (empty: it can run)."""
        needed = attack.raw_parts()
        return [
            name for placeholder, name in _OPTIONAL_KEYS.items() if placeholder in needed and not getattr(self, name)
        ]


# --- one attack ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    """One hostile HTTP request and what a secure server must answer.

    The request is data: `method`, the request `target` exactly as sent, `headers` as
    (name, value) byte pairs (so duplicates, odd case and raw bytes are possible), and
    `body`. Values may hold placeholders such as `{valid}` that `AttackContext` fills in.
    `Host`, `Content-Length` and `Connection: close` (and `Expect: 100-continue` for a
    body over 64 KiB) are added unless the attack sets them itself or lists them in
    `omit`. `body_padding` appends that many spaces to the body (still valid JSON)
    without keeping megabytes in the catalogue.

    Expectation: the status is in `expect_status`; if it is 200 (a tool-level refusal,
    for scope checks) the body must contain `refusal_text`. In every case the store must
    not change and no presented key may be echoed.
    """

    id: str
    group: str
    description: str
    method: str = "POST"
    target: str = "/mcp"
    headers: tuple[Header, ...] = ()
    body: bytes = b""
    body_padding: int = 0
    omit: frozenset[bytes] = frozenset()
    expect_status: frozenset[int] = frozenset({401})
    refusal_text: str | None = None

    @property
    def expected(self) -> str:
        """The expectation in words, for tables: '401', '401 or 413', ..."""
        codes = sorted(self.expect_status)
        words = [f"200 with {self.refusal_text!r}" if c == 200 and self.refusal_text else str(c) for c in codes]
        return " or ".join(words)

    def raw_parts(self) -> bytes:
        """Everything that may hold a placeholder, joined (to find what the attack needs)."""
        return b"\n".join([self.target.encode(), *(n + b": " + v for n, v in self.headers), self.body])

    def render(self, context: AttackContext) -> bytes:
        """The exact bytes of the HTTP/1.1 request for this attack in `context`."""
        values = context.substitutions()

        def fill(raw: bytes) -> bytes:
            for placeholder, value in values.items():
                if placeholder in raw:
                    raw = raw.replace(placeholder, value)
            return raw

        body = fill(self.body) + b" " * self.body_padding
        headers = [(fill(name), fill(value)) for name, value in self.headers]
        present = {name.lower() for name, _ in headers} | self.omit
        auto: list[Header] = []
        if b"host" not in present:
            auto.append((b"host", values[HOST]))
        out = [*auto, *headers]
        if (
            b"content-length" not in present
            and b"transfer-encoding" not in present
            and (body or self.method not in ("GET", "HEAD", "OPTIONS", "TRACE", "CONNECT", "DELETE"))
        ):
            out.append((b"content-length", str(len(body)).encode()))
        if len(body) > _EXPECT_CONTINUE_OVER and b"expect" not in present:
            out.append((b"expect", b"100-continue"))
        if b"connection" not in present:
            out.append((b"connection", b"close"))
        target = fill(self.target.encode("utf-8", "surrogateescape"))
        lines = [self.method.encode() + b" " + target + b" HTTP/1.1"]
        lines += [name + b": " + value for name, value in out]
        return b"\r\n".join(lines) + b"\r\n\r\n" + body

    def presented_secrets(self, context: AttackContext) -> list[bytes]:
        """Key-like values this request carries (filled in), for the 'never echoed' check."""
        rendered = self.render(context)
        found = list(context.secrets())
        head = rendered.split(b"\r\n\r\n", 1)[0]
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if any(word in name.lower() for word in (b"key", b"auth", b"token", b"cookie")):
                for part in value.replace(b",", b" ").replace(b"=", b" ").split():
                    if len(part) >= 16:  # shorter parts are words like 'x-api-key', not secrets
                        found.append(part[:64])
        return found


# --- the catalogue ----------------------------------------------------------------------------------


def _mcp_headers(method: str = "tools/call", tool: str | None = "add_item") -> tuple[Header, ...]:
    """The MCP headers a real 2026-07-28 client sends, so a request that gets through really runs."""
    headers = [
        (b"content-type", b"application/json"),
        (b"accept", b"application/json, text/event-stream"),
        (b"mcp-protocol-version", PROTOCOL_VERSION.encode()),
        (b"mcp-method", method.encode()),
    ]
    if tool is not None:
        headers.append((b"mcp-name", tool.encode()))
    return tuple(headers)


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _tool_body(tool: str, arguments: dict[str, Any] | None = None) -> bytes:
    return _json(mcp_body("tools/call", {"name": tool, "arguments": arguments or {}}, request_id=1))


def _marker(attack_id: str) -> str:
    """The item an attack tries to add: if it appears on the list, this attack got through."""
    return f"attack {attack_id}"


def _post(
    attack_id: str,
    group: str,
    description: str,
    *credentials: Header,
    expect: Iterable[int] = (401,),
    **options: Any,
) -> Attack:
    """A POST that would add a marker item, carrying `credentials` on top of the MCP headers."""
    options.setdefault("headers", _mcp_headers() + credentials)
    options.setdefault("body", _tool_body("add_item", {"name": _marker(attack_id), "quantity": 1}))
    return Attack(attack_id, group, description, expect_status=frozenset(expect), **options)


def _header_attacks() -> list[Attack]:
    g = "header"
    key = b"x-api-key"
    auth = b"authorization"
    return [
        _post("header-missing", g, "No API key at all."),
        _post("header-empty", g, "An x-api-key header that is present but empty.", (key, b"")),
        _post("header-whitespace", g, "An x-api-key made only of spaces and a tab.", (key, b"   \t ")),
        _post("header-wrong-key", g, "A well-formed key that was never issued.", (key, RANDOM)),
        _post("header-prefix-only", g, "Just the key prefix 'sk-mcp-' (beats a startswith check).", (key, b"sk-mcp-")),
        _post(
            "header-truncated-key",
            g,
            "The valid key minus its last character (beats a prefix compare).",
            (key, b"{valid_truncated}"),
        ),
        _post(
            "header-key-with-suffix",
            g,
            "The valid key with extra characters glued on (beats an 'in' check).",
            (key, VALID + b"-and-more"),
        ),
        _post(
            "header-key-uppercased", g, "The valid key in capitals: keys are case-sensitive.", (key, b"{valid_upper}")
        ),
        _post(
            "header-digest-as-key",
            g,
            "The key's SHA-256 digest, as stored in the keys file, sent as the key.",
            (key, b"{valid_digest}"),
        ),
        _post(
            "header-key-trailing-nul",
            g,
            "The valid key followed by a NUL byte.",
            (key, VALID + b"\x00"),
            expect=(400, 401),
        ),
        _post(
            "header-key-trailing-cr",
            g,
            "The valid key followed by a stray carriage return.",
            (key, VALID + b"\r"),
            expect=(400, 401),
        ),
        _post(
            "header-newline-smuggles-key",
            g,
            "A newline inside a wrong key smuggles in a second x-api-key line.",
            (key, RANDOM + b"\nx-api-key: " + VALID),
            expect=(400, 401),
        ),
        _post(
            "header-folded-line",
            g,
            "The valid key continued on an obsolete folded header line.",
            (key, VALID + b"\r\n  folded"),
            expect=(400, 401),
        ),
        _post(
            "header-non-ascii-key",
            g,
            "A key with non-ASCII letters (UTF-8).",
            (key, "sk-mcp-ÄÖÜßçñ-ключ-鍵".encode()),
            expect=(400, 401),
        ),
        _post(
            "header-raw-bytes-key",
            g,
            "A key of raw bytes that are not valid UTF-8.",
            (key, b"sk-mcp-\xff\xfe\x80\xc3"),
            expect=(400, 401),
        ),
        _post(
            "header-oversized-key", g, "A 300-character key, longer than any real one.", (key, b"sk-mcp-" + b"A" * 293)
        ),
        _post(
            "header-huge-key",
            g,
            "A 6 KB key (hashing it must not be the server's problem).",
            (key, b"sk-mcp-" + b"B" * 6000),
            expect=(401, 431),
        ),
        _post(
            "header-oversized-headers",
            g,
            "9 KB of junk headers and no key.",
            (b"x-padding", b"p" * 9000),
            expect=(401, 431),
        ),
        _post(
            "header-huge-headers",
            g,
            "40 KB of junk headers and no key (beyond most servers' limits).",
            *[(b"x-padding-%d" % i, b"q" * 4000) for i in range(10)],
            expect=(400, 401, 431),
        ),
        _post(
            "header-many-headers",
            g,
            "300 small junk headers and no key.",
            *[(b"x-junk-%03d" % i, b"v") for i in range(300)],
            expect=(401, 431),
        ),
        _post(
            "header-case-duplicate",
            g,
            "The header twice in different case: X-API-KEY (wrong) and x-api-key (valid).",
            (b"X-API-KEY", RANDOM),
            (key, VALID),
        ),
        _post(
            "header-duplicate-wrong-first",
            g,
            "Two x-api-key headers: a wrong one, then the valid one.",
            (key, RANDOM),
            (key, VALID),
        ),
        _post(
            "header-duplicate-valid-first",
            g,
            "Two x-api-key headers: the valid one, then a wrong one.",
            (key, VALID),
            (key, RANDOM),
        ),
        _post(
            "header-comma-joined",
            g,
            "A wrong key and the valid key comma-joined in one header.",
            (key, RANDOM + b", " + VALID),
        ),
        _post(
            "header-comma-joined-twice",
            g,
            "The valid key twice, comma-joined in one header.",
            (key, VALID + b"," + VALID),
        ),
        _post(
            "header-underscore-name",
            g,
            "The valid key in x_api_key (underscore), which proxies may rewrite.",
            (b"x_api_key", VALID),
        ),
        _post("header-lookalike-name", g, "The valid key in a look-alike header, x-apikey.", (b"x-apikey", VALID)),
        _post(
            "header-api-key-name",
            g,
            "The valid key in an 'api-key' header the server does not read.",
            (b"api-key", VALID),
        ),
        _post(
            "header-key-in-cookie",
            g,
            "The valid key in a cookie instead of the header.",
            (b"cookie", b"x-api-key=" + VALID),
        ),
        _post(
            "header-bearer-in-x-api-key",
            g,
            "x-api-key: 'Bearer <valid key>' (a scheme where none belongs).",
            (key, b"Bearer " + VALID),
        ),
        _post(
            "header-basic-scheme",
            g,
            "Authorization: Basic with the valid key as the password (what curl -u sends).",
            (auth, b"Basic {valid_basic}"),
        ),
        _post(
            "header-token-scheme",
            g,
            "Authorization: Token <valid key> (an unsupported scheme).",
            (auth, b"Token " + VALID),
        ),
        _post("header-bare-authorization", g, "Authorization: <valid key> with no scheme at all.", (auth, VALID)),
        _post("header-bearer-without-token", g, "Authorization: Bearer with no token after it.", (auth, b"Bearer")),
        _post(
            "header-bearer-wrong-key",
            g,
            "Authorization: Bearer with a key that was never issued.",
            (auth, b"Bearer " + RANDOM),
        ),
        _post(
            "header-conflicting-bearer",
            g,
            "The valid key in x-api-key but a wrong key as Bearer token.",
            (key, VALID),
            (auth, b"Bearer " + RANDOM),
        ),
    ]


def _path_attacks() -> list[Attack]:
    g = "path"
    return [
        _post("path-trailing-slash", g, "POST /mcp/ (a trailing slash).", target="/mcp/"),
        _post("path-double-slash", g, "POST //mcp (a doubled slash).", target="//mcp"),
        _post("path-uppercase", g, "POST /MCP (paths are case-sensitive, checks should not care).", target="/MCP"),
        _post("path-percent-encoded", g, "POST /%6dcp ('m' percent-encoded).", target="/%6dcp"),
        _post("path-encoded-slash", g, "POST /mcp%2F (an encoded trailing slash).", target="/mcp%2F"),
        _post("path-query-string", g, "POST /mcp?debug=1 (a query string).", target="/mcp?debug=1"),
        _post(
            "path-key-in-query",
            g,
            "The valid key in the query string instead of the header.",
            target="/mcp?api_key={valid}",
        ),
        _post("path-dot-dot", g, "POST /mcp/../mcp (a dot-dot segment).", target="/mcp/../mcp"),
        _post("path-dot", g, "POST /./mcp (a dot segment).", target="/./mcp"),
        _post("path-through-health", g, "POST /health/../mcp (through the public path).", target="/health/../mcp"),
        _post("path-semicolon", g, "POST /mcp;x=1 (a path parameter).", target="/mcp;x=1"),
        _post(
            "path-absolute-form", g, "POST http://host/mcp (the absolute-URI request form).", target="http://{host}/mcp"
        ),
        _post("path-non-ascii", g, "POST /mcp/ä (a non-ASCII request target).", target="/mcp/ä", expect=(400, 401)),
        _post("path-post-health", g, "POST to the public /health path (only GET is public).", target="/health"),
        Attack("path-health-slash", g, "GET /health/ (a public path with a trailing slash).", "GET", "/health/"),
        Attack("path-health-case", g, "GET /Health (the public path in another case).", "GET", "/Health"),
        Attack("path-health-prefix", g, "GET /healthz (beats a startswith('/health') check).", "GET", "/healthz"),
        Attack("path-unknown", g, "GET /admin (a path nobody protected: default-deny covers it).", "GET", "/admin"),
    ]


def _method_attacks() -> list[Attack]:
    g = "method"
    stream = ((b"accept", b"text/event-stream"), (b"mcp-protocol-version", PROTOCOL_VERSION.encode()))
    forged_session = ((b"mcp-session-id", uuid.UUID(int=1).hex.encode()),)
    add = _tool_body("add_item", {"name": "attack method", "quantity": 1})
    return [
        Attack("method-get", g, "GET /mcp: open the server's event stream without a key.", "GET", headers=stream),
        Attack("method-head", g, "HEAD /mcp without a key.", "HEAD"),
        _post("method-put", g, "PUT /mcp with a tool call and no key.", method="PUT"),
        _post("method-patch", g, "PATCH /mcp with a tool call and no key.", method="PATCH"),
        Attack(
            "method-delete",
            g,
            "DELETE /mcp with a guessed session id and no key.",
            "DELETE",
            headers=forged_session + stream[1:],
        ),
        Attack(
            "method-options",
            g,
            "OPTIONS /mcp, a CORS preflight from a foreign page.",
            "OPTIONS",
            headers=((b"origin", b"http://evil.example"), (b"access-control-request-method", b"POST")),
        ),
        Attack("method-options-star", g, "OPTIONS * (the whole-server request form).", "OPTIONS", "*"),
        Attack(
            "method-trace",
            g,
            "TRACE /mcp (asks the server to echo the request back).",
            "TRACE",
            headers=((b"x-api-key", RANDOM),),
        ),
        Attack(
            "method-connect",
            g,
            "CONNECT host:port (asks the server to act as a tunnel).",
            "CONNECT",
            "{host}",
            expect_status=frozenset({400, 401, 405}),
        ),
        Attack(
            "method-lowercase",
            g,
            "'post' in lower case (method names are case-sensitive).",
            "post",
            headers=_mcp_headers(),
            body=add,
        ),
        Attack("method-made-up", g, "A made-up method, FROB /mcp.", "FROB", headers=_mcp_headers(), body=add),
    ]


def _body_attacks() -> list[Attack]:
    g = "body"
    calls = [
        mcp_body("tools/call", {"name": "add_item", "arguments": {"name": f"attack batch {i}"}}, request_id=i)
        for i in range(3)
    ]
    chunk = _tool_body("add_item", {"name": _marker("body-chunked")})
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk)
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}},
    }
    nested = b"[" * 50_000 + b"]" * 50_000
    return [
        _post("body-malformed-json", g, "Malformed JSON and no key.", body=b'{"jsonrpc": "2.0", "method": '),
        _post("body-empty", g, "An empty POST and no key.", body=b""),
        _post("body-batch-array", g, "A JSON-RPC batch of three tool calls and no key.", body=_json(calls)),
        _post("body-oversized", g, "A 2 MiB tool call and no key.", body_padding=2 * 1024 * 1024, expect=(401, 413)),
        _post(
            "body-lying-length",
            g,
            "Content-Length says 100 MB, and no key.",
            headers=(*_mcp_headers(), (b"content-length", b"104857600")),
            expect=(401, 413),
        ),
        _post(
            "body-chunked",
            g,
            "A chunked (streamed) tool call and no key.",
            headers=(*_mcp_headers(), (b"transfer-encoding", b"chunked")),
            body=chunked,
        ),
        _post("body-deep-nesting", g, "50 000 nested JSON arrays (a parser bomb) and no key.", body=nested),
        _post(
            "body-place-order",
            g,
            "tools/call place_order and no key.",
            headers=_mcp_headers("tools/call", "place_order"),
            body=_tool_body("place_order"),
        ),
        _post(
            "body-remove-item",
            g,
            "tools/call remove_item and no key.",
            headers=_mcp_headers("tools/call", "remove_item"),
            body=_tool_body("remove_item", {"name": "milk"}),
        ),
        _post(
            "body-key-in-body",
            g,
            "The valid key inside the JSON body instead of the header.",
            body=_tool_body("add_item", {"name": _marker("body-key-in-body"), "api_key": "{valid}"}),
        ),
        _post(
            "body-initialize",
            g,
            "An initialize request (opening a session) and no key.",
            headers=_mcp_headers("initialize", None)[:2],
            body=_json(initialize),
        ),
        _post(
            "body-text-plain",
            g,
            "A tool call sent as text/plain and no key.",
            headers=((b"content-type", b"text/plain"), *_mcp_headers()[1:]),
        ),
    ]


def _origin_host_attacks() -> list[Attack]:
    g = "origin-host"
    key = (b"x-api-key", VALID)
    return [
        _post(
            "origin-foreign",
            g,
            "A valid key, sent from a page on http://evil.example.",
            key,
            (b"origin", b"http://evil.example"),
            expect=(403,),
        ),
        _post(
            "origin-null",
            g,
            "A valid key with Origin: null (a sandboxed page or file://).",
            key,
            (b"origin", b"null"),
            expect=(403,),
        ),
        _post(
            "origin-lookalike",
            g,
            "A valid key from http://127.0.0.1.evil.example (looks like loopback).",
            key,
            (b"origin", b"http://127.0.0.1.evil.example"),
            expect=(403,),
        ),
        _post(
            "origin-foreign-no-key",
            g,
            "No key, from a page on http://evil.example.",
            (b"origin", b"http://evil.example"),
            expect=(401, 403),
        ),
        _post(
            "host-foreign",
            g,
            "A valid key with Host: evil.example (DNS rebinding).",
            (b"host", b"evil.example"),
            key,
            expect=(421,),
        ),
        _post(
            "host-rebinding-port",
            g,
            "A valid key with Host: attacker.example on the server's own port.",
            (b"host", b"attacker.example:" + PORT),
            key,
            expect=(421,),
        ),
        _post(
            "host-lookalike",
            g,
            "A valid key with Host: localhost.evil.example:80 (looks like loopback).",
            (b"host", b"localhost.evil.example:80"),
            key,
            expect=(421,),
        ),
        _post(
            "host-missing",
            g,
            "A valid key and no Host header at all (HTTP/1.1 requires one).",
            key,
            omit=frozenset({b"host"}),
            expect=(400, 421),
        ),
    ]


def _identity_attacks() -> list[Attack]:
    g = "identity"
    return [
        _post("identity-revoked-key", g, "A key that was valid once but has been revoked.", (b"x-api-key", REVOKED)),
        _post(
            "identity-two-valid-keys",
            g,
            "Two different valid keys at once (x-api-key and Bearer).",
            (b"x-api-key", VALID),
            (b"authorization", b"Bearer " + SECOND),
        ),
        _post(
            "identity-viewer-adds",
            g,
            "A read-only (viewer) key tries to add an item.",
            (b"x-api-key", VIEWER),
            expect=(200, 403),
            refusal_text="list:write",
        ),
        _post(
            "identity-viewer-removes",
            g,
            "A read-only (viewer) key tries to remove an item.",
            headers=(*_mcp_headers("tools/call", "remove_item"), (b"x-api-key", VIEWER)),
            body=_tool_body("remove_item", {"name": "milk"}),
            expect=(200, 403),
            refusal_text="list:write",
        ),
        _post(
            "identity-viewer-orders",
            g,
            "A read-only (viewer) key tries to place an order.",
            headers=(*_mcp_headers("tools/call", "place_order"), (b"x-api-key", VIEWER)),
            body=_tool_body("place_order"),
            expect=(200, 403),
            refusal_text="orders:write",
        ),
    ]


def _build_catalogue() -> tuple[Attack, ...]:
    attacks = [
        *_header_attacks(),
        *_path_attacks(),
        *_method_attacks(),
        *_body_attacks(),
        *_origin_host_attacks(),
        *_identity_attacks(),
    ]
    ids = [a.id for a in attacks]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise RuntimeError(f"duplicate attack ids: {sorted(duplicates)}")
    unknown = {a.group for a in attacks} - set(GROUPS)
    if unknown:
        raise RuntimeError(f"attacks in unknown groups: {sorted(unknown)}")
    return tuple(attacks)


CATALOGUE: Final[tuple[Attack, ...]] = _build_catalogue()


def get_attack(attack_id: str) -> Attack:
    """The catalogue entry with this id (KeyError with the known ids if there is none)."""
    for attack in CATALOGUE:
        if attack.id == attack_id:
            return attack
    raise KeyError(f"no attack {attack_id!r}; known: {', '.join(a.id for a in CATALOGUE)}")


# --- sending one request over a raw socket -------------------------------------------------------------


@dataclass(frozen=True)
class RawResponse:
    """What the server answered: status (None if it answered nothing), headers, body (maybe cut short)."""

    status: int | None
    headers: tuple[Header, ...] = ()
    body: bytes = b""
    complete: bool = True
    error: str | None = None

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), decoded as Latin-1."""
        wanted = name.lower().encode()
        return next((v.decode("latin-1") for n, v in self.headers if n.lower() == wanted), None)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The JSON body, or the first JSON `data:` event of an event stream; None if neither parses."""
        candidates = [self.body]
        if (self.header("content-type") or "").startswith("text/event-stream"):
            candidates = [line[5:].strip() for line in self.body.splitlines() if line.startswith(b"data:")]
        for candidate in candidates:
            try:
                return json.loads(candidate)
            except ValueError:
                continue
        return None

    def raw(self) -> bytes:
        """Headers and body together, for searching (e.g. for an echoed key)."""
        return b"\n".join(n + b": " + v for n, v in self.headers) + b"\n\n" + self.body


async def send_raw(
    url: str, payload: bytes, *, method: str = "POST", timeout: float = 5.0, ssl_context: ssl.SSLContext | None = None
) -> RawResponse:
    """Send `payload` (a complete HTTP/1.1 request) to `url`'s host and read one response.

    The request goes out byte for byte, which is the point: no client library would send
    most attacks. The response is parsed with h11 and read while the request is still
    being sent, and an endless event stream is read only for a moment.

    A request with `Expect: 100-continue` sends its head first and its body only after
    the server asks for it (or after a second, as curl does). That is how big uploads
    are sent, and it matters here: a server that refuses before reading a body closes
    a connection with unread data, the kernel answers with a reset, and the reset can
    destroy the refusal before it is read.
    """
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    parser = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
    # h11 frames a response by the request's method (HEAD and CONNECT differ), so tell it, discarding its bytes.
    parser.send(h11.Request(method=method.encode(), target=b"/", headers=[(b"host", b"x")]))
    parser.send(h11.EndOfMessage())
    head, separator, request_body = payload.partition(b"\r\n\r\n")
    waits_for_continue = any(
        line.lower().replace(b" ", b"") == b"expect:100-continue" for line in head.split(b"\r\n")[1:]
    )
    proceed, answered = anyio.Event(), anyio.Event()

    status: int | None = None
    headers: tuple[Header, ...] = ()
    body = bytearray()
    complete = False
    error: str | None = None
    with anyio.move_on_after(timeout) as overall:
        try:
            stream = await anyio.connect_tcp(
                host, port, tls=tls, ssl_context=ssl_context, tls_standard_compatible=False
            )
        except OSError as exc:
            return RawResponse(None, error=f"cannot connect to {host}:{port}: {exc}", complete=False)
        async with stream, anyio.create_task_group() as group:

            async def send_all() -> None:
                data = payload
                try:
                    if waits_for_continue:
                        await stream.send(head + separator)
                        with anyio.move_on_after(_CONTINUE_WAIT_SECONDS):
                            await proceed.wait()
                        if answered.is_set():
                            return  # refused before the body: it is never sent
                        data = request_body
                    for start in range(0, len(data), _SEND_CHUNK):
                        await stream.send(data[start : start + _SEND_CHUNK])
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    pass  # the server answered and hung up before reading everything: that is allowed

            group.start_soon(send_all)
            body_deadline = anyio.CancelScope()
            with body_deadline:
                while True:
                    try:
                        event = parser.next_event()
                    except h11.RemoteProtocolError as exc:
                        error = f"no complete answer: {exc}"
                        break
                    if event is h11.NEED_DATA:
                        try:
                            data = await stream.receive(_SEND_CHUNK)
                        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                            data = b""
                        parser.receive_data(data)
                    elif isinstance(event, h11.InformationalResponse):
                        if event.status_code == 100:
                            proceed.set()
                    elif isinstance(event, h11.Response):
                        status = event.status_code
                        headers = tuple((bytes(n), bytes(v)) for n, v in event.headers.raw_items())
                        answered.set()
                        proceed.set()
                        if method == "GET" and any(
                            v.startswith(b"text/event-stream") for n, v in headers if n.lower() == b"content-type"
                        ):
                            body_deadline.deadline = anyio.current_time() + _STREAM_GRACE_SECONDS
                    elif isinstance(event, h11.Data):
                        body.extend(event.data[: max(0, _MAX_BODY_KEPT - len(body))])
                    elif isinstance(event, h11.EndOfMessage):
                        complete = True
                        break
                    else:  # ConnectionClosed (or PAUSED, which cannot come before the end of the message)
                        if status is None:
                            error = "the server closed the connection without answering"
                        break
            group.cancel_scope.cancel()
    if overall.cancelled_caught and status is None:
        error = f"no answer within {timeout:g} s"
    return RawResponse(status, headers, bytes(body), complete, error)


async def send_attack(
    attack: Attack,
    url: str,
    context: AttackContext,
    *,
    timeout: float = 5.0,
    ssl_context: ssl.SSLContext | None = None,
) -> RawResponse:
    """Send one attack to the server at `url` (only its scheme, host and port are used)."""
    return await send_raw(url, attack.render(context), method=attack.method, timeout=timeout, ssl_context=ssl_context)


# --- judging ---------------------------------------------------------------------------------------------


def describe_change(before: Snapshot, after: Snapshot) -> str | None:
    """What changed between two store snapshots, in words ("added 'x' (1)"); None if nothing did."""
    old = {item["name"].casefold(): item for item in before["items"]}
    new = {item["name"].casefold(): item for item in after["items"]}
    parts: list[str] = []
    for key in sorted(new.keys() - old.keys()):
        parts.append(f"added {new[key]['name']!r} ({new[key]['quantity']})")
    for key in sorted(old.keys() - new.keys()):
        parts.append(f"removed {old[key]['name']!r}")
    for key in sorted(old.keys() & new.keys()):
        if old[key]["quantity"] != new[key]["quantity"]:
            parts.append(f"changed {new[key]['name']!r} from {old[key]['quantity']} to {new[key]['quantity']}")
    known = {order["order_id"] for order in before["orders"]}
    for order in after["orders"]:
        if order["order_id"] not in known:
            parts.append(f"placed order {order['order_id']} ({len(order['items'])} items)")
    if len(after["orders"]) < len(before["orders"]):
        parts.append("deleted orders")
    return ", ".join(parts) or None


Outcome = Literal["stopped", "throttled", "got through", "wrong answer", "leaked key", "skipped", "no answer"]


@dataclass(frozen=True)
class AttackResult:
    """How one attack went: the status it got, whether it was stopped, and why (in words)."""

    attack: Attack
    outcome: Outcome
    reason: str
    status: int | None = None
    change: str | None = None
    response: RawResponse | None = field(default=None, repr=False)
    seconds: float = 0.0
    missing: tuple[str, ...] = ()  # for a skipped attack: the context keys it needed

    @property
    def id(self) -> str:
        return self.attack.id

    @property
    def group(self) -> str:
        return self.attack.group

    @property
    def description(self) -> str:
        return self.attack.description

    @property
    def expected(self) -> str:
        return self.attack.expected

    @property
    def passed(self) -> bool:
        """Stopped (or throttled): the attack achieved nothing."""
        return self.outcome in ("stopped", "throttled")

    @property
    def skipped(self) -> bool:
        return self.outcome == "skipped"

    @property
    def mark(self) -> str:
        return "–" if self.skipped else ("✓" if self.passed else "✗")


def _message(response: RawResponse) -> str:
    """The server's own words: the JSON-RPC error (or tool result) message, else the start of the body."""
    data = response.json()
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        result = data.get("result")
        if isinstance(result, dict):
            texts = [c.get("text", "") for c in result.get("content", []) if isinstance(c, dict)]
            if texts:
                return " ".join(texts)
    return " ".join(response.text.split())[:120] or "(empty body)"


def _short(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def judge(
    attack: Attack,
    response: RawResponse,
    change: str | None,
    secrets: Sequence[bytes],
    *,
    accept_throttled: bool = True,
    store_checked: bool = True,
) -> tuple[Outcome, str]:
    """Decide whether `attack` was stopped, and say why in one sentence a learner can act on."""
    status = response.status
    if change is not None:
        return "got through", f"reached the MCP app and changed the shopping data: {change}"
    raw = response.raw()
    if any(secret and secret in raw for secret in secrets):
        return "leaked key", "the response echoes a key the attacker presented: never repeat a credential back"
    if status is None:
        return "no answer", f"no HTTP answer ({response.error}): a refusal should be a proper HTTP response"
    said = _short(_message(response))
    unchecked = "" if store_checked else " (store not given: changes were not checked)"
    if status == 429 and 429 not in attack.expect_status and accept_throttled:
        return (
            "throttled",
            f"throttled (429) before this check was reached; run without a throttle to test it{unchecked}",
        )
    if status in attack.expect_status:
        if status == 200 and attack.refusal_text and attack.refusal_text not in response.text:
            return (
                "got through",
                f"the tool ran: the answer does not refuse for lack of {attack.refusal_text!r}: {said}",
            )
        if status == 400 and "Invalid HTTP request" in response.text:
            return "stopped", "refused by the HTTP server itself (400) before any middleware ran"
        if status == 200:
            return "stopped", f"the tool refused it and nothing changed: {said}{unchecked}"
        return "stopped", f"refused with {status}: {said}{unchecked}"
    if 200 <= status < 400:
        where = f" (redirect to {response.header('location')})" if 300 <= status < 400 else ""
        return "got through", (
            f"got past the key check: the app answered {status}{where}; expected {attack.expected}. "
            "Nothing changed this time, but the request reached the app."
        )
    if status >= 500:
        return "wrong answer", f"the server failed ({status}: {said}) instead of refusing with {attack.expected}"
    return "wrong answer", (
        f"not refused by the key check: the app answered {status} ({said}); expected {attack.expected}. "
        "Deny by default, whatever the path or method."
    )


# --- the scorecard -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scorecard:
    """The results of one run, with a one-line summary, a plain-text table and short notebook views."""

    results: tuple[AttackResult, ...]
    target: str = ""

    def __iter__(self) -> Iterator[AttackResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, attack_id: str) -> AttackResult:
        for result in self.results:
            if result.id == attack_id:
                return result
        raise KeyError(attack_id)

    @property
    def passed(self) -> list[AttackResult]:
        """The attacks that were stopped (including throttled ones)."""
        return [r for r in self.results if r.passed]

    @property
    def failed(self) -> list[AttackResult]:
        """The attacks that were not stopped: each has a reason saying what went wrong."""
        return [r for r in self.results if not r.passed and not r.skipped]

    @property
    def skipped(self) -> list[AttackResult]:
        return [r for r in self.results if r.skipped]

    @property
    def all_stopped(self) -> bool:
        return not self.failed

    def by_group(self) -> dict[str, tuple[int, int]]:
        """{group: (stopped, run)} in catalogue order; skipped attacks are not counted as run."""
        counts: dict[str, tuple[int, int]] = {}
        for result in self.results:
            stopped, run = counts.get(result.group, (0, 0))
            if not result.skipped:
                counts[result.group] = (stopped + result.passed, run + 1)
            else:
                counts.setdefault(result.group, (stopped, run))
        return counts

    def summary(self) -> str:
        """One line, e.g. '48/52 attacks stopped (3 skipped: no viewer_key given)'."""
        run = len(self.results) - len(self.skipped)
        line = f"{len(self.passed)}/{run} attacks stopped"
        throttled = sum(r.outcome == "throttled" for r in self.results)
        extras = []
        if throttled:
            extras.append(f"{throttled} by the throttle")
        if self.skipped:
            missing = sorted({name for r in self.skipped for name in r.missing})
            extras.append(f"{len(self.skipped)} skipped: no {', '.join(missing)} given")
        return line + (f" ({'; '.join(extras)})" if extras else "")

    def table(self, *, failures_only: bool = False, width: int = 150) -> str:
        """A plain-text table: mark, id, group, status got, expected, reason (cut to fit `width`)."""
        rows = self.failed if failures_only else list(self.results)
        head = ("", "attack", "group", "got", "expected", "why")
        lines = [
            (r.mark, r.id, r.group, "-" if r.status is None else str(r.status), r.expected, r.reason) for r in rows
        ]
        widths = [max(len(row[i]) for row in [head, *lines]) for i in range(5)]
        fixed = sum(widths) + 2 * 5
        out = []
        for row in [head, *lines]:
            cells = [row[i].ljust(widths[i]) for i in range(5)]
            out.append("  ".join([*cells, _short(row[5], max(40, width - fixed))]).rstrip())
        return "\n".join([self.summary(), self._group_line("  "), *out])

    def _group_line(self, separator: str) -> str:
        """'header 35/36  path 18/18 ...', with 'skipped' for a group that could not run."""
        return separator.join(
            f"{group} {stopped}/{run}" if run else f"{group} skipped"
            for group, (stopped, run) in self.by_group().items()
        )

    def _rows_for_display(self) -> list[AttackResult]:
        return self.failed[:_SHOWN_FAILURES]

    def _repr_markdown_(self) -> str:
        lines = [f"**{self.summary()}**", "", self._group_line(" · ")]
        shown = self._rows_for_display()
        if shown:
            lines += ["", "| attack | got | expected | why |", "|---|---|---|---|"]
            for r in shown:
                why = _short(r.reason, 140).replace("|", "\\|")
                lines.append(f"| ✗ `{r.id}` {r.description} | {r.status or '-'} | {r.expected} | {why} |")
            if len(self.failed) > len(shown):
                lines.append(f"\n…and {len(self.failed) - len(shown)} more: `print(scorecard.table())`")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        parts = [f"<p><b>{esc(self.summary())}</b><br><small>{esc(self._group_line(' · '))}</small></p>"]
        shown = self._rows_for_display()
        if shown:
            rows = "".join(
                f"<tr><td>✗ <code>{esc(r.id)}</code><br><small>{esc(r.description)}</small></td>"
                f"<td>{r.status or '-'}</td><td>{esc(r.expected)}</td><td>{esc(_short(r.reason, 160))}</td></tr>"
                for r in shown
            )
            parts.append(f"<table><tr><th>attack</th><th>got</th><th>expected</th><th>why</th></tr>{rows}</table>")
            if len(self.failed) > len(shown):
                parts.append(f"<p>…and {len(self.failed) - len(shown)} more: <code>print(scorecard.table())</code></p>")
        return "".join(parts)

    def __repr__(self) -> str:
        return f"<Scorecard {self.summary()}>"


# --- running the catalogue -----------------------------------------------------------------------------------

Target = ASGIApp | str | BackgroundServer | Callable[[], ASGIApp]


def _is_factory(target: object) -> bool:
    """A zero-argument callable that builds an app (an ASGI app itself takes scope, receive, send)."""
    if not callable(target) or isinstance(target, BackgroundServer | str):
        return False
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return False
    return not [
        p for p in parameters if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


async def run_attacks(
    target: Target,
    *,
    valid_key: str,
    store: ShoppingStore | None = None,
    second_key: str | None = None,
    viewer_key: str | None = None,
    revoked_key: str | None = None,
    attacks: Iterable[Attack] | None = None,
    accept_throttled: bool = True,
    timeout: float = 5.0,
    ssl_context: ssl.SSLContext | None = None,
) -> Scorecard:
    """Run the attack catalogue (or `attacks`) against `target` and return a `Scorecard`.

    `target` is an ASGI app (served on loopback with uvicorn for the run, lifespan
    included), a zero-argument function that builds one, the URL of a running server,
    or a running `BackgroundServer`. If the app (or the factory's result) is a
    `ShoppingApp`, its store is used when `store` is not given. `valid_key` must be a
    key the server accepts; the optional keys unlock the attacks that need them (a
    second shopper key, a viewer key, a key that has been revoked).

    `store` is snapshotted before and after every attack, so an attack that reaches a
    tool is caught even if its status looks harmless. A 429 answer counts as stopped
    unless `accept_throttled` is False; turn the throttle off to test the checks behind it.
    """
    server: BackgroundServer | None = None
    if isinstance(target, str):
        url = target
    elif isinstance(target, BackgroundServer):
        url = target.url
    else:
        app = target() if _is_factory(target) else target  # type: ignore[call-arg]
        if store is None and isinstance(getattr(app, "store", None), ShoppingStore):
            store = app.store  # type: ignore[union-attr]
        # log_level="error": the HTTP server's "Invalid HTTP request" warnings are expected here, not news.
        server = BackgroundServer(app, name=f"attacks-{uuid.uuid4().hex[:8]}", log_level="error")  # type: ignore[arg-type]
        try:
            await anyio.to_thread.run_sync(server.start)
        except ServerStartError as exc:
            raise ServerStartError(
                f"{exc}. If your middleware wraps the MCP app, pass non-HTTP scopes (lifespan) straight through: "
                "`if scope['type'] != 'http': return await self.app(scope, receive, send)`. An app can start "
                "only once: build a fresh one, or pass the URL of the server already running it."
            ) from None
        url = server.url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s) URL such as http://127.0.0.1:8000/mcp, not {url!r}")
    context = AttackContext(
        valid_key=valid_key,
        host=parts.netloc,
        second_key=second_key,
        viewer_key=viewer_key,
        revoked_key=revoked_key,
    )
    try:
        with _quiet(_NOISY_LOGGERS):
            results = [
                await _run_one(attack, url, context, store, accept_throttled, timeout, ssl_context)
                for attack in (CATALOGUE if attacks is None else tuple(attacks))
            ]
    finally:
        if server is not None:
            await anyio.to_thread.run_sync(server.stop)
    return Scorecard(tuple(results), target=url)


@contextmanager
def _quiet(names: Iterable[str]) -> Iterator[None]:
    """Raise these loggers to ERROR for the run: every refused Origin/Host is a warning, and we send them on purpose."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


async def _run_one(
    attack: Attack,
    url: str,
    context: AttackContext,
    store: ShoppingStore | None,
    accept_throttled: bool,
    timeout: float,
    ssl_context: ssl.SSLContext | None,
) -> AttackResult:
    missing = context.missing(attack)
    if missing:
        return AttackResult(attack, "skipped", f"skipped: needs {' and '.join(missing)}", missing=tuple(missing))
    started = time.perf_counter()
    before = await anyio.to_thread.run_sync(store.snapshot) if store is not None else None
    response = await send_attack(attack, url, context, timeout=timeout, ssl_context=ssl_context)
    change = None
    if store is not None and before is not None:
        change = describe_change(before, await anyio.to_thread.run_sync(store.snapshot))
    outcome, reason = judge(
        attack,
        response,
        change,
        attack.presented_secrets(context),
        accept_throttled=accept_throttled,
        store_checked=store is not None,
    )
    return AttackResult(
        attack, outcome, reason, response.status, change, response, round(time.perf_counter() - started, 4)
    )
