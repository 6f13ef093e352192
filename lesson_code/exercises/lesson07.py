"""Exercises for 07_scaling_out: what replicas must share, whose address to throttle, what the front may retry."""

from __future__ import annotations

from typing import Any, Final

from lesson_code.exercises.core import Exercise, Incorrect, LetterSetExercise, call

# -- q1: what must the replicas share? -----------------------------------------------------------------

STATE: Final = {
    "a": "the set of valid keys (digests and roles)",
    "b": "the count of failed attempts per client address",
    "c": "each replica's in-memory copy of the key set (its KeyRing)",
    "d": "the MCP session of a 2025-11-25 client, with the replicas in stateless mode",
    "e": "the uvicorn server and its event loop",
}
MUST_SHARE: Final = frozenset({"a", "b"})

_WHY_SHARED: Final = {
    "a": "the key set (a) must be one truth: with a copy per replica, a key revoked on one replica still works on "
    "the others, which is exactly what the two-keys-file demo above showed.",
    "b": "the failed-attempt counts (b) must be shared: counted per replica, a scanner that spreads its guesses "
    "over three replicas gets three times the attempts before anyone throttles it.",
}
_WHY_NOT: Final = {
    "c": "the in-memory copy (c) stays per replica on purpose: it is what makes the key check fast (no Redis round "
    "trip per request). What is shared is the truth it copies, and revocations reach every copy.",
    "d": "in stateless mode there is no session (d) to share: the SDK answers each request on its own and issues no "
    "Mcp-Session-Id, so any replica can take the next request.",
    "e": "a process's server and event loop (e) cannot be shared, and need not be: each replica runs its own.",
}


class MustShare(LetterSetExercise):
    todo = 'put the letters of the state every replica must share in must_share, e.g. {"a"}.'
    hint_text = (
        "For each one ask: if every replica kept its own, could a client or an attacker tell? "
        "A revoked key that still works somewhere, or a throttle that counts a third of the guesses, are tells."
    )
    solution_code = 'must_share = {"a", "b"}'
    variable = "must_share"
    options = STATE
    right = MUST_SHARE
    why_wrong = _WHY_NOT
    why_missing = _WHY_SHARED
    success = "the key set and the failed-attempt counts: one truth in Redis, a fast copy in each replica."


# -- q2: whose address does the throttle count? --------------------------------------------------------


def reference_client_address(peer: str, forwarded_for: str | None, trusted_proxies: set[str]) -> str:
    """The reference answer to q2: the address to count failed attempts against."""
    if peer not in trusted_proxies or not forwarded_for or not forwarded_for.strip():
        return peer
    return forwarded_for.split(",")[-1].strip()


FRONT: Final = "127.0.0.1"
# (peer, X-Forwarded-For, expected, why a wrong answer is wrong)
_ADDRESS_CASES: Final[tuple[tuple[str, str | None, str, str], ...]] = (
    (
        FRONT,
        "198.51.100.7",
        "198.51.100.7",
        "behind the front every request arrives from the front's address: counting that one address, a single "
        "scanner would lock out every client. Use X-Forwarded-For when the peer is a trusted proxy.",
    ),
    (
        "203.0.113.5",
        "198.51.100.7",
        "203.0.113.5",
        "this request did not come through a trusted proxy, so its X-Forwarded-For was written by the client "
        "itself: anyone can send that header. Believe it only when the peer is in trusted_proxies.",
    ),
    (FRONT, None, FRONT, "with no X-Forwarded-For header, the peer is the only address there is."),
    (FRONT, "", FRONT, "an empty X-Forwarded-For says nothing: fall back to the peer."),
    (
        FRONT,
        "6.6.6.6, 198.51.100.7",
        "198.51.100.7",
        "a proxy that appends writes the address it saw at the end; everything before it came from the client, "
        "who can write a fresh fake address for every guess. Take the last entry.",
    ),
    (FRONT, " 198.51.100.7 ", "198.51.100.7", "header values may carry spaces around the address: strip them."),
)


class ClientAddress(Exercise):
    todo = "write client_address(peer, forwarded_for, trusted_proxies) so that it returns an address (a str)."
    hint_text = (
        "Two questions, in order: did this request come from a proxy you trust (is peer in trusted_proxies)? "
        "If so, and it sent X-Forwarded-For, which entry did that proxy write?"
    )
    solution_code = """def client_address(peer: str, forwarded_for: str | None, trusted_proxies: set[str]) -> str:
    if peer not in trusted_proxies or not forwarded_for or not forwarded_for.strip():
        return peer
    return forwarded_for.split(",")[-1].strip()"""
    reference = staticmethod(reference_client_address)

    def _check(self, client_address: Any) -> str:
        for peer, forwarded, expected, why in _ADDRESS_CASES:
            got = call(client_address, peer, forwarded, {FRONT})
            shown = f"client_address({peer!r}, {forwarded!r}, {{{FRONT!r}}})"
            if not isinstance(got, str):
                raise Incorrect(f"{shown} returned {got!r}; return a str.")
            if got.strip() == expected and got != expected:
                raise Incorrect(
                    f"{shown} returned {got!r}, with spaces around the address: strip them, or one client "
                    "counts as several addresses."
                )
            if got != expected:
                raise Incorrect(f"{shown} returned {got!r}, expected {expected!r}: {why}")
        return "the forwarded address only from a trusted proxy, the entry that proxy wrote, else the peer."


# -- q3: what may the front retry on another replica? ------------------------------------------------------

REQUESTS: Final = {
    "a": "POST /mcp place_order: the connection to r2 was refused (r2 is down)",
    "b": "POST /mcp place_order: r2 read the whole request, then died before answering",
    "c": "POST /mcp list_items: r2 read the whole request, then died before answering",
    "d": "GET /health: r2 did not accept the connection within proxy_connect_timeout",
}
RETRIED: Final = frozenset({"a", "d"})

_WHY_RETRIED: Final = {
    "a": "(a) is retried: the connection was refused, so nothing reached r2 and nothing can have happened twice. "
    "That is what keeps the front answering when a replica dies.",
    "d": "(d) is retried: `timeout` in proxy_next_upstream covers the connect timeout, nothing was sent, and a "
    "GET is idempotent anyway.",
}
_WHY_NOT_RETRIED: Final = {
    "b": "(b) is not retried: r2 may have placed the order before it died. Sending the POST again could order "
    "twice, so nginx never re-sends a non-idempotent request that reached a replica (unless told "
    "`non_idempotent`, which this front is not); the client sees the error and decides.",
    "c": "(c) is not retried either: list_items only reads, but nginx sees POST /mcp, like every MCP request. It "
    "cannot tell a read from an order, so it treats every POST that reached a replica the same way.",
}


class Retried(LetterSetExercise):
    todo = 'put the letters of the requests nginx sends on to another replica in retried, e.g. {"a"}.'
    hint_text = (
        "nginx retries on `error timeout` only if the request never reached the replica, or if its method is "
        "idempotent. Which of these had already been handed to r2? And what method does every MCP request use?"
    )
    solution_code = 'retried = {"a", "d"}'
    variable = "retried"
    options = REQUESTS
    right = RETRIED
    why_wrong = _WHY_NOT_RETRIED
    why_missing = _WHY_RETRIED
    success = "only what never reached a replica (or is idempotent): a dead replica costs no order twice."


q1 = MustShare()
q2 = ClientAddress()
q3 = Retried()
