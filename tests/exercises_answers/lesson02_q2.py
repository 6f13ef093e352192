"""02 q2, parse the key list."""

WRONG = [
    ("split only", 'def parse_key_list(raw):\n    return raw.split(",")', "strip the spaces"),
    (
        "blanks kept",
        'def parse_key_list(raw):\n    return [part.strip() for part in raw.split(",")]',
        "empty key slipped in",
    ),
    (
        "a set: the order is lost",
        'def parse_key_list(raw):\n    return sorted({p.strip() for p in raw.split(",") if p.strip()}, reverse=True)',
        "expected",
    ),
]

RIGHT = [
    (
        "a for loop",
        "def parse_key_list(raw):\n"
        "    keys = []\n"
        '    for part in raw.split(","):\n'
        "        part = part.strip()\n"
        "        if part:\n"
        "            keys.append(part)\n"
        "    return keys",
    ),
    (
        "filter and map",
        'def parse_key_list(raw):\n    return list(filter(None, map(str.strip, raw.split(","))))',
    ),
]
