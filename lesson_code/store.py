"""The shopping list and its orders, kept in one SQLite file.

Why SQLite and why this shape: the lesson's server is reached by many clients
at once, and a security lesson should not lose or half-apply a change. Every
public method opens its own connection and runs in one transaction, so:

* writes take the write lock up front (`BEGIN IMMEDIATE`) and wait for it
  (busy timeout), so two concurrent "add 1 milk" calls always end at +2;
* the database runs in WAL mode with `synchronous=FULL`, so a change that was
  acknowledged (committed) survives the process being killed;
* reads run in one transaction too, so an order is never seen without its lines;
* a database file the store creates is readable by its owner only (0600), and
  SQLite gives its -wal and -shm files the same mode: other local users cannot
  read what learners put on their lists.

All input checks live here, not in the server: whatever reaches the store
(a tool call, a notebook, a test) gets the same rules and the same friendly
`ShoppingError` messages, which the server hands to the model as-is.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

# pydantic (which MCPServer uses to publish tool output schemas) needs this TypedDict on Python < 3.12.
from typing_extensions import TypedDict

MAX_NAME_LENGTH = 100
MAX_QUANTITY = 999
BUSY_TIMEOUT_SECONDS = 10.0
FILE_MODE = 0o600  # owner read/write only; SQLite copies it to the -wal and -shm files

# Control characters, lone surrogates and Unicode line/paragraph separators
# have no business in an item name (they break logs, terminals and prompts).
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS items (
        key      TEXT PRIMARY KEY,  -- normalised name: matching is case-insensitive
        name     TEXT NOT NULL,     -- display name, as first added
        quantity INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 999)
    )""",
    """CREATE TABLE IF NOT EXISTS orders (
        seq       INTEGER PRIMARY KEY,  -- placement order: oldest first
        order_id  TEXT NOT NULL UNIQUE,
        placed_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS order_lines (
        order_seq INTEGER NOT NULL REFERENCES orders (seq),
        key       TEXT NOT NULL,
        name      TEXT NOT NULL,
        quantity  INTEGER NOT NULL,
        PRIMARY KEY (order_seq, key)
    )""",
)


class ShoppingError(ValueError):
    """A request the store refuses; its message is shown to the caller/model as-is."""


class Item(TypedDict):
    """One line of the shopping list (or of an order)."""

    name: str
    quantity: int


class Order(TypedDict):
    """A placed order: what was on the list when it was placed."""

    order_id: str
    placed_at: str
    items: list[Item]


class Snapshot(TypedDict):
    """Everything the store holds; tests compare two of these to prove nothing changed."""

    items: list[Item]
    orders: list[Order]


def _clean_name(name: object) -> tuple[str, str]:
    """Validate an item name; return (display name, lookup key)."""
    if not isinstance(name, str):
        raise ShoppingError("the item name must be text")
    name = name.strip()
    if any(unicodedata.category(char) in _FORBIDDEN_CATEGORIES for char in name):
        raise ShoppingError("the item name must not contain control characters or line breaks")
    name = " ".join(name.split())  # tabs and runs of spaces become one space
    if not name:
        raise ShoppingError("the item name must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise ShoppingError(f"the item name is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}")
    return name, unicodedata.normalize("NFKC", name).casefold()


def _check_quantity(quantity: object) -> int:
    """Accept only a real int (not a bool, not a float) from 1 to MAX_QUANTITY."""
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise ShoppingError(f"the quantity must be a whole number from 1 to {MAX_QUANTITY}, not {quantity!r}")
    if not 1 <= quantity <= MAX_QUANTITY:
        raise ShoppingError(f"the quantity must be from 1 to {MAX_QUANTITY}, not {quantity}")
    return quantity


