"""Exercises for 06_production_practices: where a key may travel, rotation, scopes, reading the audit log."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, Final

from lesson_code.exercises.core import Exercise, Incorrect, call, join_words
from lesson_code.exercises.references import reference_allowed_tools, reference_refusals, reference_safe_to_send_key
from lesson_code.roles import LIST_READ, ROLES, TOOL_SCOPES

__all__ = [
    "REFUSAL_OUTCOMES",
    "ROTATION_STEPS",
    "q1",
    "q2",
    "q3",
    "q4",
    "reference_allowed_tools",
    "reference_refusals",
    "reference_safe_to_send_key",
]

# -- q1: where may a key be sent? ------------------------------------------------------------------


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
        "http://127.0.0.1.evil.example/mcp",
        False,
        "this host only starts with '127.'; 127.0.0.1.evil.example is a name anyone can register, on another "
        "machine. Ask whether the whole parsed host is loopback (is_loopback(urlsplit(url).hostname)).",
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
        "Judge the parsed URL, never the text: urlsplit(url) gives .scheme and .hostname, lower-cased. Then two "
        "questions: is the connection encrypted, and if not, does it ever leave this machine?"
    )
    solution_code = """def safe_to_send_key(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname or ""))"""
    reference = staticmethod(reference_safe_to_send_key)

    def _check(self, safe_to_send_key: object) -> str:
        for url, expected, why in _URL_CASES:
            got = call(safe_to_send_key, url)
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


class RotationOrder(Exercise):
    todo = 'put the four letters in rotation_order in the order you would do the steps, e.g. ["a", "b", "c", "d"].'
    hint_text = (
        "During a rotation both keys work. Which step ends that overlap, and what must be true before you take it?"
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


class AllowedTools(Exercise):
    todo = "write allowed_tools(role) so that it returns the set of tool names a key with that role may call."
    hint_text = (
        "Two tables hold the answer: what does ROLES[role] contain, and what does TOOL_SCOPES map a tool to? "
        "A tool is allowed when the two meet."
    )
    solution_code = """def allowed_tools(role: str) -> set[str]:
    return {tool for tool, scope in TOOL_SCOPES.items() if scope in ROLES[role]}"""
    reference = staticmethod(reference_allowed_tools)

    def _check(self, allowed_tools: object) -> str:
        for role in ("shopper", "viewer"):
            got = call(allowed_tools, role)
            self._compare(role, got)
        # A role added later must just work: the answer has to come from the tables.
        ROLES["lister"] = frozenset({LIST_READ})
        try:
            got = call(allowed_tools, "lister")
        finally:
            del ROLES["lister"]
        if not isinstance(got, set | frozenset | list | tuple) or set(got) != {"list_items"}:
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

#: Every outcome other than "allowed" that the key check writes to the audit log (lesson_code/auth.py and
#: lesson_code/audit.py; tests/test_exercises_answers.py fails if the server adds one that is missing here).
REFUSAL_OUTCOMES: Final = (
    "missing",
    "invalid",
    "conflicting",
    "wrong_scheme",
    "headers_too_large",
    "throttled",
    "revoked_during_stream",
)
_KEY_NAMES: Final = ("alice", "bob", "dashboard", "laptop.previous")
_TOOLS: Final = tuple(TOOL_SCOPES)


def _entry(rng: random.Random, outcome: str, second: int) -> dict[str, Any]:
    """One audit entry shaped like the server's, with the fields a real line carries."""
    entry: dict[str, Any] = {
        "time": f"2026-11-30T02:{second // 60 % 60:02d}:{second % 60:02d}Z",
        "event": "auth",
        "outcome": outcome,
        "client": f"127.0.0.1:{rng.randint(40000, 60000)}",
        "method": rng.choice(("POST", "GET", "DELETE")),
        "path": "/mcp",
    }
    if outcome in ("allowed", "revoked_during_stream"):
        name = rng.choice(_KEY_NAMES)
        entry |= {"key": name, "fingerprint": f"fp-{rng.getrandbits(48):012x}"}
    if outcome == "throttled" and rng.random() < 0.4:  # the audit log's summary of a burst of throttled requests
        entry |= {"count": rng.randint(2, 40), "first": entry["time"], "last": entry["time"]}
    return entry


