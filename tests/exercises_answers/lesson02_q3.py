"""02 q3, check a key against digests."""

WRONG = [
    (
        "the key itself looked up",
        "def is_valid_key(presented, valid_digests):\n    return presented in valid_digests",
        "hash the presented key first",
    ),
    (
        ".digest() (bytes) instead of .hexdigest()",
        "def is_valid_key(presented, valid_digests):\n"
        "    return hashlib.sha256(presented.encode()).digest() in valid_digests",
        "You compute .digest()",
    ),
    (
        "MD5",
        "def is_valid_key(presented, valid_digests):\n"
        "    return hashlib.md5(presented.encode()).hexdigest() in valid_digests",
        "You hash with MD5",
    ),
    (
        "the digest accepted as a key",
        "def is_valid_key(presented, valid_digests):\n"
        "    return presented in valid_digests or key_digest(presented) in valid_digests",
        "stolen keys file",
    ),
    (
        "returns the digest",
        "def is_valid_key(presented, valid_digests):\n    return key_digest(presented) if presented else False",
        "return True or False",
    ),
]

RIGHT = [
    (
        "hmac.compare_digest over a loop",
        "def is_valid_key(presented, valid_digests):\n"
        "    digest = hashlib.sha256(presented.encode()).hexdigest()\n"
        "    found = False\n"
        "    for known in valid_digests:\n"
        "        if hmac.compare_digest(digest, known):\n"
        "            found = True\n"
        "    return found",
    ),
    (
        "the package's key_digest",
        "def is_valid_key(presented, valid_digests):\n    return key_digest(presented) in valid_digests",
    ),
]
