"""00 q2: wrong answers with the words of their ❌, and other ways to write a right one."""

WRONG = [
    ("403", "refusal_status = 403", "knows who you are"),
    ('"401"', 'refusal_status = "401"', "as a number"),
    ("200", "refusal_status = 200", "success code"),
]

RIGHT = [
    ("from http.HTTPStatus", "import http\nrefusal_status = int(http.HTTPStatus.UNAUTHORIZED)"),
]