def audit_logs(seed: int | None = None, count: int = 4) -> list[list[dict[str, Any]]]:
    """Fresh audit logs for one check: every refusal outcome appears in some log, in varying numbers."""
    rng = random.Random(seed)
    logs: list[list[dict[str, Any]]] = []
    for index in range(count):
        outcomes = ["allowed"] * rng.randint(2, 8)
        chosen = REFUSAL_OUTCOMES if index == 0 else rng.sample(REFUSAL_OUTCOMES, rng.randint(1, len(REFUSAL_OUTCOMES)))
        for outcome in chosen:
            outcomes += [outcome] * rng.randint(1, 4)
        rng.shuffle(outcomes)
        log: list[dict[str, Any]] = []
        for second, outcome in enumerate(outcomes):
            entry = _entry(rng, outcome, second)
            log.append(entry)
            if outcome == "allowed" and rng.random() < 0.6:  # what the tool did after the key check let it in
                denied = rng.random() < 0.3
                log.append(
                    {
                        "time": entry["time"],
                        "event": "tool_call",
                        "outcome": "denied" if denied else "ok",
                        "key": entry["key"],
                        "tool": rng.choice(_TOOLS),
                    }
                )
        logs.append(log)
    return logs


class Refusals(Exercise):
    todo = "write refusals(entries) so that it returns a dict from outcome to count, e.g. {'invalid': 2}."
    hint_text = (
        "Which entries did the key check write, and which of its outcomes is not a refusal? Count the rest by "
        "outcome, without listing the refusal outcomes yourself: the server may add new ones."
    )
    solution_code = """def refusals(entries: list[dict]) -> dict[str, int]:
    counts = {}
    for entry in entries:
        if entry["event"] == "auth" and entry["outcome"] != "allowed":
            counts[entry["outcome"]] = counts.get(entry["outcome"], 0) + 1
    return counts"""
    reference = staticmethod(reference_refusals)

    def _check(self, refusals: object) -> str:
        logs = audit_logs()
        first, second = (call(refusals, [dict(e) for e in log], shown_args="entries") for log in logs[:2])
        if first == second and reference_refusals(logs[0]) != reference_refusals(logs[1]):
            raise Incorrect(
                f"refusals returned {first!r} for two different logs (made fresh for this check). Count the "
                "entries of the log you are given; an answer written out for one log fits no other."
            )
        for number, log in enumerate(logs, start=1):
            expected = reference_refusals(log)
            shown = f"entries (log {number}: {len(log)} entries)"
            got = call(refusals, [dict(e) for e in log], shown_args=shown)
            if not isinstance(got, Mapping):
                raise Incorrect(
                    f"refusals(entries) returned {type(got).__name__}; return a dict such as {{'invalid': 2}}."
                )
            got = {k: v for k, v in got.items() if v}
            if "allowed" in got:
                raise Incorrect("'allowed' is in your answer, but an allowed request is not a refusal: leave it out.")
            if "denied" in got or "ok" in got:
                raise Incorrect(
                    "tool_call entries crept in (outcome 'ok' or 'denied'). They record what a tool did after the "
                    "key check let the request in; count only entries whose event is 'auth'."
                )
            if got == expected:
                continue
            left_out = sorted(set(expected) - set(got))
            if left_out:
                raise Incorrect(
                    f"for log {number}, refusals left out {join_words(map(repr, left_out))}. The key check refuses "
                    "for more reasons than missing and invalid keys, and the server may add more: instead of listing "
                    "the refusal outcomes, keep every auth outcome that is not 'allowed'."
                )
            raise Incorrect(
                f"for log {number} (made fresh for this check), refusals returned {got!r}; expected {expected!r}. "
                "Count the entries of the log you are given, one per entry."
            )
        empty = call(refusals, [], shown_args="[]")
        if not isinstance(empty, Mapping) or any(empty.values()):
            raise Incorrect(f"an empty log has no refusals, so refusals([]) should be {{}}, not {empty!r}.")
        return "missing, invalid and throttled, counted from the key check's own record."


q1 = SafeToSendKey()
q2 = RotationOrder()
q3 = AllowedTools()
q4 = Refusals()
