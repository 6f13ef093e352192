"""The lesson widgets against a real secured server: what a learner clicks, done through methods and clicks.

One secured app (the real middleware, store and tools) runs in a background thread for
the whole module. Each widget is driven through its methods and, for the button paths,
through `button.click()` inside a running event loop, which is how the kernel calls
callbacks. Every check on displayed text also checks that no full key leaked into it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from IPython.core.formatters import DisplayFormatter
from IPython.lib.pretty import pretty

from lesson_code.agent import run_shopping_query
from lesson_code.app import create_secured_app
from lesson_code.background import BackgroundServer
from lesson_code.keys import KeyRing, generate_key, mask
from lesson_code.widgets import AgentConsole, AuthPlayground, KeyManager, MaskedKey, redact

# The repo's leak hook: the key prefix followed by 20+ key characters.
FULL_KEY = re.compile(r"sk-mcp-[A-Za-z0-9_\-]{20,}")
WRONG_KEY = "sk-mcp-" + "wrong" * 9


@dataclass
class Shop:
    url: str
    keyring: KeyRing
    valid_key: str
    revoked_key: str


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    valid, revoked = generate_key(), generate_key()
    keyring = KeyRing.from_keys({"learner": valid, "old-laptop": revoked})
    keyring.revoke("old-laptop")
    db_path = Path(tmp_path_factory.mktemp("widgets")) / "shop.db"
    server = BackgroundServer(create_secured_app(keyring, db_path), name="test-widgets").start()
    try:
        yield Shop(server.mcp_url, keyring, valid, revoked)
    finally:
        server.stop()


def playground(shop: Shop) -> AuthPlayground:
    keys = {"valid": shop.valid_key, "wrong": WRONG_KEY, "missing": None, "revoked": shop.revoked_key}
    return AuthPlayground(shop.url, keys)


def assert_no_full_key(*texts: str) -> None:
    for text in texts:
        assert not FULL_KEY.search(text), f"a full key is shown: {FULL_KEY.search(text)}"


def widget_texts(obj: object) -> list[str]:
    """Every string a widget tree would send to the browser (values, options, outputs)."""
    texts: list[str] = []
    pending = [obj.widget]  # type: ignore[attr-defined]
    while pending:
        widget = pending.pop()
        pending.extend(getattr(widget, "children", ()))
        for name in ("value", "description", "placeholder"):
            value = getattr(widget, name, None)
            if isinstance(value, str):
                texts.append(value)
        texts += [str(option) for option in getattr(widget, "options", ())]
        texts += [str(output) for output in getattr(widget, "outputs", ())]
    return texts


# --- AuthPlayground ----------------------------------------------------------------------


def test_playground_missing_key_is_refused_and_valid_key_accepted(shop: Shop, capsys: pytest.CaptureFixture) -> None:
    pg = playground(shop)
    assert "AuthPlayground ready" in capsys.readouterr().out

    refused = pg.send("missing", "tools/list")
    assert refused.status == 401
    assert refused.header("www-authenticate") == ['ApiKey realm="mcp", header="x-api-key"', 'Bearer realm="mcp"']
    assert refused.header("content-type") == ["application/json"]
    assert refused.data["error"]["code"] == -32010
    assert '"code": -32010' in refused.body  # pretty-printed
    assert "401 Unauthorized" in pg.response_view.value and "www-authenticate" in pg.response_view.value

    started = time.perf_counter()
    accepted = pg.send("valid", "tools/list")
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert accepted.status == 200
    assert {tool["name"] for tool in accepted.data["result"]["tools"]} >= {"add_item", "place_order"}
    assert "more lines" in accepted.body  # the long tool list is cut to a readable size
    assert 0 < accepted.latency_ms <= elapsed_ms  # the round trip, measured inside the call
    assert accepted.latency == f"{accepted.latency_ms:.0f} ms"

    assert [r.status for r in pg.history] == [401, 200]
    text = repr(pg)
    assert "history (2 requests)" in text
    assert re.search(r"missing\s+tools/list\s+401 Unauthorized\s+\d+ ms", text)
    assert re.search(r"valid\s+tools/list\s+200 OK\s+\d+ ms", text)
    assert "401 Unauthorized" in str(refused) and "www-authenticate" in str(refused)
    assert_no_full_key(text, str(refused), str(accepted), *widget_texts(pg))


def test_playground_wrong_and_revoked_keys_are_refused_health_is_public(shop: Shop) -> None:
    pg = playground(shop)
    assert pg.send("wrong", "add_item apples").status == 401
    revoked = pg.send("revoked", "place_order")
    assert revoked.status == 401 and revoked.data["error"]["code"] == -32011
    assert pg.send("missing", "GET /health").status == 200
    added = pg.send("valid", "add_item apples")
    assert added.status == 200 and added.data["result"]["structuredContent"]["name"] == "apples"
    # The key picker shows labels and masks, never the keys.
    labels = [label for label, _value in pg.key_picker.options]
    assert f"valid · {mask(shop.valid_key)}" in labels and "missing · no key sent" in labels
    assert_no_full_key(repr(pg), *widget_texts(pg))


def test_playground_display_shows_the_widget_and_a_readable_summary(shop: Shop) -> None:
    pg = playground(shop)
    bundle = pg._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == pg.widget.model_id
    assert bundle["text/plain"] == repr(pg)
    assert "history: no requests yet" in bundle["text/plain"]
    with pytest.raises(ValueError, match="unknown key label"):
        pg.send("nope", "tools/list")
    with pytest.raises(ValueError, match="unknown call"):
        pg.send("valid", "tools/destroy")


def test_playground_click_without_a_running_loop_still_sends(shop: Shop) -> None:
    pg = playground(shop)
    pg.key_picker.value, pg.call_picker.value = "valid", "list_items"
    pg.send_button.click()  # no loop here: the callback runs the request to the end itself
    assert [r.status for r in pg.history] == [200]


@pytest.mark.anyio
async def test_playground_send_button(shop: Shop) -> None:
    pg = playground(shop)
    pg.key_picker.value, pg.call_picker.value = "missing", "tools/list"
    pg.send_button.click()
    assert "sending" in pg.response_view.value  # scheduled on the loop, not done yet
    await pg.wait_idle()
    assert "401 Unauthorized" in pg.response_view.value
    assert "-32010" in pg.response_view.value

    pg.key_picker.value = "valid"
    pg.send_button.click()
    await pg.wait_idle()
    assert "200 OK" in pg.response_view.value
    assert [r.status for r in pg.history] == [401, 200]
    assert pg.history_view.value.count("<tr>") == 3  # header + two rows
    assert_no_full_key(*widget_texts(pg))


# --- MaskedKey: every way a notebook shows a value shows the mask ---------------------------


def test_masked_key_is_masked_in_every_display_path(capsys: pytest.CaptureFixture) -> None:
    raw = generate_key()
    key = MaskedKey(raw)
    shown = mask(raw)
    assert repr(key) == f"MaskedKey({shown!r})"
    assert pretty(key) == repr(key)  # IPython's echo of a cell's last line
    assert str(key) == shown and f"{key}" == shown and f"{key:>40}" == shown.rjust(40) and format(key) == shown
    assert "%s" % key == shown  # noqa: UP031 - the old %-formatting path is tested on purpose
    print(key, [key], {"k": key})
    printed = capsys.readouterr().out
    bundle, _metadata = DisplayFormatter().format(key)  # what Jupyter stores for display(key)
    for text in [printed, *map(str, bundle.values())]:
        assert raw not in text and raw[len("sk-mcp-") :] not in text and shown in text
    assert set(bundle) == {"text/plain"}  # no HTML or Markdown form that could show more


def test_masked_key_is_revealed_only_on_request() -> None:
    raw = generate_key()
    key = MaskedKey(raw)
    assert key.reveal() == raw and MaskedKey(key).reveal() == raw
    assert key == MaskedKey(raw) and key != MaskedKey(generate_key()) and len({key, MaskedKey(raw)}) == 1
    with pytest.raises(TypeError):  # not a str: a client cannot send it without saying reveal()
        httpx.Request("POST", "http://127.0.0.1/mcp", headers={"x-api-key": key})  # type: ignore[dict-item]  # wrong on purpose
    with pytest.raises(TypeError):
        json.dumps({"key": key})
    ring = KeyRing.from_keys({})
    record = ring.add("masked", key)  # KeyRing.add reveals it to digest it
    assert ring.lookup(raw) == record and ring.lookup(str(key)) is None  # the key, not its mask
    with pytest.raises(TypeError, match="key string"):
        MaskedKey(raw.encode())  # type: ignore[arg-type]  # wrong on purpose


# --- KeyManager --------------------------------------------------------------------------


def test_key_manager_create_test_revoke(shop: Shop, capsys: pytest.CaptureFixture) -> None:
    km = KeyManager(shop.keyring, shop.url)
    assert "KeyManager ready" in capsys.readouterr().out

    key = km.create("alice", role="viewer")
    assert isinstance(key, MaskedKey) and key.reveal().startswith("sk-mcp-") and len(key.reveal()) == 50
    assert shop.keyring.lookup(key.reveal()) is not None  # live on the ring the server reads
    assert km.test("alice") == 200
    assert km.test(key) == 200  # the masked key itself: the manager reveals it to send it
    assert km.test(key.reveal()) == 200
    assert "200 OK" in km.action_view.value

    rows = {row["name"]: row for row in km.rows()}
    assert rows["alice"]["role"] == "viewer" and rows["alice"]["status"] == "active"
    assert rows["alice"]["fingerprint"].startswith("fp-")
    assert set(rows["alice"]) == {"name", "role", "fingerprint", "created", "status"}  # no key column
    with pytest.raises(ValueError, match="already exists"):
        km.create("alice")

    record = km.revoke("alice")
    assert record.name == "alice"
    assert km.test("alice") == 401
    assert "401 Unauthorized" in km.action_view.value
    assert {row["name"]: row["status"] for row in km.rows()}["alice"] == "revoked"
    with pytest.raises(ValueError, match="already revoked"):
        km.revoke("alice")
    with pytest.raises(ValueError, match="not created by this KeyManager"):
        km.test("learner")
    assert km.test(WRONG_KEY) == 401

    text = repr(km)
    assert "alice" in text and rows["alice"]["fingerprint"] in text and "revoked" in text
    assert_no_full_key(text, *widget_texts(km))
    assert mask(key.reveal()) in km.created_view.value


@pytest.mark.anyio
async def test_key_manager_buttons(shop: Shop) -> None:
    km = KeyManager(shop.keyring, shop.url)
    km.name_box.value, km.role_picker.value = "bob", "shopper"
    km.create_button.click()
    assert "bob" in km.table_view.value and km.key_picker.value == "bob"
    key = km.pop_last_key()
    assert key is not None
    record = shop.keyring.lookup(key.reveal())
    assert record is not None and record.name == "bob"
    assert km.pop_last_key() is None  # handed over once

    km.test_button.click()
    await km.wait_idle()
    assert "200 OK" in km.action_view.value

    km.revoke_button.click()
    assert "revoked" in km.action_view.value and shop.keyring.lookup(key.reveal()) is None
    km.test_button.click()
    await km.wait_idle()
    assert "401 Unauthorized" in km.action_view.value

    km.name_box.value = "no spaces allowed"
    km.create_button.click()
    assert "not created" in km.created_view.value
    assert_no_full_key(repr(km), *widget_texts(km))


# --- AgentConsole --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_agent_console_with_key_places_the_order(shop: Shop) -> None:
    console = AgentConsole(shop.url, shop.valid_key, wrong_key=WRONG_KEY)
    transcript = await console.run()
    assert "→ add_item(name='apples', quantity=2)" in transcript
    assert "→ place_order()" in transcript
    assert re.search(r"ord-[0-9a-f]{12}", transcript)
    assert "answer: " in transcript
    # The output widget holds exactly the transcript, written line by line as it happened.
    streamed = "".join(output["text"] for output in console.output.outputs)
    assert streamed == transcript + "\n"
    assert len(console.output.outputs) > 5
    assert "last run" in repr(console) and "place_order" in repr(console)
    assert_no_full_key(transcript, repr(console), *widget_texts(console))


@pytest.mark.anyio
async def test_agent_console_without_or_with_wrong_key_says_so_in_one_line(shop: Shop) -> None:
    console = AgentConsole(shop.url, shop.valid_key, wrong_key=WRONG_KEY)
    transcript = await console.run(send_key=False)
    last = transcript.splitlines()[-1]
    assert last.startswith("✗ the MCP server rejected the API key (401): Unauthorized: missing API key")
    assert "Traceback" not in transcript and "place_order" not in transcript

    transcript = await console.run(use_wrong_key=True)
    assert transcript.splitlines()[-1] == "✗ the MCP server rejected the API key (401): Unauthorized: invalid API key."
    assert "a wrong key" in transcript
    assert_no_full_key(transcript, *widget_texts(console))


@pytest.mark.anyio
async def test_a_masked_key_from_the_key_manager_drives_the_console_and_the_agent(shop: Shop) -> None:
    key = KeyManager(shop.keyring, shop.url).create("agent-laptop")
    transcript = await AgentConsole(shop.url, key).run()  # the console reveals it to send it
    assert "→ place_order()" in transcript and "rejected" not in transcript
    result = await run_shopping_query(shop.url, key, "show my list")  # and so does the agent itself
    assert [name for name, _ in result.tool_calls] == ["list_items"]
    assert_no_full_key(transcript, result.answer)


@pytest.mark.anyio
async def test_agent_console_run_button(shop: Shop) -> None:
    console = AgentConsole(shop.url, shop.valid_key)
    console.send_key_toggle.value = False
    console.run_button.click()
    await console.wait_idle()
    streamed = "".join(output["text"] for output in console.output.outputs)
    assert "rejected the API key (401)" in streamed
    assert not console.run_button.disabled


def test_redact_masks_anything_key_shaped() -> None:
    key = generate_key()
    assert redact(f"header x-api-key: {key}.") == f"header x-api-key: {mask(key)}."
    assert redact("sk-mcp-abc…") == "sk-mcp-abc…"
