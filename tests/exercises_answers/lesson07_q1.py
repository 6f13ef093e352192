"""07 q1, what the replicas must share."""

WRONG = [
    ("only the keys", 'must_share = {"a"}', "three times the attempts"),
    ("only the throttle", 'must_share = {"b"}', "a key revoked on one replica still works"),
    ("the in-memory copy too", 'must_share = {"a", "b", "c"}', "stays per replica on purpose"),
    ("sessions too", 'must_share = {"a", "b", "d"}', "no session (d) to share"),
    ("the event loop", 'must_share = {"a", "b", "e"}', "cannot be shared"),
    ("not letters", 'must_share = {"keys", "throttle"}', "not one of the letters"),
    ("a string", 'must_share = "ab"', "a set of letters"),
]

RIGHT = [
    ("a list, capitals and spaces", 'must_share = [" B", "A"]'),
]
