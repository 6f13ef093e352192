"""Transport hardening with a VALID key: body size (413), header size (431), Host (421), Origin (403).

The attack catalogue sends these without a key, where the key check answers
first; here the key is good, so the limits behind it must hold on their own.
"""

from __future__ import annotations

import httpx
import pytest

from lesson_code.app import MAX_REQUEST_BODY_BYTES, create_secured_app
from lesson_code.background import BackgroundServer
from lesson_code.keys import KeyRing, generate_key
from lesson_code.raw_requests import tool_call

KEY = generate_key()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    app = create_secured_app(KeyRing.from_keys({"alice": KEY}), tmp_path_factory.mktemp("limits") / "shop.sqlite3")
    with BackgroundServer(app, name="limits-test") as server:
        yield server, app


def test_an_oversized_body_is_413_and_changes_nothing(served):
    server, app = served
    request = tool_call("add_item", {"name": "x" * (MAX_REQUEST_BODY_BYTES + 1)}, api_key=KEY)
    response = httpx.post(server.mcp_url, **request)
    assert response.status_code == 413
    assert app.store.list_items() == []


def test_oversized_headers_are_431_even_with_a_valid_key(served):
    server, _ = served
    request = tool_call("list_items", api_key=KEY)
    request["headers"]["x-padding"] = "p" * 9000
    response = httpx.post(server.mcp_url, **request)
    assert response.status_code == 431
    assert response.json()["error"]["code"] == -32013


def test_a_foreign_host_header_is_421(served):
    server, _ = served
    request = tool_call("list_items", api_key=KEY)
    request["headers"]["host"] = "evil.example:80"
    assert httpx.post(server.mcp_url, **request).status_code == 421


def test_a_foreign_origin_is_403(served):
    server, _ = served
    request = tool_call("list_items", api_key=KEY)
    request["headers"]["origin"] = "https://evil.example"
    assert httpx.post(server.mcp_url, **request).status_code == 403


def test_an_allowed_host_can_be_added_for_a_real_deployment(tmp_path):
    app = create_secured_app(
        KeyRing.from_keys({"alice": KEY}), tmp_path / "shop.sqlite3", allowed_hosts=["shop.example:443"]
    )
    with BackgroundServer(app, name="limits-allowed-host") as server:
        request = tool_call("list_items", api_key=KEY)
        request["headers"]["host"] = "shop.example:443"
        request["headers"]["origin"] = "https://shop.example:443"
        assert httpx.post(server.mcp_url, **request).status_code == 200
