"""06 q4, refusals in the audit log: the checker makes fresh logs with every refusal outcome for each check."""

WRONG = [
    (
        "allowed counted too",
        "def refusals(entries):\n    return collections.Counter(e['outcome'] for e in entries)",
        "not a refusal",
    ),
    (
        "tool calls counted too",
        "def refusals(entries):\n"
        "    return collections.Counter(e['outcome'] for e in entries if e['outcome'] != 'allowed')",
        "count only entries whose event is 'auth'",
    ),
    (
        "hard-coded to the sample log",
        "def refusals(entries):\n    return {'missing': 1, 'invalid': 2, 'throttled': 1}",
        "for two different logs",
    ),
    (
        "only missing, invalid and throttled",
        "def refusals(entries):\n"
        "    return dict(collections.Counter(e['outcome'] for e in entries\n"
        "        if e['event'] == 'auth' and e['outcome'] in ('missing', 'invalid', 'throttled')))",
        "left out 'conflicting'",
    ),
]

RIGHT = [
    (
        "collections.Counter",
        "def refusals(entries):\n"
        "    return dict(collections.Counter(\n"
        "        e['outcome'] for e in entries if e['event'] == 'auth' and e['outcome'] != 'allowed'))",
    ),
    (
        "setdefault in a loop",
        "def refusals(entries):\n"
        "    counts = {}\n"
        "    for entry in entries:\n"
        "        if entry.get('event') != 'auth' or entry.get('outcome') == 'allowed':\n"
        "            continue\n"
        "        counts.setdefault(entry['outcome'], 0)\n"
        "        counts[entry['outcome']] += 1\n"
        "    return counts",
    ),
]
