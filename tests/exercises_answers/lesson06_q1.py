"""06 q1, where a key may travel."""

WRONG = [
    ("https only", 'def safe_to_send_key(url):\n    return url.startswith("https")', "127.0.0.1 is this machine"),
    (
        "substring hosts",
        'def safe_to_send_key(url):\n    return url.lower().startswith("https") or any('
        'host in url for host in ("localhost", "127.0.0.1", "::1"))',
        "never a substring",
    ),
    (
        "'https' anywhere in the URL",
        'def safe_to_send_key(url):\n    return "https" in url or is_loopback(urlsplit(url).hostname or "")',
        "urlsplit(url).scheme",
    ),
    (
        "hostname.startswith('127.')",
        "def safe_to_send_key(url):\n"
        "    parts = urlsplit(url)\n"
        '    host = parts.hostname or ""\n'
        '    return parts.scheme == "https" or (parts.scheme == "http" and '
        '(host.startswith("127.") or host in ("localhost", "::1")))',
        "only starts with '127.'",
    ),
]

RIGHT = [
    (
        "ipaddress by hand, if/else",
        "import ipaddress\n"
        "def safe_to_send_key(url):\n"
        "    parts = urlsplit(url)\n"
        '    if parts.scheme == "https":\n'
        "        return True\n"
        '    if parts.scheme != "http":\n'
        "        return False\n"
        '    host = parts.hostname or ""\n'
        '    if host == "localhost":\n'
        "        return True\n"
        "    try:\n"
        "        return ipaddress.ip_address(host).is_loopback\n"
        "    except ValueError:\n"
        "        return False",
    ),
]
