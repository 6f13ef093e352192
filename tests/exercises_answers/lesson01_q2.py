"""01 q2: wrong answers with the words of their ❌, and other ways to write a right one."""

# ruff: noqa: E501 - each answer is one dict literal, as a learner types it on one line

WRONG = [
    (
        "every scenario called unauthorized access",
        'threat_of = {"a": "unauthorized access", "b": "unauthorized access", "c": ____, "d": ____}',
        "name the harm",
    ),
    (
        "a threat that is not one of the four",
        'threat_of = {"a": "hacking", "b": ____, "c": ____, "d": ____}',
        "not one of the four",
    ),
]

RIGHT = [
    (
        "British spelling, capitals",
        'threat_of = {"a": "Unauthorised access", "b": "data-corruption", "c": "unwanted action", "d": "resource exhaustion"}',
    ),
]
