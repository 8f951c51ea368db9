"""What write-back sends, and when it may: value formatting and the conflict rules. Pure.

Values are compared as canonical text, the form the `writeback` ledger stores, so 12.5, 12.50
and "12.5" are one value and a number field's float never looks changed:
  wsjf      the WSJF score rounded to 2 decimals
  progress  whole percent complete, rounded down (100 only when everything is done)
  health    on-track | at-risk | off-track | blocked, through `writeback.health_values` when the
            tracker's options are spelled otherwise; compared ignoring case
  rank      the tracker's own rank value (Jira LexoRank, Azure DevOps StackRank)

For each owned field of each item, with D the desired value, T the tracker's value (as of the
latest sync, or the value lpm-sync wrote when that write is newer than the sync) and L the last
value lpm-sync wrote (from the ledger), the rules are:
  T = D                               nothing to do (whoever put it there)
  L known, T = L                      write D (clears the field when D is empty)
  L known, T != L                     a person changed the field since our write: conflict,
                                      unless --force; nothing when D is empty
  no L, D empty                       nothing (lpm-sync has nothing to say)
  no L, T empty                       write: the first write into an empty field
  no L, T holds a value               a value lpm-sync did not write. `first_write: empty` (the
                                      default) treats it as a person's: conflict unless --force;
                                      `first_write: overwrite` replaces it
Our own writes come back in the next sync as T = L, so they neither count as a person's edit nor
cause another write, and a second run right after the first finds T = D everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Protocol

VALUE_FIELDS = ("wsjf", "health", "progress")
RANK = "rank"
NUMBER_FIELDS = frozenset({"wsjf", "progress"})
WSJF_DECIMALS = 2

FirstWrite = Literal["empty", "overwrite"]


class Outcome(StrEnum):
    write = "write"
    conflict = "conflict"


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str


# --- desired values ---------------------------------------------------------------------------


def desired_wsjf(score: float | None) -> str | None:
    return None if score is None else number_text(round(score, WSJF_DECIMALS))


def desired_progress(fraction: float | None) -> str | None:
    """Whole percent, rounded down so 99.6 % of the work done never shows as 100."""
    if fraction is None:
        return None
    return number_text(float(math.floor(fraction * 100 + 1e-9)))


def desired_health(health: str | None, values: Mapping[str, str]) -> str | None:
    """The tracker's spelling of an LPM health value (`writeback.health_values`)."""
    if health is None:
        return None
    return values.get(health, health)


# --- canonical text ---------------------------------------------------------------------------


def number_text(value: float) -> str:
    """A number's shortest exact text without a trailing `.0` (12.0 -> "12", 12.5 -> "12.5")."""
    if value == 0:
        return "0"
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def as_text(field: str, value: Any) -> str | None:
    """A tracker or desired value in the canonical form compared and stored in the ledger."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return number_text(float(value)) if math.isfinite(value) else str(value)
    text = str(value).strip()
    if field in NUMBER_FIELDS or field == RANK:
        try:
            number = float(text)
        except ValueError:
            return text
        return number_text(number) if math.isfinite(number) else text
    return text


def same(field: str, left: str | None, right: str | None) -> bool:
    if left is None or right is None:
        return left is right
    if field == "health":
        return left.casefold() == right.casefold()
    return left == right


def typed(field: str, text: str | None) -> Any:
    """The value to send for a canonical text: a number for number fields, else the text."""
    if text is None:
        return None
    if field in NUMBER_FIELDS:
        return float(text)
    return text


def shown(text: str | None) -> str:
    return "(empty)" if text is None else text


# --- the rules --------------------------------------------------------------------------------


def decide(
    field: str,
    *,
    desired: str | None,
    tracker: str | None,
    last: str | None,
    written: bool,
    first_write: FirstWrite = "empty",
    force: bool = False,
) -> Decision | None:
    """Write, conflict, or None (nothing to do) for one field of one item; see the module."""
    if same(field, tracker, desired):
        return None
    if written:
        if same(field, tracker, last):
            if desired is None:
                return Decision(Outcome.write, "no value any more: clears lpm-sync's last write")
            return Decision(Outcome.write, "new value")
        if desired is None:
            return None
        reason = f"changed in the tracker since lpm-sync wrote {shown(last)}"
        return _conflict(reason, force)
    if desired is None:
        return None
    if tracker is None:
        return Decision(Outcome.write, "first write (the field is empty)")
    if first_write == "overwrite":
        return Decision(
            Outcome.write, "first write over a value lpm-sync did not write (first_write)"
        )
    return _conflict("holds a value lpm-sync did not write (first_write: empty)", force)


def rank_conflict(*, tracker: str | None, last: str | None, written: bool) -> bool:
    """Whether a person moved an item since lpm-sync last ranked it (its rank value changed).

    Items lpm-sync never moved carry no claim: enabling `rank` hands their order to WSJF."""
    return written and not same(RANK, tracker, last)


def _conflict(reason: str, force: bool) -> Decision:
    if force:
        return Decision(Outcome.write, f"{reason}; overwritten (--force)")
    return Decision(Outcome.conflict, reason)


# --- what a changelog says of our edits -------------------------------------------------------


class Edit(Protocol):
    """One change of a write-back field in a tracker's changelog (canonical values or not)."""

    @property
    def attribute(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def ours(self) -> bool:
        """Made by lpm-sync's API user (where the changelog cannot tell: set the value ours)."""

    @property
    def old(self) -> str | None: ...
    @property
    def new(self) -> str | None: ...


@dataclass(frozen=True)
class Landing:
    """What the changelog says of our edit of one field (`landing`)."""

    landed: bool = False
    """An edit of ours set the value."""
    overwrote: bool = False
    """...over another value than the one we meant to replace: a person's (`victim`)."""
    victim: str | None = None
    ours_now: bool = False
    """Nobody changed the field after our last edit of it."""
    at: datetime | None = None
    """When our last edit of the field was made (the tracker's clock)."""
    theirs: bool = False
    """A person set the very value we meant to set: with no edit of ours, ours changed nothing
    (Jira records no change that sets the value already there)."""


def landing(edits: Iterable[Edit], field: str, before: str | None, after: str | None) -> Landing:
    """Our edits setting `field` to `after` among `edits` (oldest first), each checked against
    the value it should have replaced: `before` for the first, `after` for any later one (a
    resent edit). One that replaced another value replaced a person's.

    Jira has no conditional edit, so this is how an edit over a person's value is found after
    the fact: by the apply right after a batch, or from the synced history when the apply was
    killed before its check (warehouse/writeback.py)."""
    expected, found = before, Landing()
    for edit in edits:
        if edit.attribute != field:
            continue
        if edit.ours and same(field, as_text(field, edit.new), after):
            old = as_text(field, edit.old)
            if not same(field, old, expected):
                found = replace(found, overwrote=True, victim=old)
            found = replace(found, landed=True, ours_now=True, at=edit.at)
            expected = after
        else:
            theirs = found.theirs or same(field, as_text(field, edit.new), after)
            found = replace(found, ours_now=False, theirs=theirs)
    return found


def overwrote(victim: str | None, ours: str | None) -> str:
    """The ledger's account of an edit of ours that replaced a person's value."""
    return (
        f"a person set {shown(victim)} between lpm-sync's read and its edit to "
        f"{shown(ours)}, which replaced it"
    )
