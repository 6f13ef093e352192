"""Exercises for 06_production_practices: where a key may travel, rotation, scopes, reading the audit log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from lesson_code.app import is_loopback
from lesson_code.exercises.core import Exercise, Incorrect, call, join_words
from lesson_code.roles import LIST_READ, ROLES, TOOL_SCOPES

# -- q1: where may a key be sent? ------------------------------------------------------------------


def reference_safe_to_send_key(url: str) -> bool:
    """The reference answer to q1: HTTPS anywhere, plain HTTP only to this machine."""
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname or ""))


# (url, expected, why a wrong answer is wrong)
_URL_CASES: Final = (
    ("https://shop.example.com/mcp", True, "HTTPS encrypts the headers, the key included, all the way."),
    ("http://127.0.0.1:8000/mcp", True, "127.0.0.1 is this machine: a loopback request never touches a network."),
    ("http://localhost:8000/mcp", True, "localhost is this machine: a loopback request never touches a network."),
    ("http://[::1]:8000/mcp", True, "::1 is IPv6 loopback, this machine, like 127.0.0.1."),
    (
        "HTTPS://SHOP.EXAMPLE.COM/mcp",
        True,
        "URL schemes are case-insensitive: HTTPS is https. urlsplit(url).scheme comes back lower-cased.",
    ),
    (
        "http://shop.example.com/mcp",
        False,
        "plain HTTP to another machine: everyone on the path (the café Wi-Fi, a proxy) can read the key.",
    ),
    (
        "http://192.168.1.20:8000/mcp",
        False,
        "a machine on your local network is still another machine: the key would cross the network in clear.",
    ),
    (
        "http://localhost.attacker.example/mcp",
        False,
        "this host only starts with 'localhost'; it is a name anyone can register. Compare the parsed host "
        "(urlsplit(url).hostname), never a substring.",
    ),
    (
        "http://shop.example.com/mcp?next=https://x",
        False,
        "the scheme is http; 'https' only appears later in the URL. Look at urlsplit(url).scheme, not at "
        "whether the text contains 'https'.",
    ),
    ("ftp://127.0.0.1/mcp", False, "only http and https carry MCP requests; refuse anything else."),
)


class SafeToSendKey(Exercise):
    todo = "write safe_to_send_key(url) so that it returns True or False."
    hint_text = (
        "Split the URL with urlsplit(url): .scheme and .hostname come back parsed and lower-cased. "
        "https is always fine; http only when is_loopback(hostname)."
    )
    solution_code = """def safe_to_send_key(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname or ""))"""
    reference = staticmethod(reference_safe_to_send_key)

    def _check(self, safe_to_send_key: object) -> str:
        for url, expected, why in _URL_CASES:
            got = call(safe_to_send_key, url)  # type: ignore[arg-type]
            if not isinstance(got, bool):
                raise Incorrect(f"safe_to_send_key({url!r}) returned {got!r}; return True or False.")
            if got != expected:
                verdict = "True" if got else "False"
                raise Incorrect(f"safe_to_send_key({url!r}) returned {verdict}, but {why}")
        return "HTTPS anywhere, plain HTTP only to this machine, judged on the parsed URL."


# -- q2: rotating a key without an outage -----------------------------------------------------------

ROTATION_STEPS: Final = {
    "a": "revoke the old key (now called laptop.previous)",
    "b": "rotate: issue a new key for laptop; the old one stays valid as laptop.previous",
    "c": "put the new key where every client of the old one reads it",
    "d": "watch the audit log until no request uses laptop.previous any more",
}
ROTATION_ORDER: Final = ("b", "c", "d", "a")


class RotationOrder(Exercise):
    todo = 'put the four letters in rotation_order in the order you would do the steps, e.g. ["a", "b", "c", "d"].'
    hint_text = (
        "During a rotation both keys work. Which step ends that overlap, and what must be true "
        "before you take it?"
    )
    solution_code = 'rotation_order = ["b", "c", "d", "a"]'

    def _check(self, order: object) -> str:
        if isinstance(order, str) or not isinstance(order, list | tuple):
            raise Incorrect(f'rotation_order should be a list of letters, like ["a", "b", "c", "d"]; got {order!r}.')
        letters = [str(x).strip().lower() for x in order]
        if sorted(letters) != sorted(ROTATION_STEPS):
            raise Incorrect("use each of the letters a, b, c and d exactly once.")
        position = {letter: i for i, letter in enumerate(letters)}
        if position["b"] != 0:
            first = letters[0]
            raise Incorrect(
                f"step {first!r} cannot come first: until you rotate (b) there is no new key, and the old one "
                "is still called laptop, not laptop.previous."
            )
        if position["a"] < position["c"]:
            raise Incorrect(
                "revoking (a) before the clients have the new key (c) locks them out: every request they send "
                "gets 401 until someone notices. That is an outage you caused."
            )
        if position["a"] < position["d"]:
            raise Incorrect(
                "you revoke (a) before checking (d). How do you know every client moved? The forgotten nightly "
                "job fails at 3 a.m. The audit log names the key each request used: wait until "
                "laptop.previous goes quiet."
            )
        return "rotate, hand out, watch, revoke: at every moment each client holds a key that works."


# -- q3: which tools a role allows --------------------------------------------------------------------


def reference_allowed_tools(role: str) -> set[str]:
    """The reference answer to q3."""
    return {tool for tool, scope in TOOL_SCOPES.items() if scope in ROLES[role]}


class AllowedTools(Exercise):
    todo = "write allowed_tools(role) so that it returns the set of tool names a key with that role may call."
    hint_text = (
        "ROLES[role] is the set of scopes the role grants; TOOL_SCOPES maps each tool to the one scope it "
        "needs. Keep the tools whose scope is in the role's set."
    )
    solution_code = """def allowed_tools(role: str) -> set[str]:
    return {tool for tool, scope in TOOL_SCOPES.items() if scope in ROLES[role]}"""
    reference = staticmethod(reference_allowed_tools)

    def _check(self, allowed_tools: object) -> str:
        for role in ("shopper", "viewer"):
            got = call(allowed_tools, role)  # type: ignore[arg-type]
            self._compare(role, got)
        # A role added later must just work: the answer has to come from the tables.
        ROLES["lister"] = frozenset({LIST_READ})  # type: ignore[index]
        try:
            got = call(allowed_tools, "lister")  # type: ignore[arg-type]
        finally:
            del ROLES["lister"]  # type: ignore[attr-defined]
        if not isinstance(got, set | frozenset) or set(got) != {"list_items"}:
            raise Incorrect(
                f"for a new role that grants only list:read, allowed_tools returned {got!r}, not {{'list_items'}}. "
                "Read the answer from ROLES and TOOL_SCOPES instead of writing it out: then a new role just works."
            )
        return "shoppers may call all five tools, viewers only list_items and list_orders, straight from the tables."

    @staticmethod
    def _compare(role: str, got: Any) -> None:
        expected = reference_allowed_tools(role)
        if isinstance(got, list | tuple):
            got = set(got)
        if not isinstance(got, set | frozenset):
            raise Incorrect(f"allowed_tools({role!r}) returned {got!r}; return a set of tool names.")
        got = set(got)
        if got and got <= set(TOOL_SCOPES.values()):
            raise Incorrect(
                f"allowed_tools({role!r}) returned scopes ({', '.join(sorted(got))}); the question asks for "
                "tool names. TOOL_SCOPES maps each tool name to its scope."
            )
        extra, missing = sorted(got - expected), sorted(expected - got)
        if extra:
            needs = join_words(f"{tool} needs {TOOL_SCOPES.get(tool, '?')}" for tool in extra)
            raise Incorrect(
                f"allowed_tools({role!r}) includes {join_words(extra)}, but {needs}, which the {role} role "
                f"does not grant (it grants {', '.join(sorted(ROLES[role]))})."
            )
        if missing:
            raise Incorrect(f"allowed_tools({role!r}) leaves out {join_words(missing)}, which the {role} role allows.")


# -- q4: what the audit log says about refusals ----------------------------------------------------------

_SAMPLE_LOG: Final = (
    {"event": "auth", "outcome": "allowed", "key": "alice"},
    {"event": "tool_call", "outcome": "ok", "key": "alice", "tool": "add_item"},
    {"event": "auth", "outcome": "missing"},
    {"event": "auth", "outcome": "invalid"},
    {"event": "auth", "outcome": "invalid"},
    {"event": "auth", "outcome": "allowed", "key": "dashboard"},
    {"event": "tool_call", "outcome": "denied", "key": "dashboard", "tool": "place_order"},
    {"event": "auth", "outcome": "throttled"},
)
_SAMPLE_ANSWER: Final = {"missing": 1, "invalid": 2, "throttled": 1}


def reference_refusals(entries: list[dict[str, Any]]) -> dict[str, int]:
    """The reference answer to q4: how many requests the key check refused, by reason."""
    counts: dict[str, int] = {}
    for entry in entries:
        if entry.get("event") == "auth" and entry.get("outcome") != "allowed":
            counts[entry["outcome"]] = counts.get(entry["outcome"], 0) + 1
    return counts


class Refusals(Exercise):
    todo = "write refusals(entries) so that it returns a dict from outcome to count, e.g. {'invalid': 2}."
    hint_text = (
        "Keep the entries whose 'event' is 'auth' and whose 'outcome' is not 'allowed', and count them by "
        "outcome (a dict, or collections.Counter)."
    )
    solution_code = """def refusals(entries: list[dict]) -> dict[str, int]:
    counts = {}
    for entry in entries:
        if entry["event"] == "auth" and entry["outcome"] != "allowed":
            counts[entry["outcome"]] = counts.get(entry["outcome"], 0) + 1
    return counts"""
    reference = staticmethod(reference_refusals)

    def _check(self, refusals: object) -> str:
        got = call(refusals, [dict(e) for e in _SAMPLE_LOG], shown_args="entries")  # type: ignore[arg-type]
        if not isinstance(got, Mapping):
            raise Incorrect(f"refusals(entries) returned {type(got).__name__}; return a dict such as {{'invalid': 2}}.")
        got = {k: v for k, v in got.items() if v}
        if "allowed" in got:
            raise Incorrect("'allowed' is in your answer, but an allowed request is not a refusal: leave it out.")
        if "denied" in got or "ok" in got:
            raise Incorrect(
                "tool_call entries crept in (outcome 'ok' or 'denied'). They record what a tool did after the key "
                "check let the request in; count only entries whose event is 'auth'."
            )
        if got != _SAMPLE_ANSWER:
            raise Incorrect(f"for the sample log, refusals returned {got!r}; expected {_SAMPLE_ANSWER!r}.")
        empty = call(refusals, [], shown_args="[]")  # type: ignore[arg-type]
        if not isinstance(empty, Mapping) or any(empty.values()):
            raise Incorrect(f"an empty log has no refusals, so refusals([]) should be {{}}, not {empty!r}.")
        return "missing, invalid and throttled, counted from the key check's own record."


q1 = SafeToSendKey()
q2 = RotationOrder()
q3 = AllowedTools()
q4 = Refusals()
