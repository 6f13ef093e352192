"""04 q3: wrong answers with the words of their ❌, and other ways to write a right one."""

WRONG = [
    ("401", "bob_gets = 401", "the key check lets him through"),
    ("403", "bob_gets = 403", "admit the session exists"),
    ("200", "bob_gets = 200", "remembers which key opened"),
]

RIGHT: list[tuple[str, str]] = []
