from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RECIPES = sorted(path for path in (ROOT / "recipes").iterdir() if (path / "requirements.txt").is_file())


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
