"""06 q2: wrong answers with the words of their ❌, and other ways to write a right one."""

WRONG = [
    ('["b", "a", "c", "d"]', 'rotation_order = ["b", "a", "c", "d"]', "outage"),
    ('["b", "c", "a", "d"]', 'rotation_order = ["b", "c", "a", "d"]', "audit log names the key"),
    ('["c", "b", "d", "a"]', 'rotation_order = ["c", "b", "d", "a"]', "cannot come first"),
    ('["b", "c", "d"]', 'rotation_order = ["b", "c", "d"]', "exactly once"),
]

RIGHT = [
    ("a tuple, capitals", 'rotation_order = ("B", "C", "D", "A")'),
]
