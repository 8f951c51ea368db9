"""Write-back against the Jira sandbox over HTTP: plan, apply, loop prevention, conflicts, rank."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from connectors.http import HttpClient
from flows.writeback import apply_writeback, plan_writeback
from mapping.rank import longest_increasing_run
from mapping.writeback import RANK, as_text, same
from sandbox.server import Sandbox, serve
from tests.writeback.helpers import (
    api_writes,
    jira_snapshot,
    person_sets,
    refresh,
    sandbox_config,
)
from warehouse.db import open_warehouse
from warehouse.writeback import ledger_rows

pytestmark = pytest.mark.integration

FIELDS_OFF = {"wsjf": None, "health": None, "progress": None}


def field_ids(sandbox: Sandbox, *names: str) -> set[str]:
    catalogue = requests.get(
        f"{sandbox.url}/rest/api/3/field", auth=(sandbox.email, sandbox.token), timeout=30
    ).json()
    return {f["id"] for f in catalogue if f["name"] in names}


def tracker_value(sandbox: Sandbox, external_id: str, field: str) -> str | None:
    truth = {t.external_id: t for t in sandbox.ground_truth()}
    return as_text(field, getattr(truth[external_id], field))


def test_apply_writes_the_plan_touches_nothing_else_and_then_plans_nothing(
    tmp_path: Path,
) -> None:
    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    with serve("jira", items=1500, seed=21) as sandbox:
        config = sandbox_config(sandbox, "jira", rank=False, first_write="overwrite")
        refresh(config, engine, full=True)
        plan = plan_writeback(config, engine)
        assert len(plan.writes) > 50 and not plan.conflicts
        assert {c.field for c in plan.changes} == {"wsjf", "health", "progress"}
        before = jira_snapshot(sandbox)
        result = apply_writeback(config, engine, plan)
        assert result.counts() == {"applied": len(plan.changes), "skipped_conflict": 0, "failed": 0}
        assert result.clean and result.notices == set()
        after = jira_snapshot(sandbox)

        owned = field_ids(sandbox, "WSJF", "Portfolio Health", "Portfolio Progress")
        assert len(owned) == 3
        written = {c.external_id for c in plan.changes}
        assert before.keys() == after.keys()
        for issue_id, issue in before.items():
            if issue_id not in written:
                assert after[issue_id] == issue, f"issue {issue_id} was not in the plan"
                continue
            untouched = owned | {"updated"}
            old = {k: v for k, v in issue["fields"].items() if k not in untouched}
            new = {k: v for k, v in after[issue_id]["fields"].items() if k not in untouched}
            assert new == old and {**issue, "fields": {}} == {**after[issue_id], "fields": {}}
        truth = {t.external_id: t for t in sandbox.ground_truth()}
        for change in plan.changes:
            now = as_text(change.field, getattr(truth[change.external_id], change.field))
            assert same(change.field, now, change.new_value), change
        # One edit per item, every owned field of it in the same edit.
        for external_id in written:
            assert len(api_writes(sandbox, external_id)) == 1
        calls = result.calls["jira"]
        assert calls.field_writes + calls.bulk_items == len(written)
        rows = ledger_rows(engine, plan.run_id)
        assert {r.status for r in rows} == {"applied"} and all(r.applied_at for r in rows)

        # Right after, before any sync: nothing to do, and nothing is called.
        requests_before = sandbox.stats()["requests"]
        again = plan_writeback(config, engine)
        assert again.changes == []
        assert apply_writeback(config, engine, again).write_calls == 0
        assert sandbox.stats()["requests"] == requests_before
        # Our writes come back with the next sync: still nothing.
        refresh(config, engine)
        assert plan_writeback(config, engine).changes == []


def test_a_persons_edit_between_runs_is_skipped_and_survives_unless_forced(
    tmp_path: Path,
) -> None:
    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    with serve("jira", items=1200, seed=22) as sandbox:
        config = sandbox_config(sandbox, "jira", rank=False, first_write="overwrite")
        refresh(config, engine, full=True)
        first = plan_writeback(config, engine)
        assert apply_writeback(config, engine, first).clean
        target = next(c for c in first.changes if c.field == "wsjf")
        person_sets(sandbox, target.external_id, "wsjf", 42.0)
        refresh(config, engine)

        plan = plan_writeback(config, engine)
        assert [(c.key, c.field, c.outcome.value) for c in plan.changes] == [
            (target.key, "wsjf", "conflict")
        ]
        assert plan.changes[0].tracker_value == "42"
        assert plan.changes[0].last_value == target.new_value
        result = apply_writeback(config, engine, plan)
        assert result.counts()["skipped_conflict"] == 1 and not result.clean
        assert result.write_calls == 0
        assert tracker_value(sandbox, target.external_id, "wsjf") == "42"

        forced = plan_writeback(config, engine, force=True)
        assert apply_writeback(config, engine, forced, force=True).clean
        assert tracker_value(sandbox, target.external_id, "wsjf") == target.new_value


def test_an_edit_between_plan_and_apply_is_read_before_writing(tmp_path: Path) -> None:
    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    with serve("jira", items=1200, seed=23) as sandbox:
        config = sandbox_config(sandbox, "jira", rank=False)
        refresh(config, engine, full=True)
        plan = plan_writeback(config, engine)
        empty = [c for c in plan.writes if c.field == "wsjf" and c.tracker_value is None]
        changed, same_value, untouched = empty[0], empty[1], empty[2]
        person_sets(sandbox, changed.external_id, "wsjf", 42.0)
        person_sets(sandbox, same_value.external_id, "wsjf", float(same_value.new_value or 0))

        result = apply_writeback(config, engine, plan)
        outcome = {(r.key, r.field): r for r in result.results}
        stale = outcome[(changed.key, "wsjf")]
        assert stale.status == "skipped_conflict" and stale.tracker_value == "42"
        assert stale.note and stale.note.startswith("changed since the plan")
        assert tracker_value(sandbox, changed.external_id, "wsjf") == "42"
        meanwhile = outcome[(same_value.key, "wsjf")]
        assert meanwhile.status == "skipped_conflict"
        assert meanwhile.note and "holds the planned value" in meanwhile.note
        assert outcome[(untouched.key, "wsjf")].status == "applied"
        assert not result.clean
        # Nothing of the person's was written over: their item's only edits are theirs.
        assert all("wsjf" not in w for w in api_writes(sandbox, changed.external_id))


def test_429s_during_apply_are_waited_out_and_nothing_is_written_twice(tmp_path: Path) -> None:
    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    with serve("jira", items=1000, seed=24) as sandbox:
        config = sandbox_config(sandbox, "jira", rank=False, first_write="overwrite")
        refresh(config, engine, full=True)
        plan = plan_writeback(config, engine)
        items = {c.external_id for c in plan.changes}
        assert len(items) > 40
        sandbox.set_faults(rate_limit=30)
        result = apply_writeback(config, engine, plan)
        sandbox.set_faults(rate_limit=None)
        assert sandbox.stats()["injected"].get("429", 0) > 0
        assert result.calls["jira"].http["throttled"] > 0
        assert result.clean and result.counts()["applied"] == len(plan.changes)
        for external_id in items:
            assert len(api_writes(sandbox, external_id)) == 1
        refresh(config, engine)
        assert plan_writeback(config, engine).changes == []


def test_a_put_resent_after_its_answer_was_lost_never_keeps_a_persons_value_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The edit lands but its answer is a 503; a person saves the field; the client sends the
    same edit again and it lands over theirs. The changelog check writes theirs back."""
    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    with serve("jira", items=300, seed=26) as sandbox:
        config = sandbox_config(sandbox, "jira", rank=False)
        refresh(config, engine, full=True)
        plan = plan_writeback(config, engine)
        change = next(c for c in plan.writes if c.field == "wsjf")
        theirs = 42.0 if as_text("wsjf", 42.0) != change.new_value else 43.0
        send = HttpClient._send
        lost: list[str] = []

        def answer_lost(self: HttpClient, method: str, url: str, *args: Any) -> requests.Response:
            response = send(self, method, url, *args)
            if method == "PUT" and f"/issue/{change.external_id}?" in url and not lost:
                lost.append(url)
                person_sets(sandbox, change.external_id, "wsjf", theirs)
                unavailable = requests.Response()
                unavailable.status_code, unavailable.url = 503, url
                unavailable.headers["Retry-After"] = "0"
                return unavailable
            return response

        monkeypatch.setattr(HttpClient, "_send", answer_lost)
        result = apply_writeback(config, engine, plan)
        assert lost and tracker_value(sandbox, change.external_id, "wsjf") == as_text(
            "wsjf", theirs
        )
        ours = [as_text("wsjf", w["wsjf"]) for w in api_writes(sandbox, change.external_id)]
        assert ours == [change.new_value, change.new_value, as_text("wsjf", theirs)]
        assert result.calls["jira"].restores == 1
        outcome = {(r.key, r.field): r for r in result.results}[(change.key, "wsjf")]
        assert outcome.status == "skipped_conflict"
        assert outcome.error and "their value was written back" in outcome.error
        # Theirs is a conflict from now on, never overwritten by a later run.
        refresh(config, engine)
        again = plan_writeback(config, engine)
        now = {c.external_id: c for c in again.changes if c.field == "wsjf"}
        assert now[change.external_id].outcome.value == "conflict"


