"""The attack catalogue against the real secured server over real HTTP, and the scorecard's own honesty.

One uvicorn server on loopback serves the secured app for the whole module (throttle
off, so every attack meets the check it targets rather than a 429). Each catalogue
case is its own test. A deliberately naive middleware then proves the scorecard can
fail, and three behaviours that need a server of their own follow: revocation
through the keys file, the viewer role over HTTP, and the failed-attempt throttle.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from lesson_code import errors
from lesson_code.app import ShoppingApp, create_open_app_for_threat_model, create_secured_app
from lesson_code.attacks import CATALOGUE, GROUPS, Attack, AttackContext, get_attack, run_attacks
from lesson_code.audit import AuditLog
from lesson_code.background import BackgroundServer, ServerStartError
from lesson_code.keys import KeyRing, create_key, generate_key, revoke_key
from lesson_code.raw_requests import list_tools, tool_call
from lesson_code.throttle import FailedAttemptThrottle

pytestmark = pytest.mark.anyio

JSON_RPC_STATUSES = (401, 429, 431)  # the refusals our middleware writes itself, always as JSON-RPC errors


@dataclass
class Shop:
    """A running secured server and the keys it knows."""

    app: ShoppingApp
    server: BackgroundServer
    keys: dict[str, str]

    def snapshot(self) -> Any:
        return self.app.store.snapshot()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    keys = {name: generate_key() for name in ("alice", "bob", "val", "old")}
    ring = KeyRing.from_keys({"alice": keys["alice"], "bob": keys["bob"], "old": keys["old"]})
    ring.add("val", keys["val"], role="viewer")
    ring.revoke("old")  # a key that worked once
    db = tmp_path_factory.mktemp("attacks") / "shop.sqlite3"
    app = create_secured_app(ring, db, audit=AuditLog(), throttle=None)
    app.store.add_item("milk", 2)  # so remove_item and place_order would have something to change
    with BackgroundServer(app, name="test-attacks") as server:
        yield Shop(app, server, keys)
    app.store.close()


def context_keys(shop: Shop) -> dict[str, str]:
    keys = shop.keys
    return {
        "valid_key": keys["alice"],
        "second_key": keys["bob"],
        "viewer_key": keys["val"],
        "revoked_key": keys["old"],
    }


def assert_json_rpc_error(body: Any) -> None:
    assert body["jsonrpc"] == "2.0"
    assert body["id"] is None
    assert isinstance(body["error"]["code"], int)
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


# ---- the catalogue itself ---------------------------------------------------------------------


def test_the_catalogue_has_at_least_50_cases_covering_every_group() -> None:
    assert len(CATALOGUE) >= 50
    assert {attack.group for attack in CATALOGUE} == set(GROUPS)
    for attack in CATALOGUE:
        assert attack.id.startswith(attack.group.split("-")[0]) or attack.group == "origin-host", attack.id
        assert attack.description and "\n" not in attack.description and len(attack.description) <= 110
        assert attack.expect_status, attack.id


def test_every_requested_variant_is_in_the_catalogue() -> None:
    ids = {attack.id for attack in CATALOGUE}
    wanted = {
        "header-case-duplicate", "header-duplicate-wrong-first", "header-comma-joined", "header-non-ascii-key",
        "header-raw-bytes-key", "header-oversized-key", "header-oversized-headers", "header-basic-scheme",
        "header-token-scheme", "header-bearer-without-token", "header-empty", "header-whitespace",
        "header-prefix-only", "header-digest-as-key", "header-key-trailing-nul", "header-key-trailing-cr",
        "path-trailing-slash", "path-double-slash", "path-uppercase", "path-percent-encoded", "path-query-string",
        "path-dot-dot", "path-dot", "path-through-health", "path-health-slash", "path-health-case",
        "method-get", "method-head", "method-put", "method-patch", "method-delete", "method-options",
        "method-trace", "method-connect", "body-malformed-json", "body-batch-array", "body-oversized",
        "body-place-order", "origin-foreign", "host-foreign", "identity-revoked-key", "identity-viewer-orders",
    }  # fmt: skip
    assert wanted <= ids, sorted(wanted - ids)


def test_an_attack_renders_to_exact_bytes_with_its_placeholders_filled() -> None:
    context = AttackContext(valid_key="sk-mcp-VALID", host="127.0.0.1:9", random_key="sk-mcp-RANDOM")
    raw = get_attack("header-duplicate-wrong-first").render(context)
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /mcp HTTP/1.1"
    assert lines[1] == b"host: 127.0.0.1:9"
    assert lines.count(b"x-api-key: sk-mcp-RANDOM") == 1 and lines.count(b"x-api-key: sk-mcp-VALID") == 1
    assert lines.index(b"x-api-key: sk-mcp-RANDOM") < lines.index(b"x-api-key: sk-mcp-VALID")
    assert f"content-length: {len(body)}".encode() in lines and b"connection: close" in lines
    assert json.loads(body)["params"]["arguments"]["name"] == "attack header-duplicate-wrong-first"
    assert "VALID" not in repr(context)  # keys stay out of reprs and logs


def test_an_unknown_attack_id_names_the_known_ones() -> None:
    assert get_attack("header-missing").id == "header-missing"
    with pytest.raises(KeyError, match=r"no attack 'header-nope'; known: .*header-missing"):
        get_attack("header-nope")


def test_attacks_needing_a_missing_key_say_so() -> None:
    context = AttackContext(valid_key=generate_key())
    assert context.missing(get_attack("identity-viewer-orders")) == ["viewer_key"]
    assert context.missing(get_attack("header-missing")) == []


# ---- every attack against the real server ------------------------------------------------------


@pytest.mark.parametrize("attack", CATALOGUE, ids=[attack.id for attack in CATALOGUE])
async def test_the_secured_server_stops(attack: Attack, shop: Shop) -> None:
    before = shop.snapshot()
    scorecard = await run_attacks(
        shop.server.mcp_url, store=shop.app.store, attacks=[attack], accept_throttled=False, **context_keys(shop)
    )
    result = scorecard[attack.id]
    assert result.outcome == "stopped", result.reason
    response = result.response
    assert response is not None and response.status in attack.expect_status
    if response.status in JSON_RPC_STATUSES:
        assert response.header("content-type") == "application/json"
        if attack.method != "HEAD":  # a HEAD answer has headers only, by definition
            assert_json_rpc_error(response.json())
    if response.status == 401:
        assert response.header("www-authenticate")
    if response.status == 200:  # a scope refusal: a tool error that names the missing scope
        assert attack.refusal_text and attack.refusal_text in response.text
        assert response.json()["result"]["isError"] is True
    for key in shop.keys.values():
        assert key.encode() not in response.raw()
    assert result.change is None
    assert shop.snapshot() == before


async def test_the_whole_catalogue_in_one_scorecard(shop: Shop) -> None:
    scorecard = await run_attacks(shop.server, store=shop.app.store, accept_throttled=False, **context_keys(shop))
    assert scorecard.all_stopped, scorecard.table(failures_only=True)
    assert scorecard.summary() == f"{len(CATALOGUE)}/{len(CATALOGUE)} attacks stopped"
    assert len(scorecard.passed) == len(CATALOGUE) and not scorecard.failed and not scorecard.skipped
    assert set(scorecard.by_group()) == set(GROUPS)
    table = scorecard.table()
    assert table.splitlines()[0] == scorecard.summary()
    assert len(table.splitlines()) == len(CATALOGUE) + 3  # summary, group counts, header
    assert scorecard.summary() in scorecard._repr_markdown_()
    assert "<table" not in scorecard._repr_html_()  # nothing failed: the notebook view stays one paragraph
    assert "Scorecard" in repr(scorecard)


# ---- the scorecard can fail: a naive middleware ------------------------------------------------


class NaiveKeyCheck:
    """What a first attempt often looks like: guard exactly '/mcp', compare one header as a string."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self.key = key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/mcp":
            headers = dict(scope["headers"])  # a duplicate header silently keeps the last value
            if headers.get(b"x-api-key") != self.key:
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
        await self.app(scope, receive, send)


