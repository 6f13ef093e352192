"""07 q2, whose address the throttle counts behind a proxy."""

WRONG = [
    (
        "always the peer",
        "def client_address(peer, forwarded_for, trusted_proxies):\n    return peer",
        "lock out every client",
    ),
    (
        "always the header",
        "def client_address(peer, forwarded_for, trusted_proxies):\n    return forwarded_for or peer",
        "anyone can send that header",
    ),
    (
        "the first entry",
        "def client_address(peer, forwarded_for, trusted_proxies):\n"
        "    if peer in trusted_proxies and forwarded_for:\n"
        '        return forwarded_for.split(",")[0].strip()\n'
        "    return peer",
        "Take the last entry",
    ),
    (
        "no strip",
        "def client_address(peer, forwarded_for, trusted_proxies):\n"
        "    if peer in trusted_proxies and forwarded_for:\n"
        '        return forwarded_for.split(",")[-1]\n'
        "    return peer",
        "strip them",
    ),
    (
        "an empty header believed",
        "def client_address(peer, forwarded_for, trusted_proxies):\n"
        "    if peer in trusted_proxies and forwarded_for is not None:\n"
        '        return forwarded_for.split(",")[-1].strip()\n'
        "    return peer",
        "an empty X-Forwarded-For says nothing",
    ),
    (
        "a crash on None",
        "def client_address(peer, forwarded_for, trusted_proxies):\n"
        "    if peer in trusted_proxies:\n"
        '        return forwarded_for.split(",")[-1].strip()\n'
        "    return peer",
        "raised AttributeError",
    ),
]

RIGHT = [
    (
        "walk the list from the right",
        "def client_address(peer, forwarded_for, trusted_proxies):\n"
        "    if peer not in trusted_proxies:\n"
        "        return peer\n"
        '    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]\n'
        "    return hops[-1] if hops else peer",
    ),
]
