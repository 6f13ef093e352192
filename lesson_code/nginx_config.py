"""The nginx configuration for the local cluster's front, as text.

Why a module of its own: the configuration is where the front's security and
availability decisions live, so it is written out in full, one commented
directive at a time, and tests and lesson 07 can read it. `lesson_code.cluster`
writes it to a temporary prefix and runs Debian's nginx unprivileged with it.

The decisions, and why:

* **Passive health checks** (`max_fails`, `fail_timeout`): open-source nginx
  has no active probes; a replica that fails a request is taken out of the
  rotation for `fail_timeout` seconds, then tried again.
* **Retry only what never reached a replica** (`proxy_next_upstream error
  timeout`): a refused or failed connection is retried on the next replica.
  nginx never re-sends a non-idempotent request (every MCP request is a POST)
  once it was sent to a replica, because that replica may already have acted
  on it: retrying `place_order` could place the order twice. So a killed
  replica costs at most the requests it was holding at that moment.
* **Idle connections end at the front** (`client_header_timeout`,
  `client_body_timeout`, `keepalive_timeout`, `send_timeout`): uvicorn has no
  timeout for a connection that never sends its request; nginx does, so a
  slow-loris client ties up an nginx connection for seconds, never a replica.
* **Streams pass straight through** (`proxy_buffering off`, HTTP/1.1 to the
  replicas): MCP answers with Server-Sent Events; buffered, they would arrive
  only when the response ends. The optional GET stream of a 2025-11-25 client
  is accepted by the SDK's stateless mode (200) but never carries anything;
  `proxy_read_timeout` ends it when idle, and the client opens it again.
* **`X-Forwarded-For $remote_addr`**: the replicas (started with
  `--trusted-proxy 127.0.0.1`) take the client's address from this header for
  the failed-attempt throttle. The front *overwrites* it with the address it
  saw; appending (`$proxy_add_x_forwarded_for`) would keep whatever a client
  wrote there, and a scanner could then pick a fresh "address" per guess.
* **Bodies over 1 MiB are refused at the front** (413), as the replicas would.
* **The front's own errors are JSON-RPC**, like the replicas' refusals, so an
  MCP client shows a message instead of an HTML page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

#: The replicas' own body limit (`lesson_code.app.MAX_REQUEST_BODY_BYTES`; a test keeps them equal). Not imported
#: from there, so that building the command line's parser stays free of the MCP SDK's import time.
MAX_REQUEST_BODY_BYTES: Final = 1024 * 1024
#: The JSON-RPC code of the front's own "no replica answered" error (implementation-defined range).
NO_REPLICA_AVAILABLE: Final = -32019
#: The JSON-RPC code of the front's "request body too large".
FRONT_REQUEST_TOO_LARGE: Final = -32018


@dataclass(frozen=True)
class FrontSettings:
    """The tunable parts of the front; the defaults suit a local cluster and a lesson."""

    max_fails: int = 1  # failures that take a replica out of the rotation...
    fail_timeout_s: int = 5  # ...for this long, after which nginx tries it again
    connect_timeout_s: int = 2  # a replica on loopback accepts at once or is dead
    read_timeout_s: int = 300  # silence allowed on a response (an SSE stream may idle)
    next_upstream_tries: int = 3  # at most this many replicas per request
    client_header_timeout_s: int = 10  # a client has this long to send its headers...
    client_body_timeout_s: int = 10  # ...and this long between two reads of its body
    keepalive_timeout_s: int = 30  # an idle keep-alive connection is closed after this
    send_timeout_s: int = 30  # a client that stops reading a response is dropped
    upstream_keepalive: int = 16  # idle connections kept open to the replicas, per worker
    worker_connections: int = 1024
    access_log: bool = False  # PREFIX/access.log: status, replica and protocol version per request


def _json_rpc_error(code: int, message: str) -> str:
    # A fixed string: no client input is ever interpolated into it.
    return f'{{"jsonrpc":"2.0","error":{{"code":{code},"message":"{message}"}},"id":null}}'


def render_nginx_config(
    listen_port: int,
    replicas: Sequence[tuple[str, int]],
    prefix: Path,
    *,
    listen_host: str = "127.0.0.1",
    settings: FrontSettings = FrontSettings(),
    run_as_root: bool = False,
) -> str:
    """nginx.conf for a front on `listen_host:listen_port` over `replicas` ((host, port) pairs).

    `prefix` is the folder nginx runs from (`nginx -p PREFIX`): its pid file,
    error log and temporary files all live there, so no root and no system
    paths are needed. `run_as_root` keeps the workers as root (nginx would
    otherwise switch them to `nobody`, who cannot enter a private temp folder).
    """
    if not replicas:
        raise ValueError("a front needs at least one replica")
    s = settings
    servers = "\n".join(
        f"        server {host}:{port} max_fails={s.max_fails} fail_timeout={s.fail_timeout_s}s;"
        for host, port in replicas
    )
    body_limit_kib = MAX_REQUEST_BODY_BYTES // 1024
    no_replica = _json_rpc_error(NO_REPLICA_AVAILABLE, "Service unavailable: no replica answered. Try again shortly.")
    too_large = _json_rpc_error(FRONT_REQUEST_TOO_LARGE, f"Request body too large (limit {body_limit_kib} KiB).")
    # Which replica answered, and which protocol version the client spoke; never a header that holds a key.
    access_log = (
        'log_format mcp \'$remote_addr [$time_local] "$request" $status $body_bytes_sent '
        'upstream=$upstream_addr protocol="$http_mcp_protocol_version"\';\n'
        f"    access_log {prefix}/access.log mcp;"
        if s.access_log
        else "access_log off;"
    )
    user_line = (
        "user root;  # the master runs as root here (a container): keep the workers able to use the temp prefix\n"
        if run_as_root
        else ""
    )
    return f"""# Generated by lesson_code.nginx_config for `python -m lesson_code cluster`; see that module's docstring.
{user_line}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;

