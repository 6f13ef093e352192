"""Running the catalogue against an ASGI app, a factory, a URL or a running server."""

from __future__ import annotations

import inspect
import logging
import ssl
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeGuard, cast
from urllib.parse import urlsplit

import anyio
from starlette.types import ASGIApp

from lesson_code.attacks.catalogue import CATALOGUE, Attack, AttackContext
from lesson_code.attacks.constants import NOISY_LOGGERS
from lesson_code.attacks.scorecard import AttackResult, Scorecard, describe_change, judge
from lesson_code.attacks.sending import send_attack
from lesson_code.background import BackgroundServer, ServerStartError
from lesson_code.store import ShoppingStore

# --- running the catalogue -----------------------------------------------------------------------------------

Target = ASGIApp | str | BackgroundServer | Callable[[], ASGIApp]


def _is_factory(target: object) -> TypeGuard[Callable[[], ASGIApp]]:
    """A zero-argument callable that builds an app (an ASGI app itself takes scope, receive, send)."""
    if not callable(target) or isinstance(target, BackgroundServer | str):
        return False
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return False
    return not [
        p for p in parameters if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


async def run_attacks(
    target: Target,
    *,
    valid_key: str,
    store: ShoppingStore | None = None,
    second_key: str | None = None,
    viewer_key: str | None = None,
    revoked_key: str | None = None,
    attacks: Iterable[Attack] | None = None,
    accept_throttled: bool = True,
    timeout: float = 5.0,
    ssl_context: ssl.SSLContext | None = None,
) -> Scorecard:
    """Run the attack catalogue (or `attacks`) against `target` and return a `Scorecard`.

    `target` is an ASGI app (served on loopback with uvicorn for the run, lifespan
    included), a zero-argument function that builds one, the URL of a running server,
    or a running `BackgroundServer`. If the app (or the factory's result) is a
    `ShoppingApp`, its store is used when `store` is not given. `valid_key` must be a
    key the server accepts; the optional keys unlock the attacks that need them (a
    second shopper key, a viewer key, a key that has been revoked).

    `store` is snapshotted before and after every attack, so an attack that reaches a
    tool is caught even if its status looks harmless. A 429 answer counts as stopped
    unless `accept_throttled` is False; turn the throttle off to test the checks behind it.
    """
    server: BackgroundServer | None = None
    if isinstance(target, str):
        url = target
    elif isinstance(target, BackgroundServer):
        url = target.url
    else:
        # Not a zero-argument factory, so (by the Target union) an ASGI app.
        app = target() if _is_factory(target) else cast(ASGIApp, target)
        found = getattr(app, "store", None)
        if store is None and isinstance(found, ShoppingStore):
            store = found
        # log_level="error": the HTTP server's "Invalid HTTP request" warnings are expected here, not news.
        server = BackgroundServer(app, name=f"attacks-{uuid.uuid4().hex[:8]}", log_level="error")
        try:
            await anyio.to_thread.run_sync(server.start)
        except ServerStartError as exc:
            raise ServerStartError(
                f"{exc}. If your middleware wraps the MCP app, pass non-HTTP scopes of type lifespan straight through: "
                "`if scope['type'] == 'lifespan': return await self.app(scope, receive, send)`. An app can start "
                "only once: build a fresh one, or pass the URL of the server already running it."
            ) from None
        url = server.url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s) URL such as http://127.0.0.1:8000/mcp, not {url!r}")
    context = AttackContext(
        valid_key=valid_key,
        host=parts.netloc,
        second_key=second_key,
        viewer_key=viewer_key,
        revoked_key=revoked_key,
    )
    try:
        with _quiet(NOISY_LOGGERS):
            results = [
                await _run_one(attack, url, context, store, accept_throttled, timeout, ssl_context)
                for attack in (CATALOGUE if attacks is None else tuple(attacks))
            ]
    finally:
        if server is not None:
            await anyio.to_thread.run_sync(server.stop)
    return Scorecard(tuple(results), target=url)


@contextmanager
def _quiet(names: Iterable[str]) -> Iterator[None]:
    """Raise these loggers to ERROR for the run: every refused Origin/Host is a warning, and we send them on purpose."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


async def _run_one(
    attack: Attack,
    url: str,
    context: AttackContext,
    store: ShoppingStore | None,
    accept_throttled: bool,
    timeout: float,
    ssl_context: ssl.SSLContext | None,
) -> AttackResult:
    missing = context.missing(attack)
    if missing:
        return AttackResult(attack, "skipped", f"skipped: needs {' and '.join(missing)}", missing=tuple(missing))
    started = time.perf_counter()
    before = await anyio.to_thread.run_sync(store.snapshot) if store is not None else None
    response = await send_attack(attack, url, context, timeout=timeout, ssl_context=ssl_context)
    change = None
    if store is not None and before is not None:
        change = describe_change(before, await anyio.to_thread.run_sync(store.snapshot))
    outcome, reason = judge(
        attack,
        response,
        change,
        attack.presented_secrets(context),
        accept_throttled=accept_throttled,
        store_checked=store is not None,
    )
    return AttackResult(
        attack, outcome, reason, response.status, change, response, round(time.perf_counter() - started, 4)
    )
