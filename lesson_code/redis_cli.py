"""The command line's Redis parts: `keys ... --redis URL`, `serve --redis URL ...`, and `audit`.

Kept out of `cli.py` so that the keys-file commands stay readable and the
cluster's options live beside the code they drive. `cli.py` calls in at three
points: the keys commands' `_on_keys_file` (run the same action on the Redis
store instead of the file), `serve` (build the replica's shared state), and
the parser (options and the `audit` command).

    keys new|list|revoke|rotate ... --redis URL     the shared store, same rules and messages as a file
    serve --redis URL [--redis-grace S] [--replica-name NAME] [--audit-redis-stream] [--stateless]
    audit (--redis URL | --audit-log FILE) [--last N]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from lesson_code.keys import KeyFileError, create_key, keys_from_env, read_key_file, revoke_key, rotate_key

if TYPE_CHECKING:  # importing `redis` costs about half a second: only the commands that use it pay
    from lesson_code.redis_replica import ReplicaState

T = TypeVar("T")

DEFAULT_GRACE: Final = 30.0  # = redis_sync.DEFAULT_GRACE (a test checks), not imported to keep `cli` light
REDIS_URL_HELP = (
    "the cluster's shared key store, e.g. redis://127.0.0.1:6379/0, instead of the keys file (default: none)"
)


# --- keys ... --redis URL --------------------------------------------------------------------


def add_keys_option(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--redis", metavar="URL", help=REDIS_URL_HELP)


def on_store(args: argparse.Namespace, action: Callable[..., T], *params: object) -> T:
    """Run a keys-file action (`create_key`, `revoke_key`, ...) on the Redis store named by `args.redis`.

    Afterwards `args.keys_file` names the store (its URL without a password), so
    the command's messages say where the change went.
    """
    from lesson_code.redis_keys import RedisKeyStore

    store = RedisKeyStore(args.redis)
    methods: dict[Callable[..., Any], Callable[..., Any]] = {
        create_key: store.create,
        revoke_key: store.revoke,
        rotate_key: store.rotate,
        read_key_file: store.records,
    }
    method = methods.get(action)
    if method is None:
        raise KeyFileError(f"{getattr(action, '__name__', action)} is not available with --redis")
    try:
        result: T = method(*params)
    finally:
        store.close()
    args.keys_file = store.where
    return result


# --- serve --redis URL -------------------------------------------------------------------------


def add_serve_options(serve: argparse.ArgumentParser) -> None:
    group = serve.add_argument_group(
        "cluster (one replica of many)",
        "With --redis, keys come from the shared store (plus MCP_API_KEYS) instead of the keys file, failed "
        "attempts are counted for the whole cluster, and every audit entry names the replica.",
    )
    group.add_argument(
        "--redis",
        metavar="URL",
        help="share keys, throttle and (optionally) audit through this Redis (default: none, the keys file)",
    )
    group.add_argument(
        "--redis-grace",
        type=float,
        default=DEFAULT_GRACE,
        metavar="SECONDS",
        help="after losing Redis, keep serving the last known keys this long, then refuse every request with 503 "
        "(default: %(default)g s)",
    )
    group.add_argument(
        "--replica-name",
        metavar="NAME",
        help="this replica's name in audit entries and log lines (default: hostname-pid)",
    )
    group.add_argument(
        "--audit-redis-stream",
        action="store_true",
        help="also append audit entries to the Redis stream mcp:audit (bounded; read with `audit --redis URL`) "
        "(off unless given)",
    )
    serve.add_argument(
        "--stateless",
        action="store_true",
        help="no MCP sessions (the SDK's stateless mode): any replica can answer any request, for a load balancer; "
        "default: sessions, bound to the key that opened them",
    )


def start_replica(args: argparse.Namespace, audit_path: Path) -> ReplicaState:
    """The replica's shared state for `serve --redis`: reads the key set once (or raises `KeyFileError`)."""
    from lesson_code.redis_keys import display_url
    from lesson_code.redis_replica import ReplicaState

    if args.redis_grace < 0:
        raise KeyFileError("--redis-grace must be 0 or more seconds")
    state = ReplicaState.start(
        args.redis,
        name=args.replica_name,
        fixed_records=keys_from_env(),
        grace=args.redis_grace,
        audit_path=audit_path,
        audit_stream=args.audit_redis_stream,
        max_failures=args.max_failures,
        failure_window=args.failure_window,
    )
    if len(state.keyring) == 0:
        print(
            f"warning: no keys in the shared store yet: every request is refused until you run "
            f"python -m lesson_code keys new --name NAME --redis {display_url(args.redis)}",
            file=sys.stderr,
            flush=True,
        )
    return state


def describe_replica(state: ReplicaState) -> str:
    """One line for serve's banner (printed after the URL line, which scripts read first)."""
    from lesson_code.redis_keys import display_url

    stream = ", audit stream mcp:audit" if state.audit.stream is not None else ""
    return (
        f"Replica {state.name}: keys, throttle{stream} shared through Redis at {display_url(state.redis_url)}; "
        f"{len(state.keyring)} keys now; refuses requests {state.sync.grace:g} s after losing Redis."
    )


# --- audit -------------------------------------------------------------------------------------


def add_audit_command(commands: Any, formatter_class: type[argparse.HelpFormatter]) -> None:
    audit = commands.add_parser(
        "audit",
        help="print the audit log: one replica's file, or the whole cluster's Redis stream",
        description="Print audit entries as JSON lines, oldest first. With --redis, the stream every "
        "`serve --audit-redis-stream` replica writes to, merged in time order.",
        formatter_class=formatter_class,
    )
    source = audit.add_mutually_exclusive_group(required=True)
    source.add_argument("--redis", metavar="URL", help="read the cluster's stream (mcp:audit) from this Redis")
    source.add_argument("--audit-log", metavar="FILE", help="read one server's audit file")
    audit.add_argument("--last", type=int, default=None, metavar="N", help="only the newest N entries (default: all)")
    audit.set_defaults(handler=audit_command)


def audit_command(args: argparse.Namespace) -> int:
    from lesson_code.audit import read_audit_log
    from lesson_code.redis_audit import read_audit_stream
    from lesson_code.redis_keys import display_url

    if args.last is not None and args.last < 1:
        raise KeyFileError("--last must be 1 or more")
    if args.redis:
        entries = read_audit_stream(args.redis, last=args.last)
        where = f"the stream mcp:audit at {display_url(args.redis)}"
    else:
        if not Path(args.audit_log).exists():
            raise KeyFileError(f"no audit log at {args.audit_log}")
        entries = read_audit_log(args.audit_log, last=args.last)
        where = args.audit_log
    for entry in entries:
        print(json.dumps(entry, ensure_ascii=True))
    print(f"{len(entries)} entries from {where}", file=sys.stderr)
    return 0
