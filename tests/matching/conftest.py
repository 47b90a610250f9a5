from __future__ import annotations

from pathlib import Path

import pytest

DEV_SET = Path(__file__).resolve().parents[3] / "shared" / "data" / "synergies_dev.csv"


@pytest.fixture
def dev_set() -> Path:
    if not DEV_SET.exists():
        pytest.skip("shared development set not available")
    return DEV_SET


_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The engine is pure (no database): its tests run in the SQLite pass only, not again on PostgreSQL.
    for item in items:
        if _HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.sqlite_only)
