"""00 q1: wrong answers with the words of their ❌, and other ways to write a right one."""

WRONG = [
    ('"Authorization"', 'header_name = "Authorization"', "bearer tokens"),
    ('"x_api_key"', 'header_name = "x_api_key"', "dashes, not underscores"),
    ("42", "header_name = 42", "text in quotes"),
]

RIGHT = [
    ("capitals", 'header_name = "X-API-Key"'),
    ("spaces around", 'header_name = " x-api-key "'),
]
