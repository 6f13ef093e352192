"""The command line: `python -m lesson_code keys|serve|demo`.

This is the contract demos and outside checks rely on, so every failure is one
clear line on stderr and a non-zero exit status, never a traceback:

    keys new --name NAME [--role shopper|viewer]   print a new key once; store its digest
    keys list | keys revoke --name NAME | keys rotate --name NAME
    serve [--host H] [--port P] [--keys-file F] [--db F] [--no-auth] [--tls]
    demo [--url URL] [--key KEY] [--query TEXT]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from lesson_code.keys import ENV_VAR, KeyFileError, KeyRing, create_key, read_key_file, revoke_key, rotate_key
from lesson_code.roles import DEFAULT_ROLE, ROLES

DEFAULT_KEYS_FILE = os.environ.get("MCP_KEYS_FILE", "mcp-keys.json")
EXIT_USAGE = 2


class CliError(Exception):
    """A failure to report as one line, with the exit status to use."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.status
    except KeyFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:  # run outside the course's environment
        advice = "run `make install` and use .venv/bin/python"
        print(f"error: the package {exc.name!r} is missing: {advice}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


# --- keys ------------------------------------------------------------------------


def _keys_new(args: argparse.Namespace) -> int:
    key, record = create_key(args.keys_file, args.name, args.role)
    print(key)  # on its own line, so `KEY=$(python -m lesson_code keys new --name x)` works
    print(
        f"Created key {record.name!r} ({record.role}, {record.fingerprint}). Only its SHA-256 digest is stored in "
        f"{args.keys_file}; this is the only time the key is shown.",
        file=sys.stderr,
    )
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    records = read_key_file(args.keys_file)
    if not records:
        print(f"No keys in {args.keys_file}. Create one with: python -m lesson_code keys new --name NAME")
        return 0
    print(f"{'NAME':<24} {'ROLE':<8} {'FINGERPRINT':<16} CREATED")
    for r in records:
        print(f"{r.name:<24} {r.role:<8} {r.fingerprint:<16} {r.created}")
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    record = revoke_key(args.keys_file, args.name)
    print(f"Revoked {record.name!r} ({record.fingerprint}). A running server refuses it within about a second.")
    return 0


def _keys_rotate(args: argparse.Namespace) -> int:
    key, new, old = rotate_key(args.keys_file, args.name)
    print(key)
    print(
        f"Issued a new key for {new.name!r} ({new.fingerprint}). The old one stays valid as {old.name!r} "
        f"({old.fingerprint}) until you run: python -m lesson_code keys revoke --name {old.name}",
        file=sys.stderr,
    )
    return 0


# --- serve -----------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from lesson_code.app import create_open_app_for_threat_model, create_secured_app, is_loopback
    from lesson_code.audit import AuditLog
    from lesson_code.background import PortInUseError, bind_socket
    from lesson_code.raw_requests import curl_command
    from lesson_code.throttle import FailedAttemptThrottle

    if args.no_auth:
        try:
            app = create_open_app_for_threat_model(args.db, host=args.host)
        except ValueError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
    else:
        keyring = KeyRing.from_sources(args.keys_file)
        if len(keyring) == 0:
            raise CliError(
                f"no API keys: create one with `python -m lesson_code keys new --name NAME` or set {ENV_VAR}; "
                "use --no-auth only for the open lesson-01 server",
                EXIT_USAGE,
            )
        app = create_secured_app(
            keyring,
            args.db,
            audit=AuditLog(args.audit_log),
            throttle=FailedAttemptThrottle(args.max_failures, args.failure_window),
            host=args.host,
            allowed_hosts=args.allowed_host,
        )

    ssl_options: dict[str, str] = {}
    if args.tls:
        from lesson_code.tls import ensure_dev_certificates

        certs = ensure_dev_certificates(args.tls_dir)
        ssl_options = {"ssl_certfile": str(certs.server_cert), "ssl_keyfile": str(certs.server_key)}
    elif not is_loopback(args.host):
        print(
            f"warning: serving plain HTTP on {args.host}: API keys cross the network in clear text. "
            "Use --tls or put an HTTPS proxy in front.",
            file=sys.stderr,
        )

    try:
        sock = bind_socket(args.host, args.port)
    except PortInUseError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    port = sock.getsockname()[1]
    scheme = "https" if args.tls else "http"
    shown_host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"{scheme}://{shown_host}:{port}/mcp"
    mode = "OPEN: NO AUTHENTICATION (lesson 01 only)" if args.no_auth else "API key required"
    print(f"Shopping assistant MCP server at {url}  [{mode}]", flush=True)
    if args.tls:
        print(f"TLS with the development CA in {args.tls_dir}/dev-ca.pem (clients must trust it)", flush=True)
    if not args.no_auth:
        print("Try: " + curl_command(url), flush=True)
    print("Press Ctrl-C to stop.", flush=True)

    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False, timeout_graceful_shutdown=2,
                            **ssl_options)
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
    print("Server stopped.", flush=True)
    return 0


