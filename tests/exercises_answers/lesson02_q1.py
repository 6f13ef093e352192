"""02 q1, make a key: keys that look right but can be predicted, and right answers made another way."""

WRONG = [
    ("uuid1: the time and the machine's address", 'def make_key():\n    return "sk-mcp-" + uuid.uuid1().hex', "uuid1"),
    (
        "a hash of the time",
        'def make_key():\n    return "sk-mcp-" + hashlib.sha256(str(time.time()).encode()).hexdigest()',
        "with the clock held still",
    ),
    (
        "a hash of a counter",
        "import itertools\n_counter = itertools.count()\n"
        'def make_key():\n    return "sk-mcp-" + hashlib.sha256(str(next(_counter)).encode()).hexdigest()',
        "with os.urandom held still",
    ),
    (
        "the time in nanoseconds, padded",
        'def make_key():\n    return "sk-mcp-" + format(time.time_ns(), "x").rjust(32, "0")',
        "with the clock held still",
    ),
    (
        "the random module",
        'import random\ndef make_key():\n    return "sk-mcp-" + "".join(random.choice("abcdefgh") for _ in range(60))',
        "random.seed(0)",
    ),
    (
        "uuid4: random, but with fixed version digits",
        'def make_key():\n    return "sk-mcp-" + uuid.uuid4().hex + uuid.uuid4().hex',
        "(nearly) never change",
    ),
    ("too short", 'def make_key():\n    return "sk-mcp-" + secrets.token_hex(8)', "at least 128"),
    ("no prefix", "def make_key():\n    return secrets.token_urlsafe(32)", "does not start with"),
]

RIGHT = [
    ("hex instead of URL-safe", 'def make_key():\n    return "sk-mcp-" + secrets.token_hex(32)'),
    (
        "secrets.choice in a loop",
        "import string\n"
        "def make_key():\n"
        "    alphabet = string.ascii_letters + string.digits\n"
        "    chars = []\n"
        "    for _ in range(40):\n"
        "        chars.append(secrets.choice(alphabet))\n"
        '    return "sk-mcp-" + "".join(chars)',
    ),
    (
        "os.urandom, base64-encoded",
        "import base64, os\n"
        "def make_key():\n"
        '    return "sk-mcp-" + base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")',
    ),
]
