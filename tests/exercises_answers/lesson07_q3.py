"""07 q3, what nginx may retry on another replica."""

WRONG = [
    ("every failure", 'retried = {"a", "b", "c", "d"}', "could order twice"),
    ("reads too", 'retried = {"a", "c", "d"}', "cannot tell a read from an order"),
    ("only the GET", 'retried = {"d"}', "nothing reached r2"),
    ("only the refused POST", 'retried = {"a"}', "connect timeout"),
    ("a letter too many", 'retried = {"a", "d", "e"}', "not one of the letters"),
]

RIGHT = [
    ("a tuple, capitals", 'retried = ("D", "a")'),
]