async def test_the_scorecard_catches_a_naive_middleware(tmp_path: Path) -> None:
    key = generate_key()
    inner = create_open_app_for_threat_model(tmp_path / "open.sqlite3")
    scorecard = await run_attacks(NaiveKeyCheck(inner, key), store=inner.store, valid_key=key)

    assert not scorecard.all_stopped
    failed = {result.id: result for result in scorecard.failed}
    # The path it did not think of reaches the app.
    slash = failed["path-trailing-slash"]
    assert slash.status == 307 and slash.outcome == "got through"
    assert "got past the key check" in slash.reason and "307" in slash.reason
    assert failed["path-double-slash"].status == 404
    assert "not refused by the key check" in failed["path-double-slash"].reason
    # Two headers: it checks the last, and the tool really runs.
    duplicate = failed["header-duplicate-wrong-first"]
    assert duplicate.change == "added 'attack header-duplicate-wrong-first' (1)"
    assert "changed the shopping data: added 'attack header-duplicate-wrong-first'" in duplicate.reason
    assert "header-conflicting-bearer" in failed  # it never looks at Authorization
    assert {"name": "attack header-duplicate-wrong-first", "quantity": 1} in inner.store.list_items()
    # What it does check, it checks.
    for stopped in ("header-missing", "header-wrong-key", "header-prefix-only", "method-get", "path-percent-encoded"):
        assert scorecard[stopped].passed, scorecard[stopped].reason
    # Attacks that need keys it was not given are skipped, and the summary says so.
    assert {result.group for result in scorecard.skipped} == {"identity"}
    run = len(scorecard) - len(scorecard.skipped)
    assert scorecard.summary().startswith(f"{len(scorecard.passed)}/{run} attacks stopped")
    assert "skipped: no revoked_key, second_key, viewer_key given" in scorecard.summary()
    assert "path-trailing-slash" in scorecard.table(failures_only=True)
    assert "path-trailing-slash" in scorecard._repr_markdown_()
    assert "path-trailing-slash" in scorecard._repr_html_()


