"""The package's one-of-each helpers: the event-stream parser (sse.py) and the text helpers (text.py)."""

from __future__ import annotations

import pytest

from lesson_code.net import is_loopback
from lesson_code.sse import event_data, json_message, looks_like_event_stream
from lesson_code.text import join_words, shorten, text_table


def test_event_data_follows_the_event_stream_rules() -> None:
    stream = (
        ": a comment line\r\n"
        "event: message\r\n"
        'data: {"a":\r\n'  # one space after the colon is dropped ...
        "data:  1}\r\n"  # ... and only one
        "\r\n"
        "id: 7\n"
        "\n"  # an event with no data is no event
        "data:x\rdata\r\r"  # CR line ends, and a bare `data` field is an empty line
        "data: cut off"  # the last event, without its blank line
    )
    assert event_data(stream) == ['{"a":\n 1}', "x\n", "cut off"]


def test_json_message_takes_the_answer_that_ends_a_stream() -> None:
    notification = '{"jsonrpc": "2.0", "method": "notifications/message"}'
    answer = '{"jsonrpc": "2.0", "id": 1, "result": {}}'
    stream = f"event: message\ndata: {notification}\n\nevent: message\ndata: {answer}\n\ndata: not json\n\n"
    assert json_message(stream) == {"jsonrpc": "2.0", "id": 1, "result": {}}
    assert json_message('{"plain": true}') == {"plain": True}
    assert json_message("data: 1\n\n", event_stream=False) is None  # told it is plain JSON: it is not
    assert json_message("<html>502</html>") is None
    assert looks_like_event_stream("\nretry: 10\n") and not looks_like_event_stream('{"data": 1}')


@pytest.mark.parametrize(
    ("text", "limit", "shown"),
    [
        ("short", 10, "short"),
        ("  spread\nover\tlines  ", 40, "spread over lines"),
        ("abcdefghij", 5, "abcd…"),
        ("abcde", 5, "abcde"),
    ],
)
def test_shorten(text: str, limit: int, shown: str) -> None:
    assert shorten(text, limit) == shown and len(shorten(text, limit)) <= limit


def test_join_words() -> None:
    assert [join_words(words) for words in ([], ["a"], ["a", "b"], iter(["a", "b", "c"]))] == [
        "",
        "a",
        "a and b",
        "a, b and c",
    ]


def test_text_table_aligns_columns_with_no_trailing_spaces() -> None:
    rows = [["alice", "shopper", "active"], ["bob", "viewer", ""]]
    assert text_table(["name", "role", "status"], rows).splitlines() == [
        "name   role     status",
        "alice  shopper  active",
        "bob    viewer",
    ]
    assert text_table(["a", "b"], [["long cell", 1]], rule=True).splitlines() == [
        "a          b",
        "---------  -",
        "long cell  1",
    ]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("localhost", True), ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True),
     ("0.0.0.0", False), ("10.0.0.1", False), ("localhost.evil.example", False), ("", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
