"""Hostile input: malformed config files give clear errors (exit 2, nothing called); quotes in
JQL/WIQL scopes, SQL metacharacters in names and HTML/SQL/template text in titles are data,
never executed — the warehouse stores them verbatim and the report shows them escaped."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from flows.cli import app
from flows.demo import ADO_SOURCE, JIRA_SOURCE, demo_config
from flows.report import write_report
from flows.sync import SyncFailed, sync_source
from mapping.config import ConfigError, LpmConfig, load_config
from sandbox.server import Sandbox, serve
from warehouse import models
from warehouse.analytics import compute_analytics
from warehouse.db import open_warehouse

SECRET = "lpm-sentinel-inline-5d2c9e"
SOURCE = {
    "name": "jira",
    "kind": "jira",
    "url": "https://contoso.atlassian.net",
    "auth": {"email": {"env": "HOSTILE_EMAIL"}, "token": {"env": "HOSTILE_TOKEN"}},
    "scope": "project = PORT",
    "levels": {"Story": "story"},
}


def config_text(**source: Any) -> str:
    return yaml.safe_dump({"portfolio": {"name": "x"}, "sources": [{**SOURCE, **source}]})


def billion_laughs() -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    return "\n".join([*lines, "portfolio: {name: x, increments: *a8}"]) + "\n"


MALFORMED: list[tuple[str, bytes | str, str]] = [
    ("invalid yaml", "portfolio: {name: 'unclosed\n", "invalid YAML"),
    ("not a mapping", "- portfolio\n- sources\n", "expected a mapping at the top level"),
    ("not utf-8", b"portfolio:\n  name: \xff\xfe\n", "not UTF-8"),
    (
        "python tag",
        'portfolio: !!python/object/apply:os.system ["touch {marker}"]\n',
        "could not determine a constructor",
    ),
    (
        "inline secret",
        config_text(auth={"email": "me@example.com", "token": SECRET}),
        "secrets are never written in the config",
    ),
    (
        "sql in a source name",
        config_text(name="jira'; DROP TABLE source; --"),
        "sources.0.name: String should match pattern",
    ),
    ("javascript url", config_text(url="javascript:alert(1)"), "sources.0.url"),
    ("file url", config_text(url="file:///etc/passwd"), "sources.0.url"),
    ("unknown key", config_text(scop="project = X"), "unknown key 'scop'"),
    ("bad level", config_text(levels={"Story": "story'; --"}), "unknown level"),
    ("billion laughs", billion_laughs(), "portfolio.increments.0"),
    (
        "duplicate names",
        yaml.safe_dump({"portfolio": {"name": "x"}, "sources": [SOURCE, SOURCE]}),
        "duplicate source name 'jira'",
    ),
]


@pytest.mark.parametrize(("case", "content", "expected"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_config_is_a_clear_error_with_exit_code_2(
    case: str, content: bytes | str, expected: str, tmp_path: Path
) -> None:
    marker = tmp_path / "executed"
    path = tmp_path / "lpm.yaml"
    if isinstance(content, str):
        path.write_text(content.replace("{marker}", str(marker)), encoding="utf-8")
    else:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as invalid:
        load_config(path)
    assert any(expected in problem for problem in invalid.value.problems), invalid.value.problems
    result = CliRunner().invoke(app, ["check", "--config", str(path)])
    assert result.exit_code == 2 and expected in result.output
    assert "Traceback" not in result.output
    assert SECRET not in result.output and SECRET not in str(invalid.value)
    assert not marker.exists(), "nothing in a config file is ever executed"


def test_a_source_name_on_the_command_line_is_a_name_not_sql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "lpm.db"
    path = tmp_path / "lpm.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "warehouse": {"url": f"sqlite:///{warehouse}"},
                "portfolio": {"name": "x"},
                "sources": [SOURCE],
            }
        )
    )
    monkeypatch.setenv("HOSTILE_EMAIL", "me@example.com")
    monkeypatch.setenv("HOSTILE_TOKEN", "t0ken")
    runner = CliRunner()
    assert runner.invoke(app, ["status", "--config", str(path)]).exit_code == 0
    hostile = "jira'; DROP TABLE source; --"
    result = runner.invoke(app, ["sync", "--config", str(path), "--source", hostile])
    assert result.exit_code == 2 and "no source named" in result.output
    with sqlite3.connect(warehouse) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert {"source", "work_item", "writeback"} <= tables


# --- hostile values through a real sync ---------------------------------------------------------

HOSTILE_TITLES = (
    "<script>alert('lpm')</script><img src=x onerror=alert(1)>",
    "Robert'); DROP TABLE work_item; --",
    "{{ 7*7 }} {% raw %} ${jndi:ldap://127.0.0.1/x} %s%n",
    "NUL\x00inside",
    "Ünïcödé 漢字 🚀 \u202eevil\u200b",
    "x" * 5000,
)
JQL_NOISE = ' AND summary !~ "Robert\\"); DROP TABLE work_item; --"'
WIQL_NOISE = " AND [System.Title] <> 'O''Brien''); DROP TABLE work_item; --'"


@pytest.fixture(scope="module")
def hostile_sandboxes() -> Iterator[dict[str, Sandbox]]:
    with (
        serve("jira", items=200, seed=41) as jira,
        serve("azure_devops", items=100, seed=42) as ado,
    ):
        for sandbox in (jira, ado):
            p = sandbox.portfolio
            epics = [i for i in range(p.n) if p.itype(i).level == "epic"]
            for i, title in zip(epics, HOSTILE_TITLES, strict=False):
                p.set_attr(i, "summary", title, author=1)
        yield {JIRA_SOURCE: jira, ADO_SOURCE: ado}


@pytest.mark.integration
def test_hostile_scopes_and_titles_are_data_in_the_warehouse_and_the_report(
    hostile_sandboxes: dict[str, Sandbox], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jira, ado = hostile_sandboxes[JIRA_SOURCE], hostile_sandboxes[ADO_SOURCE]
    raw = demo_config(jira, ado, tmp_path)
    raw["sources"][0]["scope"] += JQL_NOISE
    raw["sources"][1]["scope"] += WIQL_NOISE
    for name, value in {**jira.env(JIRA_SOURCE), **ado.env(ADO_SOURCE)}.items():
        monkeypatch.setenv(name, value)
    config = LpmConfig.model_validate(raw)
    engine = open_warehouse(config.warehouse_url())
    try:
        for source in config.sources:
            result = sync_source(config, source.name, engine, full=True)
            assert result.quarantined == 0
        compute_analytics(engine, config.portfolio, now=datetime.now(UTC))
        report = write_report(engine, config, tmp_path / "report")
        item = models.WorkItem.__table__
        with engine.connect() as conn:
            titles = {row.external_id: row.title for row in conn.execute(select(item))}
            live = conn.execute(select(item.c.id).where(item.c.deleted_at.is_(None))).all()
    finally:
        engine.dispose()
    expected = sum(1 for sb in (jira, ado) for t in sb.ground_truth() if t.level and not t.deleted)
    assert len(live) == expected, "the noise in the scopes filtered nothing and dropped nothing"
    stored = {
        t.title.replace("\x00", "\ufffd")
        for sb in (jira, ado)
        for t in sb.ground_truth()
        if t.title in HOSTILE_TITLES
    }
    assert stored and stored <= set(titles.values()), "stored verbatim (NUL made storable)"
    html = report.html.read_text(encoding="utf-8")
    assert "<script" not in html and "<img src=x" not in html, "tracker text is never markup"
    epics = json.loads((tmp_path / "report" / "data" / "epics.json").read_text())
    shown = {str(row.get("title")) for row in epics}
    assert stored & shown, "hostile titles are exported as data"


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["jira", "azure_devops"])
def test_a_scope_the_tracker_rejects_is_a_clear_error_and_loads_nothing(
    hostile_sandboxes: dict[str, Sandbox],
    kind: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = JIRA_SOURCE if kind == "jira" else ADO_SOURCE
    sandbox = hostile_sandboxes[name]
    source = sandbox.source_config(name)
    source["scope"] += ' AND summary ~ "unclosed' if kind == "jira" else " AND [System.Title] = 'x"
    for env, value in sandbox.env(name).items():
        monkeypatch.setenv(env, value)
    config = LpmConfig.model_validate({"portfolio": {"name": "x"}, "sources": [source]})
    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        with pytest.raises(SyncFailed) as failed:
            sync_source(config, name, engine, full=True)
        with engine.connect() as conn:
            rows = conn.execute(select(models.WorkItem.__table__.c.id)).all()
    finally:
        engine.dispose()
    message = str(failed.value)
    assert "rejected" in message or "JQL" in message or "WIQL" in message, message
    assert rows == []