def _create_private(path: Path) -> None:
    """Create `path` empty with FILE_MODE (an empty file is an empty SQLite database); leave an existing one alone."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ShoppingStore:
    """A shopping list with orders, safe to share between threads and processes."""

    def __init__(self, path: str | Path) -> None:
        if str(path) in ("", ":memory:"):
            # Every call opens its own connection, so an in-memory database would vanish between calls.
            raise ValueError("ShoppingStore needs a file path (each call opens its own connection)")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _create_private(self.path)
        self._closed = False
        # WAL is a property of the file, so setting it once is enough; it cannot change inside a transaction.
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
        finally:
            db.close()
        with self._transaction(write=True) as db:
            for statement in _SCHEMA:
                db.execute(statement)

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        """One connection, one transaction: committed on success, rolled back on any error."""
        if self._closed:
            raise RuntimeError("this ShoppingStore is closed")
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=FULL")  # per connection: fsync on every commit
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield db
            except BaseException:
                db.rollback()
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    def add_item(self, name: str, quantity: int = 1) -> Item:
        """Add `quantity` of an item; returns the item with its new total."""
        display, key = _clean_name(name)
        quantity = _check_quantity(quantity)
        with self._transaction(write=True) as db:
            row = db.execute("SELECT name, quantity FROM items WHERE key = ?", (key,)).fetchone()
            if row is None:
                db.execute("INSERT INTO items (key, name, quantity) VALUES (?, ?, ?)", (key, display, quantity))
                return {"name": display, "quantity": quantity}
            display, current = row
            total = current + quantity
            if total > MAX_QUANTITY:
                raise ShoppingError(
                    f"cannot add {quantity} {display}: the list already has {current} "
                    f"and one item can have at most {MAX_QUANTITY}"
                )
            db.execute("UPDATE items SET quantity = ? WHERE key = ?", (total, key))
            return {"name": display, "quantity": total}

    def remove_item(self, name: str, quantity: int | None = None) -> Item:
        """Remove some of an item, or all of it when `quantity` is None; returns what is left (0 if gone)."""
        display, key = _clean_name(name)
        if quantity is not None:
            quantity = _check_quantity(quantity)
        with self._transaction(write=True) as db:
            row = db.execute("SELECT name, quantity FROM items WHERE key = ?", (key,)).fetchone()
            if row is None:
                raise ShoppingError(f"{display!r} is not on the shopping list")
            display, current = row
            if quantity is not None and quantity > current:
                raise ShoppingError(f"cannot remove {quantity} {display}: the list only has {current}")
            remaining = 0 if quantity is None else current - quantity
            if remaining == 0:
                db.execute("DELETE FROM items WHERE key = ?", (key,))
            else:
                db.execute("UPDATE items SET quantity = ? WHERE key = ?", (remaining, key))
            return {"name": display, "quantity": remaining}

    def list_items(self) -> list[Item]:
        """The shopping list, sorted by name."""
        with self._transaction(write=False) as db:
            return self._items(db)

    def place_order(self) -> Order:
        """Turn the whole list into an order and empty the list."""
        with self._transaction(write=True) as db:
            lines = db.execute("SELECT key, name, quantity FROM items ORDER BY key").fetchall()
            if not lines:
                raise ShoppingError("the shopping list is empty: add items before placing an order")
            order_id, placed_at = f"ord-{secrets.token_hex(6)}", _utc_now()
            seq = db.execute("INSERT INTO orders (order_id, placed_at) VALUES (?, ?)", (order_id, placed_at)).lastrowid
            db.executemany(
                "INSERT INTO order_lines (order_seq, key, name, quantity) VALUES (?, ?, ?, ?)",
                [(seq, key, name, quantity) for key, name, quantity in lines],
            )
            db.execute("DELETE FROM items")
            items: list[Item] = [{"name": name, "quantity": quantity} for _key, name, quantity in lines]
            return {"order_id": order_id, "placed_at": placed_at, "items": items}

    def list_orders(self) -> list[Order]:
        """Every order placed so far, oldest first."""
        with self._transaction(write=False) as db:
            return self._orders(db)

    def snapshot(self) -> Snapshot:
        """The list and the orders, read in one transaction."""
        with self._transaction(write=False) as db:
            return {"items": self._items(db), "orders": self._orders(db)}

    def close(self) -> None:
        """Fold the write-ahead log back into the main file and refuse further calls."""
        if self._closed:
            return
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        try:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            db.close()
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @staticmethod
    def _items(db: sqlite3.Connection) -> list[Item]:
        rows = db.execute("SELECT name, quantity FROM items ORDER BY key").fetchall()
        return [{"name": name, "quantity": quantity} for name, quantity in rows]

    @staticmethod
    def _orders(db: sqlite3.Connection) -> list[Order]:
        rows = db.execute(
            """SELECT o.order_id, o.placed_at, l.name, l.quantity
               FROM orders AS o JOIN order_lines AS l ON l.order_seq = o.seq
               ORDER BY o.seq, l.key"""
        ).fetchall()
        orders: dict[str, Order] = {}  # dicts keep insertion order: oldest first
        for order_id, placed_at, name, quantity in rows:
            order = orders.setdefault(order_id, {"order_id": order_id, "placed_at": placed_at, "items": []})
            order["items"].append({"name": name, "quantity": quantity})
        return list(orders.values())
