"""Pinned mapping samples: faster mappers must produce exactly the models they produced before.

`data/jira_mapping_sample.json` and `data/azure_devops_mapping_sample.json` hold raw items as the
connectors fetched them from the sandbox (Jira issues with and without changelogs, Azure DevOps
work items merged with their updates, a few made malformed on purpose), the source config and
facts they were mapped with, and what the mapper gave then: the model dumped as JSON (its `raw`
as a digest) or the quarantine message.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from mapping.azure_devops import AzureDevOpsFacts, AzureDevOpsMapper
from mapping.config import AzureDevOpsSource, JiraSource
from mapping.jira import JiraFacts, JiraField, JiraMapper
from mapping.mapper import Mapper, MappingError

DATA = Path(__file__).parent / "data"


def _field(data: dict[str, Any] | None) -> JiraField | None:
    return JiraField(**data) if data else None


def _jira(sample: dict[str, Any]) -> Mapper:
    facts = sample["facts"]
    return JiraMapper(
        JiraSource.model_validate(sample["source"]),
        JiraFacts(
            deployment=facts["deployment"],
            time_zone=facts["time_zone"],
            fields={attr: JiraField(**spec) for attr, spec in facts["fields"].items()},
            writeback={attr: JiraField(**spec) for attr, spec in facts["writeback"].items()},
            rank_field=_field(facts["rank_field"]),
            status_categories=facts["status_categories"],
            issue_types=facts["issue_types"],
        ),
    )


def _azure_devops(sample: dict[str, Any]) -> Mapper:
    return AzureDevOpsMapper(
        AzureDevOpsSource.model_validate(sample["source"]), AzureDevOpsFacts(**sample["facts"])
    )


def _digest(value: Any) -> str:
    encoded = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.blake2b(encoded, digest_size=16).hexdigest()


@pytest.mark.parametrize(
    ("name", "build"),
    [("jira_mapping_sample.json", _jira), ("azure_devops_mapping_sample.json", _azure_devops)],
)
def test_mapping_of_the_pinned_sample_is_unchanged(name: str, build: Any) -> None:
    sample = json.loads((DATA / name).read_text())
    mapper = build(sample)
    assert len(sample["raws"]) == len(sample["expected"]) > 30
    histories = 0
    for raw, expected in zip(sample["raws"], sample["expected"], strict=True):
        if "error" in expected:
            with pytest.raises(MappingError) as caught:
                mapper.map(raw)
            assert str(caught.value) == expected["error"]
            continue
        mapped = mapper.map(raw)
        assert type(mapped).__name__ == expected["model"]
        value = mapped.model_dump(mode="json")
        value["raw"] = _digest(value["raw"])
        assert value == expected["value"], raw["id"]
        histories += len(value.get("history", ()))
    assert histories > 20
