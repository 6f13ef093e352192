"""01 q3: wrong answers with the words of their ❌, and other ways to write a right one."""

WRONG = [
    (
        "a key stops a leaked key",
        'key_stops = {"stranger": True, "guesser": True, "leaked": True, "eavesdropper": ____, "viewer": ____}',
        "revoking it",
    ),
    (
        "yes instead of True",
        'key_stops = {"stranger": "yes", "guesser": ____, "leaked": ____, "eavesdropper": ____, "viewer": ____}',
        "True or False",
    ),
]

RIGHT: list[tuple[str, str]] = []
