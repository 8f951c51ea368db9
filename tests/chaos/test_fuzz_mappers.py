"""Hostile tracker payloads: every one is mapped or quarantined, and nothing crashes a sync.

Hypothesis starts from real payloads of the sandbox trackers (Jira issues with changelogs, Azure
DevOps work items with relations and updates) and damages them: keys removed, values replaced by
nulls, wrong types, non-finite numbers, huge strings, NUL and other unicode, SQL and HTML text.
The mappers must return a model or raise `MappingError` (nothing else), and a batch of such items
must load into the real warehouse (SQLite and PostgreSQL) with each item stored or quarantined.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from connectors.base import FetchPlan
from flows.sync import KINDS, map_items
from mapping.config import LpmConfig
from mapping.mapper import Mapper, MappingError
from mapping.model import Objective, WorkItem
from sandbox.server import serve
from warehouse import models
from warehouse.db import open_warehouse
from warehouse.load import ensure_source, load_batch, quarantine_id, start_run, work_item_row
from warehouse.storable import storable

pytestmark = pytest.mark.integration

HOSTILE_TEXT = (
    "",
    " ",
    "x" * 100_000,
    "\x00",
    "nul\x00inside",
    "'; DROP TABLE work_item; --",
    "Robert'); DELETE FROM source WHERE ('1'='1",
    "<script>alert('lpm')</script><img src=x onerror=alert(1)>",
    "{{ 7*7 }} ${jndi:ldap://127.0.0.1/x} %s%s%n",
    "\u202eevil\u200b\ufeff",
    "Ünïcödé 漢字 🚀 עברית",
    "NaN",
    "-Infinity",
    "1e400",
    "0|hzzzzz:",
    "2026-13-45T99:99:99Z",
    "0000-00-00T00:00:00",
    "9999-12-31T23:59:59.9999999Z",
    "Project\\\\\\",
    "../../etc/passwd",
)
CONFUSED = (
    "NaN",
    "nan",
    "Infinity",
    "-inf",
    "1e400",
    "12.5",
    " 8 ",
    "0x1A",
    "1_000",
    True,
    2**64 - 1,
    -(2**63),
    1e308,
    -0.0,
    {"value": "NaN"},
    [{"name": None}],
)
"""Values of the wrong type or meaning that a misconfigured field or a plugin may return."""
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
    st.sampled_from(HOSTILE_TEXT),
)
"""Only what parsing a tracker's JSON can give (orjson: 64-bit integers, finite floats, no lone
surrogates); NUL characters and every other code point included."""
JSON = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=10,
)


@dataclass(frozen=True)
class Tracker:
    kind: str
    mapper: Mapper
    seeds: list[dict[str, Any]]


@pytest.fixture(scope="module")
def trackers() -> Iterator[dict[str, Tracker]]:
    """Mappers built from facts discovered on the sandboxes, and their real payloads as seeds."""
    found: dict[str, Tracker] = {}
    for kind, name in (("jira", "jira"), ("azure_devops", "ado")):
        with serve(kind, items=150, seed=5) as sandbox:
            sandbox.mutator.step(40)
            saved = {key: os.environ.get(key) for key in sandbox.env(name)}
            os.environ.update(sandbox.env(name))
            try:
                source = LpmConfig.model_validate(
                    {"portfolio": {"name": "fuzz"}, "sources": [sandbox.source_config(name)]}
                ).sources[0]
                loader = KINDS[kind]()
                connector = loader.connect(source)
                try:
                    facts = connector.discover()
                    since = datetime(2000, 1, 1, tzinfo=UTC)
                    raws = [
                        raw
                        for page in connector.pages(facts, FetchPlan(full=False, since=since))
                        for raw in page.items
                    ]
                finally:
                    connector.close()
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
        found[kind] = Tracker(kind, loader.mapper(source, facts), raws)
    yield found


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key or index path inside a JSON document."""
    out: list[tuple[Any, ...]] = []
    children: list[tuple[Any, Any]] = []
    if isinstance(node, dict):
        children = list(node.items())
    elif isinstance(node, list):
        children = list(enumerate(node))
    for key, child in children:
        out.append((*prefix, key))
        out += _paths(child, (*prefix, key))
    return out


