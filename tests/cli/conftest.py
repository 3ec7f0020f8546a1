"""The command-line tests' data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.settings import CommonSettings
from services.stack import prepare_database


@pytest.fixture
async def data_dir(tmp_path: Path) -> Path:
    """A data directory as `drgwatch up` leaves it: tables and the sample catalogue."""
    directory = tmp_path / "var"
    directory.mkdir()
    await prepare_database(CommonSettings(data_dir=directory), replay_ledger=False)
    return directory
