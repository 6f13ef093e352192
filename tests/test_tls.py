"""HTTPS with the development CA: the agent and the official MCP client verify it."""

from __future__ import annotations

import ssl

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from lesson_code.agent import ServerUnreachableError, run_shopping_query
from lesson_code.app import create_secured_app
from lesson_code.background import BackgroundServer
from lesson_code.keys import KeyRing, generate_key
from lesson_code.tls import ensure_dev_certificates

pytestmark = pytest.mark.anyio


@pytest.fixture
def tls_server(tmp_path):
    certs = ensure_dev_certificates(tmp_path / "tls")
    key = generate_key()
    app = create_secured_app(KeyRing.from_keys({"alice": key}), tmp_path / "shop.sqlite3")
    with BackgroundServer(app, name="tls-test", ssl_certfile=certs.server_cert, ssl_keyfile=certs.server_key) as server:
        yield server, certs, key, app


def test_certificates_are_created_once_with_a_private_key_only_the_owner_reads(tmp_path):
    first = ensure_dev_certificates(tmp_path / "tls")
    again = ensure_dev_certificates(tmp_path / "tls")
    assert first == again
    assert oct(first.server_key.stat().st_mode & 0o777) == "0o600"


async def test_the_agent_connects_over_https_trusting_the_dev_ca(tls_server):
    server, certs, key, app = tls_server
    assert server.mcp_url.startswith("https://")
    result = await run_shopping_query(server.mcp_url, key, ca_file=certs.ca_cert)
    assert "ord-" in result.answer
    assert app.store.list_orders()


async def test_the_agent_refuses_a_server_it_cannot_verify(tls_server):
    server, _, key, app = tls_server
    with pytest.raises(ServerUnreachableError, match="TLS certificate is not trusted"):
        await run_shopping_query(server.mcp_url, key)  # system trust store: the dev CA is unknown
    assert app.store.list_items() == []


async def test_the_official_mcp_client_over_https(tls_server):
    server, certs, key, _ = tls_server
    context = ssl.create_default_context(cafile=str(certs.ca_cert))
    async with (
        httpx2.AsyncClient(headers={"x-api-key": key}, verify=context) as http,
        Client(streamable_http_client(server.mcp_url, http_client=http)) as client,
    ):
        tools = await client.list_tools()
        assert {t.name for t in tools.tools} >= {"add_item", "place_order"}
        result = await client.call_tool("add_item", {"name": "tea"})
        assert not result.is_error


def test_plain_http_to_the_tls_port_is_not_served(tls_server):
    server, _, key, _ = tls_server
    with pytest.raises(httpx.HTTPError):
        httpx.post(server.mcp_url.replace("https://", "http://"), headers={"x-api-key": key}, timeout=3)


async def test_plain_http_to_the_tls_port_gives_the_agent_one_clear_error(tls_server):
    server, _, key, _ = tls_server
    with pytest.raises(ServerUnreachableError, match=r"http:// to an https:// server"):
        await run_shopping_query(server.mcp_url.replace("https://", "http://"), key)
