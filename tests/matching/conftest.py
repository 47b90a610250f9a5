from __future__ import annotations

from pathlib import Path

import pytest

DEV_SET = Path(__file__).resolve().parents[3] / "shared" / "data" / "synergies_dev.csv"


@pytest.fixture
def dev_set() -> Path:
    if not DEV_SET.exists():
        pytest.skip("shared development set not available")
    return DEV_SET
