"""What the local-cluster tests share: an engines check that fails loudly, never skips.

Use it by importing the fixture into the test module
(`from cluster_support import engines_fixture  # noqa: F401`): it is autouse, so
every test in that module first proves nginx and redis-server are installed.
"""

from __future__ import annotations

import pytest

from lesson_code.cluster import MissingToolError, find_engines


@pytest.fixture(name="engines", scope="module", autouse=True)
def engines_fixture() -> None:
    """Fail the module's tests in one line when nginx or redis-server is missing (a loud failure, never a skip)."""
    try:
        find_engines()
    except MissingToolError as error:
        pytest.fail(str(error), pytrace=False)
