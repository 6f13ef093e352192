"""The attack catalogue: requests that must NOT get past an API-key check, and a scorecard.

Why a catalogue: "my middleware checks the key" is easy to believe and easy to get
wrong. A key check can be slipped past by spelling the path differently (`/mcp/`,
`//mcp`), by a method nobody thought of, by sending two keys and letting the check
read one while the app reads the other, by a key in the wrong header, or by a
look-alike value that a sloppy comparison accepts. Each case here is one such trick,
written down as data, so a learner can run all of them against their own middleware
and read which ones got through, and why.

How a case is judged: the request is sent over real HTTP (a raw socket, so duplicate
headers, raw bytes and odd request targets go out exactly as written), and the
attack is stopped only if

* the answer's status is one the case allows (401 mostly; 400 when the HTTP server
  itself refuses malformed bytes; 403/421 from the SDK's Origin/Host checks; 413/431
  for oversized requests; 429 from a throttle, if allowed),
* the shopping list and orders are exactly as before (`store.snapshot()` is taken
  before and after every single attack; nothing is reset in between), and
* no key the attacker presented is echoed back in the response.

Usage in a notebook (top-level `await` works in Jupyter):

    scorecard = await run_attacks(MyMiddleware(inner_app, ...), store=shop.store, valid_key=KEY)
    scorecard                      # a short summary plus the failures
    print(scorecard.table())       # every case, one line each

An ASGI app is served with uvicorn on loopback for the run (its lifespan runs there,
which the MCP app needs) and stopped afterwards; an app can run its lifespan only
once, so pass a freshly built app, a zero-argument factory, or the URL (or
`BackgroundServer`) of a server that is already running.
"""

from __future__ import annotations

from lesson_code.attacks.catalogue import CATALOGUE, Attack, AttackContext, get_attack
from lesson_code.attacks.constants import GROUPS
from lesson_code.attacks.runner import run_attacks
from lesson_code.attacks.scorecard import AttackResult, Scorecard, describe_change, judge
from lesson_code.attacks.sending import RawResponse, send_attack, send_raw

__all__ = [
    "CATALOGUE",
    "GROUPS",
    "Attack",
    "AttackContext",
    "AttackResult",
    "RawResponse",
    "Scorecard",
    "describe_change",
    "get_attack",
    "judge",
    "run_attacks",
    "send_attack",
    "send_raw",
]