async def test_a_factory_target_is_built_and_its_store_found(tmp_path: Path) -> None:
    key = generate_key()
    ring = KeyRing.from_keys({"alice": key})
    attacks = [get_attack("header-missing"), get_attack("path-trailing-slash")]
    scorecard = await run_attacks(
        lambda: create_secured_app(ring, tmp_path / "f.sqlite3"), valid_key=key, attacks=attacks
    )
    assert scorecard.all_stopped and "store not given" not in scorecard["header-missing"].reason


# uvicorn ends a failed start with sys.exit() in the server thread; pytest reports that as a thread warning.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_a_middleware_that_breaks_lifespan_gets_advice(tmp_path: Path) -> None:
    inner = create_open_app_for_threat_model(tmp_path / "open.sqlite3")

    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/mcp":  # KeyError on the lifespan scope, which has no path
            raise AssertionError("unreachable in this test")
        await inner(scope, receive, send)

    with pytest.raises(ServerStartError, match="pass non-HTTP scopes"):
        await run_attacks(broken, valid_key=generate_key(), attacks=[get_attack("header-missing")])


# ---- revocation, roles and throttling over HTTP -------------------------------------------------


async def test_a_key_revoked_in_the_keys_file_is_refused_within_2_seconds(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.json"
    key, _ = create_key(key_file, "alice")
    ring = KeyRing(key_file=key_file)
    app = create_secured_app(ring, tmp_path / "shop.sqlite3", throttle=None)
    with BackgroundServer(app, name="test-revocation") as server:
        async with httpx.AsyncClient(timeout=5) as http:
            assert (await http.post(server.mcp_url, **list_tools(api_key=key))).status_code == 200
            revoke_key(key_file, "alice")
            started = time.monotonic()
            status = 200
            while status == 200 and time.monotonic() - started < 3:  # bounded: 3 s at most
                response = await http.post(server.mcp_url, **tool_call("add_item", {"name": "late"}, api_key=key))
                status = response.status_code
                if status == 200:
                    await anyio.sleep(0.05)
            elapsed = time.monotonic() - started
    assert status == 401 and elapsed < 2.0, (status, elapsed)
    assert_json_rpc_error(response.json())
    assert response.json()["error"]["code"] == errors.INVALID_API_KEY


async def test_a_viewer_can_list_but_not_order_over_http(shop: Shop) -> None:
    viewer = shop.keys["val"]
    before = shop.snapshot()
    assert before["items"], "the fixture put milk on the list, so an order would change something"
    async with httpx.AsyncClient(timeout=5) as http:
        tools = await http.post(shop.server.mcp_url, **list_tools(api_key=viewer))
        assert tools.status_code == 200
        assert {tool["name"] for tool in tools.json()["result"]["tools"]} >= {"list_items", "place_order"}
        listed = await http.post(shop.server.mcp_url, **tool_call("list_items", api_key=viewer))
        assert listed.status_code == 200 and listed.json()["result"]["structuredContent"]["items"] == before["items"]
        order = await http.post(shop.server.mcp_url, **tool_call("place_order", api_key=viewer))
    assert order.status_code == 200
    result = order.json()["result"]
    assert result["isError"] is True
    assert "orders:write" in result["content"][0]["text"]
    assert shop.snapshot() == before


async def test_throttling_over_http_locks_out_one_address_only(tmp_path: Path) -> None:
    key = generate_key()
    throttle = FailedAttemptThrottle(max_failures=3, window=60)
    app = create_secured_app(KeyRing.from_keys({"alice": key}), tmp_path / "shop.sqlite3", throttle=throttle)
    with BackgroundServer(app, name="test-throttle") as server:
        async with httpx.AsyncClient(timeout=5) as http:
            for _ in range(3):
                bad = await http.post(server.mcp_url, **list_tools(api_key=generate_key()))
                assert bad.status_code == 401
            locked = await http.post(server.mcp_url, **list_tools(api_key=generate_key()))
            # A valid key is still served from a throttled address (see throttle.py): keys are long and random.
            valid_from_locked = await http.post(server.mcp_url, **list_tools(api_key=key))

        assert locked.status_code == 429 and valid_from_locked.status_code == 200
        retry_after = int(locked.headers["retry-after"])
        assert 0 < retry_after <= 60
        assert_json_rpc_error(locked.json())
        assert locked.json()["error"]["code"] == errors.TOO_MANY_FAILED_ATTEMPTS
        assert str(retry_after) in locked.json()["error"]["message"]

        # Another address is unaffected. Over real HTTP that is a second loopback address, if this host allows it.
        try:
            transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
            async with httpx.AsyncClient(transport=transport, timeout=5) as other:
                elsewhere_valid = await other.post(server.mcp_url, **list_tools(api_key=key))
                elsewhere_bad = await other.post(server.mcp_url, **list_tools(api_key=generate_key()))
        except (httpx.ConnectError, OSError):
            elsewhere_valid = elsewhere_bad = None
        if elsewhere_valid is not None and elsewhere_bad is not None:
            assert elsewhere_valid.status_code == 200
            assert elsewhere_bad.status_code == 401
            assert await throttle.retry_after("127.0.0.2") == 0  # one failure counted there, far from a lockout
            assert await throttle.retry_after("127.0.0.1") > 0  # while the first address stays locked

    # In process, any client address can be claimed: the same middleware and throttle, a third address.
    transport = httpx.ASGITransport(app, client=("203.0.113.7", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
        refused = await http.post("/mcp", **list_tools(api_key=generate_key()))
    assert refused.status_code == 401
    assert await throttle.retry_after("127.0.0.1") > 0 and await throttle.retry_after("203.0.113.7") == 0
