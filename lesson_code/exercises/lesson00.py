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
