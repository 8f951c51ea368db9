"""Fixtures of the write-back tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses


@pytest.fixture
def mock(monkeypatch: pytest.MonkeyPatch) -> Iterator[responses.RequestsMock]:
    """Mocked tracker HTTP, with the credentials the mocked configs name in the environment."""
    monkeypatch.setenv("WB_TEST_PAT", "pat-secret")
    monkeypatch.setenv("WB_TEST_EMAIL", "bot@example.com")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps
