"""Exercises for 02_api_keys: make a key, load keys from the environment, check a key against digests."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import string
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Final

from lesson_code.exercises.core import Exercise, Incorrect, call
from lesson_code.exercises.references import reference_is_valid_key
from lesson_code.keys import KEY_PREFIX, generate_key, key_digest, mask

__all__ = ["q1", "q2", "q3", "reference_is_valid_key"]

URL_SAFE: Final = frozenset(string.ascii_letters + string.digits + "-_")
MIN_BITS: Final = 128
SAMPLES: Final = 64  # keys drawn to look for structure; random ones leave none at this size
WHY_SECRETS: Final = (
    "`secrets` draws every key from the operating system's cryptographic random source (os.urandom), which "
    "nobody can replay: no seed, no clock, no counter."
)


def _random_bits(text: str) -> int:
    """Roughly how many random bits a string of hex or URL-safe characters can hold."""
    per_char = 4 if all(c in string.hexdigits for c in text) else 6
    return per_char * len(text)


# Where a key's unpredictability can come from, each held still in turn, for the checking thread only
# (a server thread that makes a key meanwhile still gets real randomness).
_TIME_FUNCTIONS: Final = ("time", "time_ns", "perf_counter", "perf_counter_ns", "monotonic", "monotonic_ns")


@contextlib.contextmanager
def _held_still(module: Any, names: tuple[str, ...], value: Callable[[str], Callable[..., Any]]) -> Iterator[None]:
    """Replace `module.name` for the calling thread only; every other thread sees the original."""
    me = threading.get_ident()
    originals = {name: getattr(module, name) for name in names}

    def patched(name: str) -> Callable[..., Any]:
        original, fixed = originals[name], value(name)

        def chooser(*args: Any) -> Any:
            return fixed(*args) if threading.get_ident() == me else original(*args)

        return chooser

    for name in names:
        setattr(module, name, patched(name))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(module, name, original)


@contextlib.contextmanager
def _os_random_held_still() -> Iterator[None]:
    """os.urandom (also behind secrets, uuid4 and random.SystemRandom) returns zeros in this thread."""
    with (
        _held_still(os, ("urandom",), lambda _: lambda n: bytes(n)),
        _held_still(random, ("_urandom",), lambda _: lambda n: bytes(n)),
    ):
        yield


@contextlib.contextmanager
def _clock_held_still() -> Iterator[None]:
    frozen = {name: getattr(time, name)() for name in _TIME_FUNCTIONS}
    with _held_still(time, _TIME_FUNCTIONS, lambda name: lambda: frozen[name]):
        yield


def _twice(make_key: Callable[[], Any]) -> tuple[Any, Any]:
    return make_key(), make_key()


def _is_uuid1(secret: str) -> bool:
    try:
        return uuid.UUID(secret.replace("-", "")[:32]).version == 1
    except ValueError:
        return False


def _structure(secrets_: list[str]) -> str | None:
    """Structure that random keys would not show: constant positions, or keys that only go up."""
    length = min(len(s) for s in secrets_)
    flat = [i for i in range(length) if len({s[i] for s in secrets_}) <= 3]
    if flat:
        shown = ", ".join(str(i + 1) for i in flat[:6]) + ("…" if len(flat) > 6 else "")
        return (
            f"in {len(secrets_)} keys, the characters at position {shown} after the prefix (nearly) never change. "
            "Random keys vary everywhere; yours carry a fixed part (a uuid's version digit, a timestamp's leading "
            "digits, a machine id) that tells an attacker where to start."
        )
    if secrets_ == sorted(secrets_) or secrets_ == sorted(secrets_, reverse=True):
        return (
            f"{len(secrets_)} keys in a row came out in sorted order: each key follows from the one before, like "
            "a clock or a counter, so an attacker who sees one can guess the next."
        )
    return None


class MakeKey(Exercise):
    todo = "write make_key() so that it returns a new key each time it is called."
    hint_text = (
        "Which module of the standard library is made for secrets, rather than for simulations? Look at its "
        "token_… functions, and how many bytes you ask for. Then remember the prefix."
    )
    solution_code = """def make_key() -> str:
    return "sk-mcp-" + secrets.token_urlsafe(32)"""

    def _check(self, make_key: object) -> str:
        keys = [call(make_key) for _ in range(3)]
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
                    f"Use at least {MIN_BITS}: ask `secrets` for 16 random bytes or more (the course uses 32)."
                )
        if len(set(keys)) < len(keys):
            raise Incorrect("three calls to make_key() returned the same key. Each call must make a new one.")
        self._unpredictable(make_key)  # type: ignore[arg-type]  # call() above proved it callable, returning str
        return f"{mask(keys[0])} is prefixed, long, URL-safe and unpredictable."

    @staticmethod
    def _unpredictable(make_key: Callable[[], str]) -> None:
        """Length and alphabet say nothing about randomness: look for a source an attacker can replay."""
        state = random.getstate()
        try:
            random.seed(0)
            first = make_key()
            random.seed(0)
            second = make_key()
        finally:
            random.setstate(state)
        if first == second:
            raise Incorrect(
                "after random.seed(0), make_key() returned the same key twice: it uses the `random` module, "
                f"whose output follows from a seed and can be predicted. {WHY_SECRETS}"
            )
        with _clock_held_still():
            first, second = _twice(make_key)
        if first == second:
            raise Incorrect(
                "with the clock held still, make_key() returned the same key twice: your keys are made from the "
                f"time, and an attacker can try every time around the moment a key was made. {WHY_SECRETS}"
            )
        secret = first[len(KEY_PREFIX) :]
        if _is_uuid1(secret):
            raise Incorrect(
                "your key is a uuid1: the time it was made plus this machine's network address, both guessable. "
                f"{WHY_SECRETS}"
            )
        with _os_random_held_still():
            first, second = _twice(make_key)
        if first != second:
            raise Incorrect(
                "your keys do not come from the operating system's random source: with os.urandom held still, "
                "make_key() still changed, so something else drives it (a counter, the clock, a uuid1, a hash of "
                f"any of these), and whoever knows how can make the same keys. {WHY_SECRETS}"
            )
        structure = _structure([make_key()[len(KEY_PREFIX) :] for _ in range(SAMPLES)])
        if structure:
            raise Incorrect(f"{structure} {WHY_SECRETS}")


def join_chars(chars: list[str]) -> str:
    return ", ".join(repr(c) for c in chars)


_PARSE_CASES: Final[tuple[tuple[str, list[str]], ...]] = (
    ("sk-mcp-alpha,sk-mcp-beta", ["sk-mcp-alpha", "sk-mcp-beta"]),
    (" sk-mcp-alpha , sk-mcp-beta ", ["sk-mcp-alpha", "sk-mcp-beta"]),
    ("sk-mcp-alpha,,sk-mcp-beta,", ["sk-mcp-alpha", "sk-mcp-beta"]),
    ("sk-mcp-alpha", ["sk-mcp-alpha"]),
    ("sk-mcp-alpha,\tsk-mcp-beta\n", ["sk-mcp-alpha", "sk-mcp-beta"]),
    ("", []),
    (" , ", []),
)


class ParseKeyList(Exercise):
    todo = "write parse_key_list(raw) so that it returns the keys in a comma-separated string."
    hint_text = (
        "What does ' sk-mcp-a ,, sk-mcp-b, '.split(',') give you? Look at each part: which need tidying, "
        "and which should not be keys at all?"
    )
    solution_code = """def parse_key_list(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]"""

    def _check(self, parse_key_list: object) -> str:
        for raw, expected in _PARSE_CASES:
            got = call(parse_key_list, raw)
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


class IsValidKey(Exercise):
    todo = "write is_valid_key(presented, valid_digests) so that it returns True or False."
    hint_text = (
        "What does the set hold: keys, or something made from keys? Make the same thing from the presented key, "
        "the same way as in section 4, and the question is one `in`."
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
            got = call(is_valid_key, presented, set(digests), shown_args=f"{shown}, valid_digests")
            if not isinstance(got, bool):
                raise Incorrect(f"for {label}, is_valid_key returned {got!r}; return True or False.")
            if got == expected:
                continue
            if expected:
                raise Incorrect(_why_refused(is_valid_key, presented, label))  # type: ignore[arg-type]  # call()ed above
            if presented == key_digest(alice):
                raise Incorrect(
                    f"{label} was accepted. Then a stolen keys file would work as a key, which is exactly what "
                    "storing digests prevents. Hash what is presented; never compare it to the digests as is."
                )
            raise Incorrect(f"{label} was accepted. Only keys whose digest is in the set may pass.")
        return "one hash and one set lookup: O(1), whatever the number of keys."


_NEVER_MD5: Final = " (and never MD5 for anything secret: it has been broken for years)"


def _why_refused(is_valid_key: Callable[[str, set[Any]], object], key: str, label: str) -> str:
    """A valid key was refused: find out which digest the answer computes, by offering it sets of other kinds."""
    raw = key.encode()
    lead = f"{label} was refused, but its SHA-256 digest is in the set."
    probes: list[tuple[set[Any], str]] = [
        (
            {hashlib.sha256(raw).digest()},
            "You compute .digest(), which gives 32 raw bytes; the set holds .hexdigest() strings (64 hex "
            "characters), so the two never compare equal. Use .hexdigest().",
        ),
        *(
            (
                {hashlib.new(name, raw).hexdigest()},
                f"You hash with {name.upper()}, but the set holds SHA-256 digests: the same key gives a different "
                f"digest under each algorithm. Use hashlib.sha256{_NEVER_MD5 if name == 'md5' else ''}.",
            )
            for name in ("md5", "sha1", "sha512", "sha3_256", "blake2b")
        ),
        ({key}, "The set holds digests, not keys: hash the presented key first, then look the digest up."),
        (
            {hashlib.sha256(raw.strip()).hexdigest().upper()},
            "Your digest is in capitals; hexdigest() gives lower-case hex, and the set holds that.",
        ),
    ]
    for digests, reason in probes:
        try:
            if is_valid_key(key, digests) is True:
                return f"{lead} {reason}"
        except Exception:  # noqa: S112 - a probe that crashes tells us nothing; try the next one
            continue
    return f"{lead} Hash the presented key with SHA-256, as the set's digests were made, then look it up."


q1 = MakeKey()
q2 = ParseKeyList()
q3 = IsValidKey()
