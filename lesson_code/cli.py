"""The command line: `python -m lesson_code keys|serve|demo`.

This is the contract demos and outside checks rely on, so every failure is one
clear line on stderr and a non-zero exit status, never a traceback:

    keys new --name NAME [--role shopper|viewer]   print a new key once; store its digest
    keys list | keys revoke --name NAME | keys rotate --name NAME | keys generate
    serve [--host H] [--port P] [--keys-file F] [--audit-log F] [--trusted-proxy ADDR] [--no-auth] [--tls] ...
    demo [--url URL] [--key KEY] [--query TEXT]

`python -m lesson_code COMMAND --help` explains every option and its default.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from lesson_code import redis_cli
from lesson_code.cli_errors import missing_package_line
from lesson_code.keys import (
    ENV_VAR,
    NAME_RULE,
    KeyFileError,
    KeyRing,
    create_key,
    generate_key,
    read_key_file,
    revoke_key,
    rotate_key,
)
from lesson_code.roles import DEFAULT_ROLE, ROLES
from lesson_code.uvicorn_config import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS

DEFAULT_KEYS_FILE = os.environ.get("MCP_KEYS_FILE", "mcp-keys.json")
STATE_FOLDER_NAME = "mcp-shopping-course"
EXIT_USAGE = 2
T = TypeVar("T")


def state_dir() -> Path:
    """Where the server keeps its own records: outside any repository, per user.

    `$XDG_STATE_HOME/mcp-shopping-course` (default `~/.local/state/...`) on
    Linux and macOS, `%LOCALAPPDATA%\\mcp-shopping-course` on Windows.
    """
    if os.name == "nt":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
    else:
        xdg = os.environ.get("XDG_STATE_HOME", "")
        base = xdg if os.path.isabs(xdg) else str(Path.home() / ".local" / "state")
    return Path(base) / STATE_FOLDER_NAME


DEFAULT_AUDIT_LOG = state_dir() / "audit.jsonl"


class CliError(Exception):
    """A failure to report as one line, with the exit status to use."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.status
    except KeyFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:  # run outside the course's environment, or a bug
        line = missing_package_line(exc)
        if line is None:
            raise
        print(line, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


# --- keys ------------------------------------------------------------------------


def _keys_new(args: argparse.Namespace) -> int:
    key, record = _on_keys_file(args, create_key, args.name, args.role)
    print(key)  # on its own line, so `KEY=$(python -m lesson_code keys new --name x)` works
    print(
        f"Created key {record.name!r} ({record.role}, {record.fingerprint}). Only its SHA-256 digest is stored in "
        f"{args.keys_file}; this is the only time the key is shown.",
        file=sys.stderr,
    )
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    try:
        records = _on_keys_file(args, read_key_file)
    except KeyFileError as exc:
        raise CliError(
            f"{exc}. A running server keeps the last valid set of keys, so changes in this edit (revocations "
            "included) do not take effect until the file is valid again: fix it now."
        ) from None
    if not records:
        print(f"No keys in {args.keys_file}. Create one with: python -m lesson_code keys new --name NAME")
        return 0
    print(f"{'NAME':<24} {'ROLE':<8} {'FINGERPRINT':<16} CREATED")
    for r in records:
        print(f"{r.name:<24} {r.role:<8} {r.fingerprint:<16} {r.created}")
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    record = _on_keys_file(args, revoke_key, args.name)
    print(f"Revoked {record.name!r} ({record.fingerprint}). A running server refuses it within about a second.")
    return 0


def _keys_rotate(args: argparse.Namespace) -> int:
    key, new, old = _on_keys_file(args, rotate_key, args.name)
    print(key)
    print(
        f"Issued a new key for {new.name!r} ({new.fingerprint}). The old one stays valid as {old.name!r} "
        f"({old.fingerprint}) until you run: python -m lesson_code keys revoke --name {old.name}",
        file=sys.stderr,
    )
    return 0


def _keys_generate(args: argparse.Namespace) -> int:
    print(generate_key())
    print(f"A new key, stored nowhere: put it in {ENV_VAR} (comma-separated) for `serve`.", file=sys.stderr)
    return 0


def _on_keys_file(args: argparse.Namespace, action: Callable[..., T], *params: object) -> T:
    """Run an action on the keys file; an unreadable or unwritable file is one line, not a traceback."""
    if getattr(args, "redis", None):  # the same action on the cluster's shared store (lesson_code.redis_cli)
        return redis_cli.on_store(args, action, *params)
    try:
        return action(args.keys_file, *params)
    except OSError as exc:
        raise CliError(f"cannot use the keys file {args.keys_file}: {exc.strerror or exc}") from None


# --- serve -----------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from lesson_code.app import create_open_app_for_threat_model, create_secured_app
    from lesson_code.audit import AuditLog
    from lesson_code.background import NotLoopbackError, PortInUseError, bind_socket
    from lesson_code.net import is_loopback
    from lesson_code.raw_requests import curl_command
    from lesson_code.throttle import FailedAttemptThrottle
    from lesson_code.uvicorn_config import ConnectionLimits, check_trusted_proxies, uvicorn_config

    host = args.host.strip().removeprefix("[").removesuffix("]")
    try:
        limits = ConnectionLimits(args.idle_timeout, args.max_connections)
        max_connections = limits.resolve()
        trusted = check_trusted_proxies(args.trusted_proxy)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None

    audit_path = Path(args.audit_log).expanduser()
    replica = None
    if args.no_auth:
        try:
            app = create_open_app_for_threat_model(args.db, host=host)
        except ValueError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
    elif args.redis:  # one replica of a cluster: keys, throttle and audit shared through Redis
        replica = redis_cli.start_replica(args, audit_path)
        app = replica.wrap(
            create_secured_app(
                replica.keyring,
                args.db,
                audit=replica.audit,
                throttle=replica.throttle,
                host=host,
                allowed_hosts=args.allowed_host,
                stateless=args.stateless,
            )
        )
    else:
        keyring = KeyRing.from_sources(args.keys_file)
        if len(keyring) == 0:
            raise CliError(
                f"no API keys: create one with `python -m lesson_code keys new --name NAME` or set {ENV_VAR}; "
                "use --no-auth only for the open lesson-01 server",
                EXIT_USAGE,
            )
        try:
            audit_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise CliError(f"cannot create the folder for the audit log {audit_path}: {exc.strerror}") from None
        app = create_secured_app(
            keyring,
            args.db,
            audit=AuditLog(audit_path),
            throttle=FailedAttemptThrottle(args.max_failures, args.failure_window),
            host=host,
            allowed_hosts=args.allowed_host,
            stateless=args.stateless,
        )

    ssl_options: dict[str, str] = {}
    if args.tls:
        from lesson_code.tls import ensure_dev_certificates

        certs = ensure_dev_certificates(args.tls_dir)
        ssl_options = {"ssl_certfile": str(certs.server_cert), "ssl_keyfile": str(certs.server_key)}
    elif not is_loopback(host):
        print(
            f"warning: serving plain HTTP on {host}: API keys cross the network in clear text. "
            "Use --tls or put an HTTPS proxy in front.",
            file=sys.stderr,
        )

    try:
        sock = bind_socket(host, args.port, require_loopback=args.no_auth)
    except (PortInUseError, NotLoopbackError) as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except OSError as exc:
        raise CliError(f"cannot listen on {host} port {args.port}: {exc.strerror or exc}", EXIT_USAGE) from None
    port = sock.getsockname()[1]
    scheme = "https" if args.tls else "http"
    shown_host = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{shown_host}:{port}/mcp"
    mode = "OPEN: NO AUTHENTICATION (lesson 01 only)" if args.no_auth else "API key required"
    print(f"Shopping assistant MCP server at {url}  [{mode}]", flush=True)
    if args.tls:
        print(f"TLS with the development CA in {args.tls_dir}/dev-ca.pem (clients must trust it)", flush=True)
    if not args.no_auth:
        print(f"Audit log: {audit_path}", flush=True)
        if replica is not None:
            print(redis_cli.describe_replica(replica), flush=True)
        print("Try: " + curl_command(url), flush=True)
    proxies = ", ".join(trusted) if trusted else "none (clients are known by their socket address)"
    print(
        f"Trusted proxies: {proxies}. Connections: at most {max_connections}, "
        f"closed after {args.idle_timeout:g} s without a request.",
        flush=True,
    )
    print("Press Ctrl-C to stop.", flush=True)

    config = uvicorn_config(
        app,
        trusted_proxies=trusted,
        limits=ConnectionLimits(args.idle_timeout, max_connections),
        log_level="warning",
        lifespan="on",
        access_log=False,
        timeout_graceful_shutdown=2,
        **ssl_options,
    )
    server = uvicorn.Server(config)
    # uvicorn catches SIGINT/SIGTERM, shuts down gracefully, then re-raises the signal through the
    # handlers it found. Installing no-op handlers first makes that final re-raise a no-op, so a
    # stop by Ctrl-C or SIGTERM ends with the message below and exit status 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        if replica is not None:
            replica.stop()
    print("Server stopped.", flush=True)
    return 0


# --- demo ------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from lesson_code.perf_startup import long_lived_imports

    os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")
    with long_lived_imports():  # the SDKs' ~165,000 objects, out of the garbage collector's way (0.6 s of CPU)
        from lesson_code.agent import DEFAULT_QUERY

    query = args.query or DEFAULT_QUERY
    if args.url:
        key = args.key if args.key is not None else os.environ.get("MCP_API_KEY")
        return _run_demo(args.url, key, query, args.ca_file)

    with long_lived_imports():
        from lesson_code.app import create_secured_app
        from lesson_code.background import BackgroundServer
        from lesson_code.keys import mask

    good_key = generate_key()
    key = args.key if args.key is not None else good_key
    with tempfile.TemporaryDirectory(prefix="mcp-demo-") as folder:
        app = create_secured_app(KeyRing.from_keys({"demo": good_key}), Path(folder) / "shop.sqlite3")
        with BackgroundServer(app, name="cli-demo") as server:
            print(f"Started a secured server at {server.mcp_url} with a fresh key ({mask(good_key)})")
            return _run_demo(server.mcp_url, key, query)


def _run_demo(url: str, key: str | None, query: str, ca_file: str | None = None) -> int:
    from lesson_code.agent import AgentEvent, AgentRunError, run_shopping_query

    def show(event: AgentEvent) -> None:
        if event.kind != "answer":  # the answer is printed below, with the model's name
            print("  " + event.line(), flush=True)

    print(f"You: {query}")
    try:
        result = asyncio.run(run_shopping_query(url, key, query, on_event=show, ca_file=ca_file))
    except AgentRunError as exc:
        raise CliError(str(exc)) from None
    print(f"Model: {result.model_description}")
    print(f"Assistant: {result.answer}")
    return 0


# --- cluster ---------------------------------------------------------------------


def _cluster(args: argparse.Namespace) -> int:
    from lesson_code.cluster import run

    return run(args)


def _cluster_arguments(parser: argparse.ArgumentParser) -> None:
    from lesson_code.cluster import add_arguments  # standard library only: parsing stays fast

    add_arguments(parser)


# --- wiring ----------------------------------------------------------------------


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: X)" to every option that has a default worth showing (not None, False or [])."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.required or action.default in (None, False, [], argparse.SUPPRESS) or "%(default)" in text:
            return text
        return text + " (default: %(default)s)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lesson_code",
        description="The secured shopping-assistant MCP server.",
        formatter_class=_HelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    keys = commands.add_parser(
        "keys",
        help="create, list, revoke and rotate API keys",
        formatter_class=_HelpFormatter,
        description="Manage the keys file. Commands that change it hold a lock file beside it (<file>.lock), so two "
        "commands at the same moment never lose an update.",
    )
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    keys_file_help = "the keys file (JSON with digests only; $MCP_KEYS_FILE sets the default)"
    for name, handler, needs_name, help_text in [
        ("new", _keys_new, True, "create a key: printed once, only its digest is stored"),
        ("list", _keys_list, False, "show names, roles and fingerprints (never keys); says if the file is invalid"),
        ("revoke", _keys_revoke, True, "remove a key; running servers refuse it within a second"),
        ("rotate", _keys_rotate, True, "issue a new key; the old one stays valid as NAME.previous"),
    ]:
        sub = keys_commands.add_parser(name, help=help_text, description=help_text, formatter_class=_HelpFormatter)
        sub.add_argument("--keys-file", default=DEFAULT_KEYS_FILE, help=keys_file_help)
        redis_cli.add_keys_option(sub)
        if needs_name:
            sub.add_argument("--name", required=True, help=f"the key's name: {NAME_RULE[len('a key name is ') :]}")
        if name == "new":
            sub.add_argument(
                "--role", default=DEFAULT_ROLE, choices=sorted(ROLES), help="what the key may do: viewer only reads"
            )
        sub.set_defaults(handler=handler)
    generate = keys_commands.add_parser(
        "generate",
        help=f"print a new random key and store nothing (for {ENV_VAR})",
        description=f"Print a new random key and store nothing, for {ENV_VAR}.",
        formatter_class=_HelpFormatter,
    )
    generate.set_defaults(handler=_keys_generate)

    serve = commands.add_parser(
        "serve",
        help="serve the shopping assistant over HTTP",
        formatter_class=_HelpFormatter,
        description=f"Serve the shopping assistant. Keys come from the keys file and/or {ENV_VAR} "
        "(comma-separated; each at least 32 random characters after sk-mcp-).",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on; IPv6 with or without brackets")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on; 0 picks a free one")
    serve.add_argument("--keys-file", default=DEFAULT_KEYS_FILE, help=keys_file_help)
    serve.add_argument("--db", default="shopping.sqlite3", help="the SQLite file with the shopping data")
    serve.add_argument(
        "--audit-log",
        default=str(DEFAULT_AUDIT_LOG),
        help="where to append the audit log (JSON lines); the default is a per-user state folder outside any "
        "repository ($XDG_STATE_HOME or ~/.local/state; %%LOCALAPPDATA%% on Windows)",
    )
    serve.add_argument(
        "--no-auth",
        action="store_true",
        help="serve WITHOUT authentication, for lesson 01 only; refused unless the bound address is loopback "
        "(default: off, every request needs a key)",
    )
    serve.add_argument(
        "--tls", action="store_true", help="serve HTTPS with a local development CA (default: off, plain HTTP)"
    )
    serve.add_argument("--tls-dir", default=".course-data/tls", help="folder for the development CA and certificate")
    serve.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="extra Host header value to accept besides loopback, e.g. shop.example.com:443 (repeatable; default: "
        "loopback names only)",
    )
    serve.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="ADDR",
        help="believe X-Forwarded-For only from this proxy address or network (repeatable; default: none, "
        "every client is known by its socket address)",
    )
    serve.add_argument("--max-failures", type=int, default=20, help="failed key attempts per address per window")
    serve.add_argument("--failure-window", type=float, default=60.0, help="the throttle's window, in seconds")
    serve.add_argument(
        "--idle-timeout",
        type=float,
        default=DEFAULT_IDLE_TIMEOUT,
        metavar="SECONDS",
        help="close a connection that has not sent a complete request head within this time",
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        default=None,
        metavar="N",
        help=f"most connections open at once; at the cap the oldest connection waiting for a request is closed "
        f"(default: {DEFAULT_MAX_CONNECTIONS}, lower when `ulimit -n` is low)",
    )
    redis_cli.add_serve_options(serve)
    serve.set_defaults(handler=_serve)

    demo = commands.add_parser(
        "demo",
        help="run the shopping agent against a secured server",
        formatter_class=_HelpFormatter,
        description="Run the shopping agent (offline model unless OPENAI_API_KEY is set) against a server.",
    )
    demo.add_argument("--url", help="an MCP endpoint (default: start a fresh secured server with a fresh key)")
    demo.add_argument("--key", help="the API key to send (default: $MCP_API_KEY, or the fresh server's key)")
    demo.add_argument("--query", help="what to ask the agent (default: a small shopping errand)")
    demo.add_argument(
        "--ca-file",
        help="trust this CA for https URLs, e.g. .course-data/tls/dev-ca.pem (default: the system's trust store)",
    )
    demo.set_defaults(handler=_demo)

    redis_cli.add_audit_command(commands, _HelpFormatter)

    cluster = commands.add_parser("cluster", help="Redis, N replicas and nginx in front, on this machine")
    cluster.set_defaults(handler=_cluster)
    _cluster_arguments(cluster)
    return parser