@st.composite
def damaged(draw: st.DrawFn, seeds: list[dict[str, Any]]) -> Any:
    """A real payload with a few keys removed or values replaced; sometimes pure garbage."""
    if draw(st.integers(0, 19)) == 0:
        return draw(JSON)
    raw = copy.deepcopy(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(raw)
        fields = [path for path in paths if path[0] == "fields" and len(path) == 2]
        values = JSON
        if fields and draw(st.booleans()):
            paths = fields  # half the damage goes to the item's own field values
            values = st.one_of(st.sampled_from(CONFUSED), JSON)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = raw
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(values)
    return raw


def _map_or_quarantine(mapper: Mapper, raw: Any) -> WorkItem | Objective | MappingError:
    try:
        return mapper.map(raw)
    except MappingError as error:
        assert str(error), "a mapping error must say what is wrong"
        return error


FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


@pytest.mark.parametrize("kind", ["jira", "azure_devops"])
@FUZZ
@given(data=st.data())
def test_every_damaged_payload_is_mapped_or_rejected_with_a_mapping_error(
    trackers: dict[str, Tracker], kind: str, data: st.DataObject
) -> None:
    tracker = trackers[kind]
    raw = data.draw(damaged(tracker.seeds))
    outcome = _map_or_quarantine(tracker.mapper, raw)
    if isinstance(outcome, WorkItem | Objective):
        numbers = {name: value for name, value in outcome if isinstance(value, float)}
        assert all(math.isfinite(value) for value in numbers.values()), numbers
    if isinstance(outcome, WorkItem):
        work_item_row(outcome, 1, datetime.now(UTC))  # the row and its hash can be built


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def fuzz_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'warehouse.db'}"
    else:
        url = request.getfixturevalue("postgres_server")
    engine = open_warehouse(url)
    yield engine
    engine.dispose()


@pytest.mark.parametrize("kind", ["jira", "azure_devops"])
@settings(FUZZ, max_examples=25)
@given(data=st.data())
def test_a_batch_of_damaged_payloads_loads_with_each_item_stored_or_quarantined(
    trackers: dict[str, Tracker], fuzz_engine: Engine, kind: str, data: st.DataObject
) -> None:
    tracker = trackers[kind]
    raws = data.draw(st.lists(damaged(tracker.seeds), min_size=1, max_size=6))
    source_id = ensure_source(fuzz_engine, f"fuzz-{kind}", kind, "http://127.0.0.1")
    run_id = start_run(fuzz_engine, source_id, "full")
    items, objectives, quarantined = map_items(tracker.mapper, raws)
    assert len(items) + len(objectives) + len(quarantined) == len(raws)
    load_batch(
        fuzz_engine, run_id, source_id, items, objectives=objectives, quarantined=quarantined
    )
    item, objective, quarantine = (
        models.WorkItem.__table__,
        models.Objective.__table__,
        models.Quarantine.__table__,
    )
    with fuzz_engine.connect() as conn:
        live: dict[str, dict[str, str]] = {}
        for kind, table in (("item", item), ("objective", objective)):
            live[kind] = {
                row.external_id: row.title
                for row in conn.execute(
                    select(table.c.external_id, table.c.title).where(
                        table.c.source_id == source_id, table.c.deleted_at.is_(None)
                    )
                )
            }
        held = set(
            conn.execute(
                select(quarantine.c.external_id).where(quarantine.c.sync_run_id == run_id)
            ).scalars()
        )
    assert not live["item"].keys() & live["objective"].keys(), "an id is one kind of item"
    latest: dict[str, WorkItem] = {}
    for mapped in items:
        kept = latest.get(mapped.external_id)
        if kept is None or mapped.updated_at >= kept.updated_at:
            latest[mapped.external_id] = mapped
    goals = {o.external_id for o in objectives}
    for external_id, mapped in latest.items():
        if external_id not in goals:
            want = storable(mapped.title)
            assert live["item"].get(external_id) == want, "titles are data, verbatim"
    for goal in objectives:
        if goal.external_id not in latest:
            titles = {storable(o.title) for o in objectives if o.external_id == goal.external_id}
            assert live["objective"].get(goal.external_id) in titles
    assert {quarantine_id(entry) for entry in quarantined} <= held