events {{
    worker_connections {s.worker_connections};
}}

http {{
    {access_log}
    server_tokens off;
    client_body_temp_path {prefix}/temp/client_body;
    proxy_temp_path {prefix}/temp/proxy;
    fastcgi_temp_path {prefix}/temp/fastcgi;
    uwsgi_temp_path {prefix}/temp/uwsgi;
    scgi_temp_path {prefix}/temp/scgi;

    # Idle and slow clients end here, never at a replica.
    client_header_timeout {s.client_header_timeout_s}s;
    client_body_timeout {s.client_body_timeout_s}s;
    keepalive_timeout {s.keepalive_timeout_s}s;
    send_timeout {s.send_timeout_s}s;
    client_max_body_size {body_limit_kib}k;
    large_client_header_buffers 4 16k;  # bigger header lines reach the replica, which answers 431

    upstream mcp_replicas {{
{servers}
        keepalive {s.upstream_keepalive};
    }}

    server {{
        listen {listen_host}:{listen_port};

        location / {{
            proxy_pass http://mcp_replicas;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            # Overwrite, never append: a client's own X-Forwarded-For is dropped here.
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Real-IP "";
            proxy_set_header Forwarded "";

            # Server-Sent Events must flow as they are written.
            proxy_buffering off;
            proxy_cache off;
            proxy_request_buffering on;  # a slow upload is read by nginx before a replica sees it

            proxy_connect_timeout {s.connect_timeout_s}s;
            proxy_read_timeout {s.read_timeout_s}s;
            proxy_send_timeout {s.send_timeout_s}s;

            # Retry on the next replica only when the request never reached one (see the docstring).
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries {s.next_upstream_tries};
            proxy_next_upstream_timeout {s.connect_timeout_s * s.next_upstream_tries}s;

            proxy_intercept_errors off;  # the replicas' own JSON-RPC errors pass through untouched
            error_page 502 504 = @no_replica;
            error_page 413 = @too_large;
        }}

        location @no_replica {{
            default_type application/json;
            add_header Cache-Control no-store always;
            add_header Retry-After 1 always;
            return 503 '{no_replica}';
        }}

        location @too_large {{
            default_type application/json;
            add_header Cache-Control no-store always;
            return 413 '{too_large}';
        }}
    }}
}}
"""
