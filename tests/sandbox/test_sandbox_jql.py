"""The JQL subset: what connectors send is understood, the rest is refused as Jira does."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from sandbox.jira_site import JiraSite
from sandbox.jql import Compiler, JqlError, JqlUnbounded, parse
from sandbox.portfolio import Portfolio

ANCHOR = datetime(2026, 11, 20, 14, 5, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture(scope="module")
def site() -> JiraSite:
    return JiraSite(Portfolio.generate("jira", 1500, seed=5, anchor=ANCHOR), "http://jira.test")


def run(site: JiraSite, jql: str, *, bounded: bool = True) -> list[int]:
    return Compiler(site, now_ms=site.p.anchor_ms).run(parse(jql), require_bounded=bounded)


def test_project_issuetype_and_boolean_logic(site: JiraSite) -> None:
    p = site.p
    epics = run(site, 'project = PORT AND issuetype = "Portfolio Epic"')
    assert epics and all(p.itype(i).name == "Portfolio Epic" for i in epics)
    mixed = run(site, "project in (PAY, MOB) AND (issuetype = Story OR type = Bug)")
    assert mixed and all(
        p.project_key(p.project(i)) in ("PAY", "MOB") and p.itype(i).name in ("Story", "Bug")
        for i in mixed
    )
    not_stories = run(site, "project = PAY AND NOT issuetype = Story")
    assert not_stories and all(p.itype(i).name != "Story" for i in not_stories)
    assert set(run(site, "project = pay")) == set(run(site, f"project = {site.project_id(1)}"))
    everything = run(site, "project in (PORT, PAY, MOB, DATA)")
    assert len(everything) == p.n - len(p.deleted), "deleted issues are gone from search"


def test_keys_ids_and_order_by(site: JiraSite) -> None:
    p = site.p
    ordered = run(site, "project = PAY ORDER BY key ASC")
    numbers = [p.keynum[i] for i in ordered]
    assert numbers == sorted(numbers)
    desc = run(site, "project = PAY ORDER BY created DESC, key")
    assert [p.created[i] for i in desc] == sorted((p.created[i] for i in desc), reverse=True)
    first = ordered[0]
    assert run(site, f"key = {p.key(first)}") == [first]
    assert run(site, f"id = {p.tracker_id(first)}") == [first]
    assert (
        run(site, f'issuekey in ("{p.key(first)}", {p.key(ordered[1])}) ORDER BY key')
        == ordered[:2]
    )
    after = run(site, f"project = PAY AND key > {p.key(ordered[10])} ORDER BY key")
    assert after == ordered[11:]
    ranked = run(site, "project = PORT ORDER BY Rank ASC")
    assert [p.rank[i] for i in ranked] == sorted(p.rank[i] for i in ranked)


def test_dates_are_minutes_in_the_users_time_zone(site: JiraSite) -> None:
    p = site.p
    i = run(site, "project = PAY ORDER BY updated DESC")[5]
    local = datetime.fromtimestamp(p.updated[i] / 1000, BERLIN)
    minute = local.strftime("%Y/%m/%d %H:%M")
    hits = run(site, f'project = PAY AND updated >= "{minute}"')
    assert i in hits
    cutoff = int(local.replace(second=0, microsecond=0).timestamp() * 1000)
    assert all(p.updated[j] >= cutoff for j in hits)
    dashed = run(site, f"project = PAY AND updated >= '{local.strftime('%Y-%m-%d %H:%M')}'")
    assert dashed == hits
    day = run(site, f'created >= "{local.strftime("%Y/%m/%d")}" AND project = PAY')
    assert all(
        p.created[j]
        >= int(local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000)
        for j in day
    )
    relative = run(site, "project = PAY AND updated >= -30d")
    assert all(p.updated[j] >= p.anchor_ms - 30 * 86_400_000 for j in relative)
    assert run(site, "project = PAY AND updated >= startOfDay(-30d)")


def test_custom_fields_by_name_and_cf_id(site: JiraSite) -> None:
    p = site.p
    cf = site.cf["Story point estimate"]
    number = cf.removeprefix("customfield_")
    by_name = run(site, '"Story point estimate" >= 8 AND project = PAY')
    assert by_name == run(site, f"cf[{number}] >= 8 AND project = PAY")
    assert all((p.value("estimate", i) or 0) >= 8 for i in by_name)
    empty = run(site, '"Story point estimate" IS EMPTY AND issuetype = Bug')
    assert empty and all(p.value("estimate", i) is None for i in empty)
    pi = p.increments[p.current_pi].name
    current = run(site, f'"Program Increment" = "{pi}"')
    assert current and all(p.pi[i] == p.current_pi for i in current)
    team = p.teams[0].name
    assert all(p.team_name(i) == team for i in run(site, f'Team = "{team}"'))


@pytest.mark.parametrize(
    ("jql", "message"),
    [
        ("order by key desc", "Unbounded JQL queries are not allowed here"),
        ("", "Unbounded JQL queries are not allowed here"),
        ("project = NOPE", "The value 'NOPE' does not exist for the field 'project'."),
        ("nonsense = 1", "Field 'nonsense' does not exist or you do not have permission"),
        ('updated >= "20/11/2026"', "Date value '20/11/2026' for field 'updated' is invalid"),
        ("project = PAY AND", "Error in the JQL Query"),
        ("project = PAY order by a, b, c, d, e, f, g, h", "maximum of 7 fields"),
        ("issuetype = Epic", "The value 'Epic' does not exist for the field 'issuetype'."),
    ],
)
def test_errors_say_what_jira_says(site: JiraSite, jql: str, message: str) -> None:
    with pytest.raises(JqlError, match=message.replace("(", r"\(").replace(".", r"\.")):
        run(site, jql)


def test_unbounded_is_allowed_where_jira_allows_it(site: JiraSite) -> None:
    with pytest.raises(JqlUnbounded):
        run(site, "ORDER BY key")
    assert len(run(site, "ORDER BY key", bounded=False)) == site.p.n - len(site.p.deleted)


def test_resolution_and_sprint_functions(site: JiraSite) -> None:
    p = site.p
    open_items = run(site, "project = PAY AND resolution = Unresolved")
    assert open_items and all(p.resolved[i] < 0 for i in open_items)
    done = run(site, "project = PAY AND resolution = Done")
    assert done and all(p.status_of(i).phase == "done" for i in done)
    active = run(site, "project = PAY AND Sprint in openSprints()")
    assert active and all(p.sprints[p.sprint[i]].state(p.anchor_ms) == "active" for i in active)


@pytest.mark.parametrize(
    "where",
    [
        'project in (PAY, MOB) AND updated >= "{mid}"',
        '(project = PAY AND (issuetype = Story AND created < "{mid}")) AND updated > "{early}"',
        'updated >= "{mid}" OR project = PORT',
        'NOT updated < "{mid}" AND project = DATA',
        'resolved <= "{mid}" AND project in (PORT, PAY, MOB, DATA)',
    ],
)
def test_date_ranges_anded_at_the_top_narrow_without_changing_the_answer(
    site: JiraSite, where: str
) -> None:
    """Date ranges are narrowed by one pass over their column; the hits equal evaluating the
    whole predicate on every issue, for ranges inside ANDs and those under OR or NOT alike."""
    stamps = sorted(site.p.updated)
    early, mid = (
        datetime.fromtimestamp(stamps[len(stamps) * k // 4] / 1000, BERLIN).strftime(
            "%Y/%m/%d %H:%M"
        )
        for k in (1, 2)
    )
    query = parse(where.format(mid=mid, early=early))
    compiler = Compiler(site, now_ms=site.p.anchor_ms)
    everywhere = [i for i in range(site.p.n) if compiler.matches(query, i)]
    assert 0 < len(everywhere) < site.p.n
    assert compiler.run(query, require_bounded=True) == everywhere
