"""One Prefect API for the session's flow runs in child processes (`prefect server`, SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.chaos.harness import prefect_server


@dataclass(frozen=True)
class PrefectApi:
    url: str
    home: Path

    def database_files(self) -> list[Path]:
        """The server's SQLite database with its write-ahead log, where everything it stores is."""
        return [p for p in self.home.glob("prefect.db*") if p.is_file()]


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectApi]:
    home = tmp_path_factory.mktemp("prefect-home")
    with prefect_server(home) as url:
        yield PrefectApi(url, home)
