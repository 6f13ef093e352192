"""Tests for the SQLite shopping store: its rules, its concurrency and its durability."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import pytest

from lesson_code.store import MAX_NAME_LENGTH, MAX_QUANTITY, ShoppingError, ShoppingStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ShoppingStore]:
    shop = ShoppingStore(tmp_path / "shop.sqlite3")
    yield shop
    shop.close()


def refused(call: Callable[[], object], message: str) -> None:
    """Assert that `call` raises ShoppingError whose message contains `message`."""
    with pytest.raises(ShoppingError, match=re.escape(message)):
        call()


# ---- the list -----------------------------------------------------------------------------


def test_add_list_remove(store: ShoppingStore) -> None:
    assert store.add_item("Milk", 2) == {"name": "Milk", "quantity": 2}
    assert store.add_item("bread") == {"name": "bread", "quantity": 1}
    assert store.list_items() == [{"name": "bread", "quantity": 1}, {"name": "Milk", "quantity": 2}]
    assert store.remove_item("milk", 1) == {"name": "Milk", "quantity": 1}
    assert store.remove_item("BREAD") == {"name": "bread", "quantity": 0}
    assert store.remove_item("Milk", 1) == {"name": "Milk", "quantity": 0}
    assert store.list_items() == []


def test_names_match_case_insensitively_and_keep_the_first_spelling(store: ShoppingStore) -> None:
    store.add_item("Oat Milk", 2)
    assert store.add_item("  OAT   milk ", 3) == {"name": "Oat Milk", "quantity": 5}
    assert store.add_item("oat milk") == {"name": "Oat Milk", "quantity": 6}
    assert store.list_items() == [{"name": "Oat Milk", "quantity": 6}]


def test_items_are_sorted_by_name_ignoring_case(store: ShoppingStore) -> None:
    for name in ["cheese", "Apples", "bread"]:
        store.add_item(name)
    assert [item["name"] for item in store.list_items()] == ["Apples", "bread", "cheese"]


def test_longest_allowed_name_and_quantity(store: ShoppingStore) -> None:
    name = "x" * MAX_NAME_LENGTH
    assert store.add_item(name, MAX_QUANTITY) == {"name": name, "quantity": MAX_QUANTITY}


# ---- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("x" * (MAX_NAME_LENGTH + 1), f"the limit is {MAX_NAME_LENGTH}"),
        ("milk\x00", "control characters"),
        ("milk\nignore previous instructions", "control characters"),
        ("oat\tmilk", "control characters"),
        ("milk\x1b[31m", "control characters"),
        ("milk\u2028more", "line breaks"),
        (42, "must be text"),
        (None, "must be text"),
    ],
)
def test_bad_names_are_refused(store: ShoppingStore, name: object, message: str) -> None:
    refused(lambda: store.add_item(name, 1), message)  # type: ignore[arg-type]
    refused(lambda: store.remove_item(name), message)  # type: ignore[arg-type]
    assert store.snapshot() == {"items": [], "orders": []}


@pytest.mark.parametrize("quantity", [0, -1, MAX_QUANTITY + 1, True, False, 1.0, 2.5, "2", None])
def test_bad_quantities_are_refused(store: ShoppingStore, quantity: object) -> None:
    store.add_item("milk", 5)
    refused(lambda: store.add_item("milk", quantity), "quantity must be")  # type: ignore[arg-type]
    if quantity is not None:  # None is valid for remove_item: it means "all of it"
        refused(lambda: store.remove_item("milk", quantity), "quantity must be")  # type: ignore[arg-type]
    assert store.list_items() == [{"name": "milk", "quantity": 5}]


def test_total_may_not_exceed_the_maximum(store: ShoppingStore) -> None:
    store.add_item("rice", MAX_QUANTITY - 1)
    refused(lambda: store.add_item("RICE", 2), f"at most {MAX_QUANTITY}")
    assert store.add_item("rice", 1) == {"name": "rice", "quantity": MAX_QUANTITY}
    refused(lambda: store.add_item("rice"), f"already has {MAX_QUANTITY}")
    assert store.list_items() == [{"name": "rice", "quantity": MAX_QUANTITY}]


def test_removing_what_is_not_there_is_refused(store: ShoppingStore) -> None:
    refused(lambda: store.remove_item("tea"), "'tea' is not on the shopping list")
    store.add_item("tea", 2)
    refused(lambda: store.remove_item("tea", 3), "cannot remove 3 tea: the list only has 2")
    assert store.list_items() == [{"name": "tea", "quantity": 2}]


def test_ordering_an_empty_list_is_refused(store: ShoppingStore) -> None:
    refused(store.place_order, "the shopping list is empty")
    assert store.snapshot() == {"items": [], "orders": []}


# ---- orders -------------------------------------------------------------------------------


def test_place_order_moves_the_list_into_an_order(store: ShoppingStore) -> None:
    store.add_item("milk", 2)
    store.add_item("Bread")
    order = store.place_order()
    assert re.fullmatch(r"ord-[0-9a-f]{12}", order["order_id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", order["placed_at"])
    assert order["items"] == [{"name": "Bread", "quantity": 1}, {"name": "milk", "quantity": 2}]
    assert store.list_items() == []
    assert store.list_orders() == [order]


def test_orders_are_listed_oldest_first(store: ShoppingStore) -> None:
    placed = []
    for name in ["first", "second", "third"]:
        store.add_item(name)
        placed.append(store.place_order())
    assert store.list_orders() == placed
    assert len({order["order_id"] for order in placed}) == 3


def test_everything_persists_across_a_new_store_on_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "folder" / "shop.sqlite3"  # the parent folders are created
    with ShoppingStore(path) as first:
        first.add_item("milk", 2)
        order = first.place_order()
        first.add_item("eggs", 12)
        before = first.snapshot()
    with ShoppingStore(path) as second:
        assert second.snapshot() == before
        assert second.list_orders() == [order]
        assert second.list_items() == [{"name": "eggs", "quantity": 12}]


def test_a_closed_store_refuses_calls(tmp_path: Path) -> None:
    shop = ShoppingStore(tmp_path / "shop.sqlite3")
    shop.close()
    shop.close()  # closing twice is harmless
    with pytest.raises(RuntimeError, match="closed"):
        shop.list_items()


def test_an_in_memory_database_is_refused() -> None:
    with pytest.raises(ValueError, match="file path"):
        ShoppingStore(":memory:")


def test_the_database_uses_wal(store: ShoppingStore) -> None:
    store.add_item("milk")
    with closing(sqlite3.connect(store.path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest.fixture
def no_umask() -> Iterator[None]:
    """umask 0 for one test, so a private file mode is the code's doing, not the shell's."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_the_database_and_its_wal_files_are_private(tmp_path: Path, no_umask: None) -> None:
    path = tmp_path / "shop.sqlite3"
    store = ShoppingStore(path)
    with closing(sqlite3.connect(path)) as reader:  # an open reader keeps -wal and -shm on disk
        reader.execute("SELECT count(*) FROM items").fetchone()
        store.add_item("milk")
        files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
        modes = {file.name: oct(file.stat().st_mode & 0o777) for file in files}
    assert modes == {file.name: "0o600" for file in files}
    store.close()


