"""The attacks themselves, as data: what each sends and what a secure server must answer."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from lesson_code.attacks.constants import (
    EXPECT_CONTINUE_OVER,
    GROUPS,
    HOST,
    OPTIONAL_KEYS,
    PORT,
    RANDOM,
    REVOKED,
    SECOND,
    VALID,
    VIEWER,
    Header,
)
from lesson_code.keys import generate_key, key_digest
from lesson_code.raw_requests import PROTOCOL_VERSION, mcp_body, mcp_header_pairs

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
        for placeholder, name in OPTIONAL_KEYS.items():
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
            name for placeholder, name in OPTIONAL_KEYS.items() if placeholder in needed and not getattr(self, name)
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
        if len(body) > EXPECT_CONTINUE_OVER and b"expect" not in present:
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
    return mcp_header_pairs(method, tool=tool)


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
