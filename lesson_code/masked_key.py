"""A key that never shows itself: every way a notebook displays a value shows only its mask.

Why not a `str` subclass with a masked repr (what this used to be): `print(key)`,
`str(key)` and `f"{key}"` then showed the whole key, in the cell's output and so in
the saved notebook. A `MaskedKey` is not a string at all. `repr`, IPython's pretty
printer (a cell's last line), `print`, `str`, `format` and f-strings all give
`mask(key)`; the full key comes out only through an explicit `key.reveal()`.

Because it is not a `str`, it cannot be sent by accident either: `httpx` refuses it
as a header value and `json.dumps` refuses to encode it, loudly. Code that needs
the key says so with `reveal()` (or `revealed(key)` where a plain string is fine too).
"""

from __future__ import annotations

import hmac
from typing import Any

from lesson_code.keys import mask


class MaskedKey:
    """An API key whose every display is masked; `reveal()` returns the key itself."""

    __slots__ = ("_key",)

    def __init__(self, key: str | MaskedKey) -> None:
        if isinstance(key, MaskedKey):
            key = key.reveal()
        if not isinstance(key, str):
            raise TypeError(f"MaskedKey holds a key string, not {type(key).__name__}")
        self._key = key

    def reveal(self) -> str:
        """The full key, for the code that must send or store it (never for display)."""
        return self._key

    def __str__(self) -> str:
        return mask(self._key)

    def __format__(self, format_spec: str) -> str:
        return format(mask(self._key), format_spec)

    def __repr__(self) -> str:
        return f"MaskedKey({mask(self._key)!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MaskedKey):
            return NotImplemented
        return hmac.compare_digest(self._key.encode(), other._key.encode())

    def __hash__(self) -> int:
        return hash(self._key)


def revealed(key: str | MaskedKey) -> str:
    """The key as a plain string, whether it was given plain or masked."""
    return key.reveal() if isinstance(key, MaskedKey) else key


def key_hint(key: str | MaskedKey | None) -> str:
    """How a key is named on screen: its mask, or that none is sent."""
    return "no key sent" if key is None else mask(revealed(key))
