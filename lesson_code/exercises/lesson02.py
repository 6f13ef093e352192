"""Exercises for 02_api_keys: make a key, load keys from the environment, check a key against digests."""

from __future__ import annotations

import hashlib
import random
import string
from typing import Final

from lesson_code.exercises.core import Exercise, Incorrect, call
from lesson_code.keys import KEY_PREFIX, generate_key, key_digest, mask

URL_SAFE: Final = frozenset(string.ascii_letters + string.digits + "-_")
MIN_BITS: Final = 128


def _random_bits(text: str) -> int:
    """Roughly how many random bits a string of hex or URL-safe characters can hold."""
    per_char = 4 if all(c in string.hexdigits for c in text) else 6
    return per_char * len(text)


class MakeKey(Exercise):
    todo = "write make_key() so that it returns a new key each time it is called."
    hint_text = (
        "secrets.token_urlsafe(32) returns 43 URL-safe characters made from 32 random bytes. Put the prefix in front."
    )
    solution_code = """def make_key() -> str:
    return "sk-mcp-" + secrets.token_urlsafe(32)"""

    def _check(self, make_key: object) -> str:
        keys = [call(make_key) for _ in range(3)]  # type: ignore[arg-type]
        for key in keys:
            if not isinstance(key, str):
                raise Incorrect(f"make_key() returned {type(key).__name__}; return the key as a str.")
            if not key.startswith(KEY_PREFIX):
                raise Incorrect(
                    f"make_key() returned {key[:8]!r}… which does not start with {KEY_PREFIX!r}. "
                    "The prefix lets people and secret scanners recognise a leaked key at a glance."
                )
            secret = key[len(KEY_PREFIX) :]
            bad = sorted({c for c in secret if c not in URL_SAFE})
            if bad:
                raise Incorrect(
                    f"the key contains {join_chars(bad)}, which is not URL-safe. Keys travel in headers, "
                    "environment variables and shell commands: stick to letters, digits, '-' and '_'."
                )
            bits = _random_bits(secret)
            if bits < MIN_BITS:
                raise Incorrect(
                    f"after the prefix the key has {len(secret)} characters, about {bits} random bits. "
                    f"Use at least {MIN_BITS}: secrets.token_urlsafe(16) or more (the course uses 32 bytes)."
                )
        if len(set(keys)) < len(keys):
            raise Incorrect("three calls to make_key() returned the same key. Each call must make a new one.")
        state = random.getstate()
        try:
            random.seed(0)
            first = make_key()  # type: ignore[operator]
            random.seed(0)
            second = make_key()  # type: ignore[operator]
        finally:
            random.setstate(state)
        if first == second:
            raise Incorrect(
                "after random.seed(0), make_key() returned the same key twice: it uses the `random` module, "
                "whose output can be predicted. Use `secrets`, which draws from the operating system."
            )
        return f"{mask(keys[0])} is prefixed, long, URL-safe and unpredictable."


def join_chars(chars: list[str]) -> str:
    return ", ".join(repr(c) for c in chars)


_PARSE_CASES: Final = (
    ("sk-mcp-alpha,sk-mcp-beta", ["sk-mcp-alpha", "sk-mcp-beta"]),
    (" sk-mcp-alpha , sk-mcp-beta ", ["sk-mcp-alpha", "sk-mcp-beta"]),
    ("sk-mcp-alpha,,sk-mcp-beta,", ["sk-mcp-alpha", "sk-mcp-beta"]),
    ("sk-mcp-alpha", ["sk-mcp-alpha"]),
    ("", []),
    (" , ", []),
)


class ParseKeyList(Exercise):
    todo = "write parse_key_list(raw) so that it returns the keys in a comma-separated string."
    hint_text = "Split on commas, strip each part, and keep only the parts that are not empty."
    solution_code = """def parse_key_list(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]"""

    def _check(self, parse_key_list: object) -> str:
        for raw, expected in _PARSE_CASES:
            got = call(parse_key_list, raw)  # type: ignore[arg-type]
            shown = f"parse_key_list({raw!r}) returned {got!r}"
            if not isinstance(got, list) or not all(isinstance(k, str) for k in got):
                raise Incorrect(f"{shown}: return a list of strings.")
            if any(not k.strip() for k in got):
                raise Incorrect(
                    f"{shown}: an empty key slipped in. If the server accepted '' as a key, a request with an "
                    "empty x-api-key header would get in. Skip the blank parts."
                )
            if any(k != k.strip() for k in got):
                raise Incorrect(
                    f"{shown}: strip the spaces around each key. ' sk-mcp-alpha' never matches the key a client sends."
                )
            if got != expected:
                raise Incorrect(f"{shown}; expected {expected!r}.")
        return "spaces stripped, blanks skipped, order kept."


def reference_is_valid_key(presented: str, valid_digests: set[str]) -> bool:
    """The reference answer to q3, used when the learner's version is not finished yet."""
    return hashlib.sha256(presented.encode()).hexdigest() in valid_digests


class IsValidKey(Exercise):
    todo = "write is_valid_key(presented, valid_digests) so that it returns True or False."
    hint_text = (
        "The set holds SHA-256 digests, so turn the presented key into a digest first: "
        "hashlib.sha256(presented.encode()).hexdigest(). Then one `in` answers the question."
    )
    solution_code = """def is_valid_key(presented: str, valid_digests: set[str]) -> bool:
    return hashlib.sha256(presented.encode()).hexdigest() in valid_digests"""
    reference = staticmethod(reference_is_valid_key)

    def _check(self, is_valid_key: object) -> str:
        alice, bob, stranger = generate_key(), generate_key(), generate_key()
        digests = {key_digest(alice), key_digest(bob)}
        cases = [
            (alice, True, f"Alice's key {mask(alice)}"),
            (bob, True, f"Bob's key {mask(bob)}"),
            (stranger, False, f"a key that is not in the set, {mask(stranger)}"),
            ("", False, "an empty string"),
            (key_digest(alice), False, "Alice's digest itself (as if read from a stolen keys file)"),
        ]
        for presented, expected, label in cases:
            shown = "'sk-mcp-…'" if presented.startswith("sk-mcp-") else repr(presented[:12] + "…")
            got = call(is_valid_key, presented, set(digests), shown_args=f"{shown}, valid_digests")  # type: ignore[arg-type]
            if not isinstance(got, bool):
                raise Incorrect(f"for {label}, is_valid_key returned {got!r}; return True or False.")
            if got == expected:
                continue
            if expected:
                raise Incorrect(
                    f"{label} was refused, but its digest is in the set. The set holds digests, not keys: "
                    "hash the presented key first, then look the digest up."
                )
            if presented == key_digest(alice):
                raise Incorrect(
                    f"{label} was accepted. Then a stolen keys file would work as a key, which is exactly what "
                    "storing digests prevents. Hash what is presented; never compare it to the digests as is."
                )
            raise Incorrect(f"{label} was accepted. Only keys whose digest is in the set may pass.")
        return "one hash and one set lookup: O(1), whatever the number of keys."


q1 = MakeKey()
q2 = ParseKeyList()
q3 = IsValidKey()