# --- demo ------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")
    from lesson_code.agent import DEFAULT_QUERY

    query = args.query or DEFAULT_QUERY
    if args.url:
        key = args.key if args.key is not None else os.environ.get("MCP_API_KEY")
        return _run_demo(args.url, key, query, args.ca_file)

    from lesson_code.app import create_secured_app
    from lesson_code.background import BackgroundServer
    from lesson_code.keys import generate_key, mask

    good_key = generate_key()
    key = args.key if args.key is not None else good_key
    with tempfile.TemporaryDirectory(prefix="mcp-demo-") as folder:
        app = create_secured_app(KeyRing.from_keys({"demo": good_key}), Path(folder) / "shop.sqlite3")
        with BackgroundServer(app, name="cli-demo") as server:
            print(f"Started a secured server at {server.mcp_url} with a fresh key ({mask(good_key)})")
            return _run_demo(server.mcp_url, key, query)


def _run_demo(url: str, key: str | None, query: str, ca_file: str | None = None) -> int:
    from lesson_code.agent import AgentEvent, KeyRejectedError, ServerUnreachableError, run_shopping_query

    def show(event: AgentEvent) -> None:
        if event.kind != "answer":  # the answer is printed below, with the model's name
            print("  " + event.line(), flush=True)

    print(f"You: {query}")
    try:
        result = asyncio.run(run_shopping_query(url, key, query, on_event=show, ca_file=ca_file))
    except (KeyRejectedError, ServerUnreachableError) as exc:
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lesson_code", description="The secured shopping-assistant MCP server."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    keys = commands.add_parser("keys", help="create, list, revoke and rotate API keys")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    for name, handler, needs_name, help_text in [
        ("new", _keys_new, True, "create a key: printed once, only its digest is stored"),
        ("list", _keys_list, False, "show names, roles and fingerprints (never keys)"),
        ("revoke", _keys_revoke, True, "remove a key; running servers refuse it within a second"),
        ("rotate", _keys_rotate, True, "issue a new key; the old one stays valid as NAME.previous"),
    ]:
        sub = keys_commands.add_parser(name, help=help_text)
        sub.add_argument("--keys-file", default=DEFAULT_KEYS_FILE, help=f"default: {DEFAULT_KEYS_FILE}")
        if needs_name:
            sub.add_argument("--name", required=True)
        if name == "new":
            sub.add_argument("--role", default=DEFAULT_ROLE, choices=sorted(ROLES))
        sub.set_defaults(handler=handler)

    serve = commands.add_parser("serve", help="serve the shopping assistant over HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--keys-file", default=DEFAULT_KEYS_FILE)
    serve.add_argument("--db", default="shopping.sqlite3")
    serve.add_argument("--audit-log", default="audit.jsonl")
    serve.add_argument("--no-auth", action="store_true", help="serve WITHOUT authentication (loopback only)")
    serve.add_argument("--tls", action="store_true", help="serve HTTPS with a local development CA")
    serve.add_argument("--tls-dir", default=".course-data/tls")
    serve.add_argument("--allowed-host", action="append", default=[], help="extra Host header value, e.g. shop:443")
    serve.add_argument("--max-failures", type=int, default=20, help="failed attempts per address per window")
    serve.add_argument("--failure-window", type=float, default=60.0, help="seconds")
    serve.set_defaults(handler=_serve)

    demo = commands.add_parser("demo", help="run the shopping agent against a secured server")
    demo.add_argument("--url", help="an MCP endpoint; without it, a fresh secured server is started")
    demo.add_argument("--key", help="the API key to send (default: $MCP_API_KEY, or the fresh server's key)")
    demo.add_argument("--query")
    demo.add_argument("--ca-file", help="trust this CA for https URLs, e.g. .course-data/tls/dev-ca.pem")
    demo.set_defaults(handler=_demo)

    cluster = commands.add_parser("cluster", help="Redis, N replicas and nginx in front, on this machine")
    cluster.set_defaults(handler=_cluster)
    _cluster_arguments(cluster)
    return parser
