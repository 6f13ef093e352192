"""Exercises for 00_start_here: a warm-up to try check(), hint() and solution()."""

from __future__ import annotations

from lesson_code.exercises.core import Exercise, Incorrect


class HeaderName(Exercise):
    todo = 'set header_name to the name of the HTTP header that carries the API key, e.g. "something-here".'
    hint_text = "Look at the label on the arrow from the agent to the middleware in the diagram at the top."
    solution_code = 'header_name = "x-api-key"'

    def _check(self, header_name: object) -> str:
        if not isinstance(header_name, str):
            raise Incorrect(f'header_name should be text in quotes, like "..."; it is {type(header_name).__name__}.')
        spelled = header_name.strip().lower()
        if spelled == "x-api-key":
            return (
                "the key travels in the x-api-key header. Header names are case-insensitive, "
                "so X-API-Key names the same header."
            )
        if spelled == "authorization":
            raise Incorrect(
                "Authorization usually carries OAuth bearer tokens. In this course the key has a header "
                "of its own: look at the arrow from the agent in the diagram."
            )
        if spelled.replace("_", "-") == "x-api-key":
            raise Incorrect(
                "Close: use dashes, not underscores. Proxies such as nginx silently drop header names "
                "that contain underscores."
            )
        if spelled in ("api-key", "apikey", "x-apikey", "api_key"):
            raise Incorrect(f"Close, but {header_name!r} is not quite it: check the exact spelling in the diagram.")
        raise Incorrect(f"{header_name!r} is not the header in the diagram: look at the arrow from the agent.")


q1 = HeaderName()


class RefusalStatus(Exercise):
    todo = "set refusal_status to the HTTP status code (a number) the middleware answers when the key is missing."
    hint_text = "Look at the dotted arrow back to the agent in the diagram at the top."
    solution_code = "refusal_status = 401"

    def _check(self, refusal_status: object) -> str:
        if isinstance(refusal_status, str) and refusal_status.strip().isdigit():
            raise Incorrect(f"write the status as a number, not the text {refusal_status!r}: HTTP codes are numbers.")
        if isinstance(refusal_status, bool) or not isinstance(refusal_status, int):
            raise Incorrect(f"refusal_status should be a number such as 200; it is {type(refusal_status).__name__}.")
        if refusal_status == 401:
            return (
                "401 Unauthorized. Despite its name it means unauthenticated: we do not know who you are. "
                "The body says why, as a JSON-RPC error, and a WWW-Authenticate header says how to log in."
            )
        if refusal_status == 403:
            raise Incorrect(
                "403 Forbidden means the server knows who you are and still says no. Without a key it does "
                "not know who you are: that is a different code."
            )
        if refusal_status == 404:
            raise Incorrect("404 would pretend the endpoint does not exist; the diagram's arrow says otherwise.")
        if 200 <= refusal_status < 300:
            raise Incorrect(f"{refusal_status} is a success code: the request is refused, not served.")
        raise Incorrect(f"{refusal_status} is not the code on the dotted arrow in the diagram.")


q2 = RefusalStatus()
