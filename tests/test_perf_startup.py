"""`long_lived_imports`: no collector passes during the imports, their objects frozen after, the collector restored."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from lesson_code.perf_startup import long_lived_imports


@pytest.fixture
def unfrozen_after() -> Iterator[None]:
    """Give this test process its collector back as it was: nothing frozen, enabled."""
    assert gc.get_freeze_count() == 0
    try:
        yield
    finally:
        gc.unfreeze()
        gc.enable()


class Built:
    """Something an import would build and keep, tracked by the collector."""


def tracked_by_a_generation(thing: object) -> bool:
    return any(item is thing for item in gc.get_objects())  # the permanent generation is not listed


@pytest.mark.usefixtures("unfrozen_after")
def test_the_collector_is_paused_inside_and_what_exists_is_frozen_after() -> None:
    with long_lived_imports():
        assert not gc.isenabled()
        built = Built()
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0
    assert not tracked_by_a_generation(built)  # no pass will walk it again
    later = Built()
    assert tracked_by_a_generation(later)  # what the program builds afterwards is collected as usual


@pytest.mark.usefixtures("unfrozen_after")
def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with long_lived_imports():
        pass
    assert not gc.isenabled()


@pytest.mark.usefixtures("unfrozen_after")
def test_a_failed_import_gives_the_collector_back() -> None:
    with pytest.raises(ModuleNotFoundError), long_lived_imports():
        import lesson_code.no_such_module  # type: ignore[import-not-found]  # noqa: F401
    assert gc.isenabled()
