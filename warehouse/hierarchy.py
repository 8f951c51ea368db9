"""The portfolio tree the analytics walk: live items, the parent links they follow, and what breaks.

Live items are those not deleted and not `removed`. An item's link to its parent is followed only
when the parent is live too; otherwise the item becomes a root of its own subtree and is reported.
The tree is walked top-down from the roots with a recursive CTE, so every item is visited once and
a loop can never be followed: items on a parent cycle are never reached from a root. They are
found by pointer jumping among the unreached (each round doubles the steps followed, so log2(n)
set-based rounds), then following the links round each cycle; their links are cut and they are
walked as roots. A depth guard stops any walk at `MAX_DEPTH` levels below its root.

Scratch table `tmp_node` (one row per live item reached), used by every other analytics step:
  id, parent_id (the link followed, NULL for roots), parent_level, level, item_type, status,
  status_category, estimate, the WSJF inputs (business_value, time_criticality, risk_reduction,
  job_size), team, flagged, start_date, target_date, created_at, resolved_at,
  depth (0 = root), is_leaf (1 when no live child), and three values inherited top-down where
  the item has none:
  art (own art, else the nearest ancestor's, else own team), category (else the nearest
  ancestor's, else 'business'), increment (else the nearest ancestor's).

Table `hierarchy_issue` (replaced by every run), one row per item and problem:
  work_item_id, kind, computed_at, related_id (the parent concerned), detail. Kinds:
  cycle             the parent chain leads back to the item; related_id is its parent in the
                    loop. The link is cut and the item rolled up as a root.
  parent_not_found  the item names a parent (detail: its tracker id) the warehouse does not hold;
                    rolled up as a root.
  parent_deleted    the parent was deleted in the tracker; rolled up as a root.
  parent_removed    the parent's status category is `removed`; rolled up as a root.
  depth_limit       more than MAX_DEPTH levels below its root; left out of every roll-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from warehouse.scratch import Scratch

MAX_DEPTH = 64
"""Levels below a root the walk follows; the SAFe tree has five."""

_CARRIED = (
    "parent_id, level, item_type, status, status_category, estimate, business_value,"
    " time_criticality, risk_reduction, job_size, team, flagged, start_date, target_date,"
    " created_at, resolved_at"
)
_ORPHAN_KINDS = ("parent_not_found", "parent_deleted", "parent_removed")


@dataclass(frozen=True)
class HierarchyCounts:
    items: int
    cycles: int
    orphans: int
    too_deep: int


def build_tree(scratch: Scratch, now: datetime) -> HierarchyCounts:
    """Create `tmp_node` and write `hierarchy_issue`; returns what was found."""
    _copy_live_items(scratch)
    orphans = _detach_orphans(scratch, now)
    scratch.create(
        "tmp_parent",
        "SELECT DISTINCT parent_id AS id FROM tmp_item WHERE parent_id IS NOT NULL",
        indexes=["id"],
    )
    scratch.declare(
        "tmp_node",
        """id BIGINT, parent_id BIGINT, parent_level VARCHAR(16),
        depth INTEGER, level VARCHAR(16), item_type VARCHAR(255), status VARCHAR(255),
        status_category VARCHAR(16), estimate DOUBLE PRECISION,
        business_value DOUBLE PRECISION, time_criticality DOUBLE PRECISION,
        risk_reduction DOUBLE PRECISION, job_size DOUBLE PRECISION, team VARCHAR(255),
        flagged BOOLEAN, start_date DATE,
        target_date DATE, created_at TIMESTAMP WITH TIME ZONE,
        resolved_at TIMESTAMP WITH TIME ZONE, art VARCHAR(255), category VARCHAR(16),
        increment VARCHAR(255), is_leaf INTEGER""",
    )
    scratch.analyze("tmp_item")
    _walk(scratch, "parent_id IS NULL")
    # Indexed once filled: appending in walk order and sorting once beats a b-tree insert a row.
    scratch.index("tmp_node", ["id"])
    live = scratch.run("SELECT COUNT(*) FROM tmp_item").scalar_one()
    reached = scratch.run("SELECT COUNT(*) FROM tmp_node").scalar_one()
    cycles = 0
    if reached < live:
        cycles = _cut_cycles(scratch, now, live - reached)
        reached = scratch.run("SELECT COUNT(*) FROM tmp_node").scalar_one()
    too_deep = live - reached
    if too_deep:
        scratch.run(
            "INSERT INTO hierarchy_issue (work_item_id, kind, computed_at, related_id, detail)"
            " SELECT i.id, 'depth_limit', :now, i.parent_id, NULL FROM tmp_item i"
            " WHERE NOT EXISTS (SELECT 1 FROM tmp_node n WHERE n.id = i.id)",
            times={"now": now},
        )
    scratch.index("tmp_node", ["depth"])
    scratch.analyze("tmp_node")
    return HierarchyCounts(items=reached, cycles=cycles, orphans=orphans, too_deep=too_deep)


def _copy_live_items(scratch: Scratch) -> None:
    """One pass over `work_item`: the narrow live rows, with the parent link they declare."""
    scratch.declare(
        "tmp_item",
        f"""id {scratch.key} PRIMARY KEY, parent_id BIGINT, missing_parent VARCHAR(64),
        level VARCHAR(16), item_type VARCHAR(255), status VARCHAR(255),
        status_category VARCHAR(16), estimate DOUBLE PRECISION,
        business_value DOUBLE PRECISION, time_criticality DOUBLE PRECISION,
        risk_reduction DOUBLE PRECISION, job_size DOUBLE PRECISION, art VARCHAR(255),
        team VARCHAR(255),
        increment VARCHAR(255), category VARCHAR(16), flagged BOOLEAN, start_date DATE,
        target_date DATE, created_at TIMESTAMP WITH TIME ZONE,
        resolved_at TIMESTAMP WITH TIME ZONE""",
    )
    scratch.run(
        """
        INSERT INTO tmp_item
        SELECT id, parent_id, CASE WHEN parent_id IS NULL THEN parent_external_id END, level,
               item_type, status, status_category, estimate, business_value, time_criticality,
               risk_reduction, job_size, art, team, increment, category, flagged, start_date,
               target_date, created_at, resolved_at
        FROM work_item WHERE deleted_at IS NULL AND status_category <> 'removed'
        """
    )
    scratch.index("tmp_item", ["parent_id"])


def _detach_orphans(scratch: Scratch, now: datetime) -> int:
    """Report items whose parent is unknown or not live, and make them roots."""
    scratch.run(
        "INSERT INTO hierarchy_issue (work_item_id, kind, computed_at, related_id, detail)"
        " SELECT id, 'parent_not_found', :now, NULL, missing_parent FROM tmp_item"
        " WHERE missing_parent IS NOT NULL",
        times={"now": now},
    )
    scratch.run(
        """
        INSERT INTO hierarchy_issue (work_item_id, kind, computed_at, related_id, detail)
        SELECT o.id,
               CASE WHEN p.deleted_at IS NOT NULL THEN 'parent_deleted' ELSE 'parent_removed' END,
               :now, o.parent_id, NULL
        FROM (SELECT i.id, i.parent_id FROM tmp_item i
              WHERE i.parent_id IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM tmp_item t WHERE t.id = i.parent_id)) o
        JOIN work_item p ON p.id = o.parent_id
        """,
        times={"now": now},
    )
    kinds = ", ".join(f"'{kind}'" for kind in _ORPHAN_KINDS)
    scratch.run(
        "UPDATE tmp_item SET parent_id = NULL WHERE id IN"
        f" (SELECT work_item_id FROM hierarchy_issue WHERE kind IN ({kinds}))"
    )
    return int(
        scratch.run(f"SELECT COUNT(*) FROM hierarchy_issue WHERE kind IN ({kinds})").scalar_one()
    )


def _walk(scratch: Scratch, roots: str) -> None:
    """Add to `tmp_node` every item below the given roots, inheriting top-down.

    The anchor casts to TEXT because PostgreSQL wants one column type for both CTE terms.
    """
    scratch.run(
        f"""
        INSERT INTO tmp_node (id, {_CARRIED}, parent_level, depth, art, category, increment,
                              is_leaf)
        WITH RECURSIVE walk(id, {_CARRIED}, parent_level, depth, art, category, increment) AS (
            SELECT id, {_CARRIED}, CAST(NULL AS VARCHAR(16)), 0, CAST(art AS TEXT),
                   CAST(category AS TEXT), CAST(increment AS TEXT)
            FROM tmp_item WHERE {roots}
            UNION ALL
            SELECT c.id, {", ".join(f"c.{column.strip()}" for column in _CARRIED.split(","))},
                   w.level, w.depth + 1, COALESCE(c.art, w.art),
                   COALESCE(c.category, w.category), COALESCE(c.increment, w.increment)
            FROM walk w JOIN tmp_item c ON c.parent_id = w.id
            WHERE w.depth < :max_depth
        )
        SELECT id, {_CARRIED}, parent_level, depth, COALESCE(art, team),
               COALESCE(category, 'business'), increment,
               CASE WHEN EXISTS (SELECT 1 FROM tmp_parent p WHERE p.id = walk.id)
                    THEN 0 ELSE 1 END
        FROM walk
        """,
        {"max_depth": MAX_DEPTH},
    )


def _cut_cycles(scratch: Scratch, now: datetime, unreached: int) -> int:
    """Find the items on parent cycles among those no root reached; cut and walk them."""
    scratch.create(
        "tmp_jump",
        f"""
        SELECT i.id, CAST(i.parent_id AS {scratch.key}) AS hop, i.parent_id
        FROM tmp_item i WHERE NOT EXISTS (SELECT 1 FROM tmp_node n WHERE n.id = i.id)
        """,
        indexes=["id"],
    )
    # Chains leaving the unreached set (too deep below a root) end; the rest run into a cycle.
    scratch.run(
        "UPDATE tmp_jump SET hop = NULL"
        " WHERE NOT EXISTS (SELECT 1 FROM tmp_jump j WHERE j.id = tmp_jump.hop)"
    )
    # After 2^k >= n steps every chain still running stands on a cycle. (A round on SQLite may
    # see hops updated earlier in the same round; that only adds steps.) From those nodes, the
    # parent links lead round each whole cycle; UNION stops the walk where it has been before.
    for _ in range(unreached.bit_length() + 1):
        scratch.run(
            "UPDATE tmp_jump SET hop = (SELECT j.hop FROM tmp_jump j WHERE j.id = tmp_jump.hop)"
            " WHERE hop IS NOT NULL"
        )
    scratch.create(
        "tmp_cycle",
        """
        WITH RECURSIVE ring(id) AS (
            SELECT hop FROM tmp_jump WHERE hop IS NOT NULL
            UNION
            SELECT j.parent_id FROM ring r JOIN tmp_jump j ON j.id = r.id
        )
        SELECT ring.id, j.parent_id FROM ring JOIN tmp_jump j ON j.id = ring.id
        """,
        indexes=["id"],
    )
    scratch.run(
        "INSERT INTO hierarchy_issue (work_item_id, kind, computed_at, related_id, detail)"
        " SELECT id, 'cycle', :now, parent_id, NULL FROM tmp_cycle",
        times={"now": now},
    )
    scratch.run("UPDATE tmp_item SET parent_id = NULL WHERE id IN (SELECT id FROM tmp_cycle)")
    # A cycle item whose only child was the next one in the cycle is a leaf now.
    scratch.run(
        "DELETE FROM tmp_parent WHERE id IN (SELECT id FROM tmp_cycle)"
        " AND NOT EXISTS (SELECT 1 FROM tmp_item c WHERE c.parent_id = tmp_parent.id)"
    )
    _walk(scratch, "id IN (SELECT id FROM tmp_cycle)")
    return int(scratch.run("SELECT COUNT(*) FROM tmp_cycle").scalar_one())
