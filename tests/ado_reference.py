"""Microsoft's Azure DevOps HTTP examples (../shared/reference), as the tests' real shapes.

The folder is not part of the project; where it is absent (a user's clone) the tests that read it
skip with the reason, and CI always has it.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT.parent / "shared" / "reference" / "azure-devops" / "examples"


@cache
def _load(relative: str) -> dict[str, Any]:
    path = EXAMPLES / relative
    if not path.is_file():
        pytest.skip(f"reference example {path} is absent (../shared/reference not checked out)")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8-sig"))
    return data


def example(relative: str) -> dict[str, Any]:
    """A whole example file (parameters + responses), a fresh copy per call."""
    return copy.deepcopy(_load(relative))


def response_body(relative: str, status: str = "200") -> Any:
    """The body of one documented response of an example."""
    return example(relative)["responses"][status]["body"]