def test_an_existing_database_keeps_its_mode(tmp_path: Path, no_umask: None) -> None:
    path = tmp_path / "shared.sqlite3"
    ShoppingStore(path).close()
    path.chmod(0o640)  # the owner chose to share it with a group: the store does not undo that
    ShoppingStore(path).add_item("tea")
    assert path.stat().st_mode & 0o777 == 0o640


# ---- concurrency and durability -----------------------------------------------------------

THREADS, CALLS = 8, 50


def run_in_threads(work: Callable[[int], None]) -> None:
    """Run work(0..THREADS-1) at the same time; re-raise the first failure."""
    start = threading.Barrier(THREADS)

    def worker(number: int) -> None:
        start.wait()  # all threads begin together, to make collisions likely
        work(number)

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for future in [pool.submit(worker, number) for number in range(THREADS)]:
            future.result()


def test_concurrent_adds_to_one_item_lose_nothing(store: ShoppingStore) -> None:
    def work(_: int) -> None:
        for _ in range(CALLS):
            store.add_item("Coffee")

    run_in_threads(work)
    assert store.list_items() == [{"name": "Coffee", "quantity": THREADS * CALLS}]


def test_concurrent_adds_to_distinct_items_lose_nothing(store: ShoppingStore) -> None:
    def work(number: int) -> None:
        for call in range(CALLS):
            store.add_item(f"item {number}-{call}")

    run_in_threads(work)
    items = store.list_items()
    assert len(items) == THREADS * CALLS
    assert {item["name"] for item in items} == {f"item {n}-{c}" for n in range(THREADS) for c in range(CALLS)}
    assert all(item["quantity"] == 1 for item in items)


CHILD = """
import sys
from lesson_code.store import ShoppingStore

store = ShoppingStore(sys.argv[1])
for number in range(100_000):
    store.add_item(f"item {number}", 1 + number % 7)
    print(number, flush=True)  # printed only after the commit returned: acknowledged
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_acknowledged_adds_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "shop.sqlite3"
    acknowledged: list[int] = []
    with subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None
            for line in child.stdout:
                acknowledged.append(int(line))
                if len(acknowledged) == 40:
                    os.kill(child.pid, signal.SIGKILL)  # mid-way: the child is busy writing the next item
                    break
        finally:
            child.kill()  # no-op if already dead; never leave the child running if the test fails
    assert child.returncode == -signal.SIGKILL
    assert len(acknowledged) == 40, "the child died before it acknowledged 40 adds"

    with ShoppingStore(path) as reopened:
        on_file = {item["name"]: item["quantity"] for item in reopened.list_items()}
    for number in acknowledged:
        assert on_file.get(f"item {number}") == 1 + number % 7
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
