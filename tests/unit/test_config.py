"""`lpm.yaml` validation and `lpm check`: exact messages, exit 2, nothing called."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest
import responses
import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from flows.cli import app
from mapping.config import ConfigError, LpmConfig, load_config, parse_config
from mapping.secrets import EnvSecret

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "lpm.example.yaml"
SECRETS = {"JIRA_EMAIL": "pm@contoso.example", "JIRA_API_TOKEN": "tok-123", "ADO_PAT": "pat-456"}


def _example() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def _problems(data: dict, **kwargs) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(yaml.safe_dump(data), **kwargs)
    return caught.value.problems


def test_example_config_is_valid_and_documents_every_key(monkeypatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    config = load_config(EXAMPLE, require_secrets=True)
    assert [s.name for s in config.sources] == ["jira-cloud", "ado"]
    text = EXAMPLE.read_text()
    undocumented = sorted(key for key in _all_keys(LpmConfig) if not re.search(rf"\b{key}\b", text))
    assert undocumented == []


def _all_keys(model: type[BaseModel]) -> set[str]:
    keys: set[str] = set()
    for name, info in model.model_fields.items():
        keys.add(name)
        for candidate in _models_in(info.annotation):
            keys |= _all_keys(candidate)
    return keys


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [found for arg in get_args(annotation) for found in _models_in(arg)]


def test_unknown_level_names_the_choices() -> None:
    data = _example()
    data["sources"][0]["levels"]["Feature"] = "feat"
    assert _problems(data) == [
        "sources.0.levels.Feature: unknown level 'feat' "
        "(expected one of theme, epic, capability, feature, story)"
    ]


def test_unknown_key_is_named() -> None:
    data = _example()
    data["sources"][1]["wiql"] = "x"
    data["portfolio"]["guardrail"] = {}
    assert _problems(data) == [
        "portfolio.guardrail: unknown key 'guardrail'",
        "sources.1.wiql: unknown key 'wiql'",
    ]


def test_missing_secret_env_var_is_named(monkeypatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("JIRA_API_TOKEN")
    assert _problems(_example(), require_secrets=True) == [
        "sources.0.auth.token: environment variable JIRA_API_TOKEN is not set"
    ]


def test_duplicate_source_names() -> None:
    data = _example()
    data["sources"][1]["name"] = "jira-cloud"
    assert _problems(data) == [
        "sources.1.name: duplicate source name 'jira-cloud' (also sources.0)"
    ]


def test_inline_secret_is_refused() -> None:
    data = _example()
    data["sources"][1]["auth"]["token"] = "pat-in-the-file"
    (problem,) = _problems(data)
    assert problem.startswith("sources.1.auth.token: secrets are never written in the config")
    assert "pat-in-the-file" not in problem


def test_unknown_source_kind_and_bad_values() -> None:
    data = _example()
    data["sources"][1]["kind"] = "github"
    data["portfolio"]["guardrails"] = {"business": 0.9, "enabler": 0.3, "maintenance": 0.1}
    data["portfolio"]["increments"][0]["end"] = "2026-01-01"
    assert _problems(data) == [
        "portfolio.increments.0: increment 'PI 26.3' ends (2026-01-01) "
        "before it starts (2026-07-13)",
        "portfolio.guardrails: guardrail shares add up to 1.30; they must not exceed 1.0",
        "sources.1: unknown source kind 'github' (expected one of jira, azure_devops)",
    ]


def test_yaml_syntax_error_points_at_the_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("portfolio:\n  name: [unclosed\n", source="lpm.yaml")
    (problem,) = caught.value.problems
    assert problem.startswith("lpm.yaml:3:1: invalid YAML")


def test_secret_references_print_masked(monkeypatch) -> None:
    monkeypatch.setenv("JIRA_API_TOKEN", "tok-123")
    ref = EnvSecret(env="JIRA_API_TOKEN")
    assert str(ref) == "****"
    resolved = ref.resolve()
    assert "tok-123" not in repr(resolved) and "tok-123" not in str(resolved)
    assert resolved.get_secret_value() == "tok-123"


@responses.activate(assert_all_requests_are_fired=False)
def test_lpm_check_prints_every_problem_and_exits_2(tmp_path: Path) -> None:
    data = _example()
    data["sources"][0]["levels"]["Feature"] = "feat"
    data["sources"][1]["name"] = "jira-cloud"
    config = tmp_path / "lpm.yaml"
    config.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["check", "--config", str(config)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "sources.1.name: duplicate source name 'jira-cloud' (also sources.0)",
        "sources.0.levels.Feature: unknown level 'feat' "
        "(expected one of theme, epic, capability, feature, story)",
    ]
    assert len(responses.calls) == 0


def test_lpm_check_accepts_a_valid_config(monkeypatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["check", "--config", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.stdout
    assert all(value not in result.output for value in SECRETS.values())


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["check", "--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "no such config file" in result.stderr
