"""Exercises for 01_threat_model: what can a stranger do, what harm is it, and does a key stop it?"""

from __future__ import annotations

from typing import Final

from lesson_code.exercises.core import DictExercise, Exercise, Incorrect, join_words
from lesson_code.roles import TOOL_SCOPES

TOOLS: Final = tuple(TOOL_SCOPES)  # add_item, remove_item, list_items, place_order, list_orders


class StrangerCanCall(Exercise):
    todo = 'set stranger_can_call to the set of tool names a stranger could call, e.g. {"list_items"}.'
    hint_text = (
        "The open server was built with create_open_app_for_threat_model. Is there any code between "
        "the HTTP request and the tool that asks who is calling?"
    )
    solution_code = 'stranger_can_call = {"add_item", "remove_item", "list_items", "place_order", "list_orders"}'

    def _check(self, answer: object) -> str:
        if isinstance(answer, str) or not isinstance(answer, set | frozenset | list | tuple):
            raise Incorrect(f'stranger_can_call should be a set of tool names, like {{"list_items"}}; got {answer!r}.')
        names = set(answer)
        unknown = sorted(n for n in names if n not in TOOLS)
        if unknown:
            names_given = join_words(map(repr, unknown))
            raise Incorrect(f"{names_given}: not a tool of this server. Its tools: {', '.join(TOOLS)}.")
        if not names:
            raise Incorrect(
                "An empty set says a stranger can do nothing. Does anything in the open server check who calls?"
            )
        missing = [n for n in TOOLS if n not in names]
        if missing:
            raise Incorrect(
                f"A stranger can call {join_words(missing)} too. Nothing in the open server asks who is calling, "
                "so every tool is one HTTP POST away."
            )
        return "all five. Nothing between the network and the tools asks who is calling."


THREATS: Final = ("unauthorized access", "data corruption", "unwanted actions", "resource consumption")
_SPELLINGS: Final = {
    "unauthorised access": "unauthorized access",
    "unwanted action": "unwanted actions",
    "resource exhaustion": "resource consumption",
}

SCENARIOS: Final = {
    "a": "the stranger calls list_items and reads what you plan to buy",
    "b": "the stranger removes your oat milk and adds 999 bottles of champagne",
    "c": "the stranger calls place_order, and the order is charged to you",
    "d": "a script calls add_item thousands of times a second until the server crawls",
}
_THREAT_OF: Final = {
    "a": "unauthorized access",
    "b": "data corruption",
    "c": "unwanted actions",
    "d": "resource consumption",
}
_WHY: Final = {
    "a": "nothing changes, but someone reads data that was never theirs to see: unauthorized access.",
    "b": "your list is no longer what you wrote: data corruption.",
    "c": "something happens in the real world (an order, a payment) without your say: an unwanted action.",
    "d": "no data leaks, but the server's CPU, disk and money are used up: resource consumption.",
}


def _normalise(answer: str) -> str:
    text = " ".join(answer.strip().lower().replace("_", " ").replace("-", " ").split())
    return _SPELLINGS.get(text, text)


class ThreatOf(DictExercise):
    todo = "give each scenario in threat_of one of the four threats, as text."
    hint_text = (
        "Ask what the harm is, not how the stranger got in (they all got in the same way): "
        "seeing, changing, doing, or using up?"
    )
    solution_code = """threat_of = {
    "a": "unauthorized access",
    "b": "data corruption",
    "c": "unwanted actions",
    "d": "resource consumption",
}"""
    variable = "threat_of"
    keys = tuple(SCENARIOS)
    entry_noun = "scenario"
    success = "seeing, changing, doing and using up: four different harms from one open door."

    def check_entry(self, key: str, given: object) -> None:
        if not isinstance(given, str):
            raise Incorrect(f'scenario {key}: write the threat as text in quotes, e.g. "data corruption".')
        threat = _normalise(given)
        if threat not in THREATS:
            raise Incorrect(f"scenario {key}: {given!r} is not one of the four threats ({', '.join(THREATS)}).")
        if threat != _THREAT_OF[key]:
            got_in = threat == "unauthorized access"
            lead = "Every scenario starts with a stranger getting in; name the harm. " if got_in else ""
            raise Incorrect(f"scenario {key} ({SCENARIOS[key]}): {lead}Here {_WHY[key]}")


KEY_SITUATIONS: Final = {
    "stranger": "a stranger who found the URL calls place_order",
    "guesser": "a bot tries a million made-up keys",
    "leaked": "your key was pasted into a public GitHub repo, and someone uses it",
    "eavesdropper": "someone on the café Wi-Fi reads your traffic to a plain http:// server",
    "viewer": "a key meant for a read-only dashboard is used to place an order",
}
_KEY_STOPS: Final = {"stranger": True, "guesser": True, "leaked": False, "eavesdropper": False, "viewer": False}
_KEY_WHY: Final = {
    "stranger": "a stranger has no key, so every request gets 401 before any tool runs. A key stops this.",
    "guesser": (
        "a key holds 256 random bits: a million guesses a second for a billion years still miss, and each "
        "guess costs the server one cheap 401. A key stops this."
    ),
    "leaked": (
        "a key proves someone holds it, not who they are: whoever finds a leaked key gets in. "
        "A key does not stop this; revoking it and issuing a new one does."
    ),
    "eavesdropper": (
        "over plain HTTP the key crosses the network as readable text, ready to be copied. "
        "A key does not stop this; TLS (https://) does."
    ),
    "viewer": (
        "a plain key check is all or nothing: every valid key may call every tool. A key does not stop "
        "this; authorization (roles and scopes per key) does."
    ),
}


class KeyStops(DictExercise):
    todo = "set each situation in key_stops to True (an API key stops it) or False (it does not)."
    hint_text = (
        "An API key answers one question: does this request carry a key from our set? "
        "For each situation, ask whether the attacker has such a key."
    )
    solution_code = """key_stops = {
    "stranger": True,
    "guesser": True,
    "leaked": False,
    "eavesdropper": False,
    "viewer": False,
}"""
    variable = "key_stops"
    keys = tuple(KEY_SITUATIONS)
    success = "a key keeps out whoever does not hold one. Leaks, eavesdroppers and over-powered keys need more."

    def check_entry(self, key: str, given: object) -> None:
        if not isinstance(given, bool):
            raise Incorrect(f"{key}: use True or False (no quotes), not {given!r}.")
        if given != _KEY_STOPS[key]:
            raise Incorrect(f"{key} ({KEY_SITUATIONS[key]}): {_KEY_WHY[key]}")


q1 = StrangerCanCall()
q2 = ThreatOf()
q3 = KeyStops()