def wsjf_orders(plan: Any) -> list[list[str]]:
    return [[item.external_id for item in scope.items] for scope in plan.sources[0].scopes]


def tracker_order(sandbox: Sandbox, items: list[str]) -> list[str]:
    ranks = {t.external_id: t.rank for t in sandbox.ground_truth()}
    return sorted(items, key=ranks.__getitem__)


def test_rank_moves_n_minus_lis_items_and_ends_in_wsjf_order(tmp_path: Path) -> None:
    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    with serve("jira", items=2000, seed=25) as sandbox:
        config = sandbox_config(sandbox, "jira", rank=True, **FIELDS_OFF)
        refresh(config, engine, full=True)
        plan = plan_writeback(config, engine)
        orders = wsjf_orders(plan)
        assert sum(len(order) for order in orders) > 20
        expected = 0
        for wanted in orders:
            position = {item: i for i, item in enumerate(tracker_order(sandbox, wanted))}
            expected += len(wanted) - len(longest_increasing_run([position[i] for i in wanted]))
        assert expected > 0 and len(plan.writes) == expected
        assert all(c.field == RANK for c in plan.changes)

        moved = {c.external_id for c in plan.writes}
        result = apply_writeback(config, engine, plan)
        assert result.clean and result.calls["jira"].moved_items == expected
        assert result.calls["jira"].rank_calls <= expected
        for wanted in orders:
            assert tracker_order(sandbox, wanted) == wanted
        assert plan_writeback(config, engine).changes == []
        refresh(config, engine)
        assert plan_writeback(config, engine).changes == []

        # A person drags the lowest-WSJF item lpm-sync moved in the biggest scope to the top: it
        # stays there. (An item lpm-sync never moved carries no claim: WSJF would order it.)
        wanted = max(orders, key=lambda order: len(moved.intersection(order)))
        person = [item for item in wanted if item in moved][-1]
        p = sandbox.portfolio
        p.set_rank(p.find(person), min(p.rank) - 1000.0, author=7)  # type: ignore[arg-type]
        refresh(config, engine)
        plan = plan_writeback(config, engine)
        assert [(c.external_id, c.outcome.value) for c in plan.changes] == [(person, "conflict")]
        result = apply_writeback(config, engine, plan)
        assert result.counts()["skipped_conflict"] == 1 and result.write_calls == 0
        assert tracker_order(sandbox, wanted)[0] == person


class CountingGate:
    """A stand-in for a Prefect global concurrency limit: counts the requests it admits."""

    def __init__(self) -> None:
        self.admitted = 0

    def admit(self) -> float:
        self.admitted += 1
        return 0.0


def test_every_write_back_request_passes_the_sites_shared_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    with serve("jira", items=300, seed=22) as sandbox:
        config = sandbox_config(sandbox, "jira", first_write="overwrite")
        refresh(config, engine, full=True)
        plan = plan_writeback(config, engine)
        assert plan.writes
        gates: dict[str, CountingGate] = {}

        def gate_of(source: str) -> CountingGate:
            return gates.setdefault(source, CountingGate())

        monkeypatch.setattr("flows.writeback.site_gate", gate_of)
        result = apply_writeback(config, engine, plan)
        assert result.clean
        requests_sent = result.calls["jira"].requests
        assert requests_sent > result.write_calls > 0
        assert gates["jira"].admitted == requests_sent
