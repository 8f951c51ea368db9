"""A JQL subset large enough for sync connectors, evaluated over the portfolio columns.

Supported: `field op value` with = != > >= < <= ~ !~ IN, NOT IN, IS [NOT] EMPTY|NULL; AND, OR,
NOT and parentheses; ORDER BY (at most 7 fields). Fields: project, issuetype/type, key/id,
status, statusCategory, parent, labels, priority, assignee, summary/text, created, updated,
resolved/resolutiondate, statusCategoryChangedDate and every custom field by name, `cf[N]` or
id. Dates take Jira's formats ("yyyy/MM/dd HH:mm", "yyyy-MM-dd HH:mm", "yyyy/MM/dd",
"yyyy-MM-dd"), interpreted in the API user's time zone, relative periods ("-5d", "-4w 2d",
"-30m") and now()/startOfDay()/endOfDay()/startOfWeek()/startOfMonth(). Errors carry Jira's
messages, because connectors surface them to users.
"""

from __future__ import annotations

import math
import operator
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sandbox import lexer
from sandbox.jira_site import FieldDef, JiraSite
from sandbox.lexer import Tok, TokenCursor
from sandbox.portfolio import F_DELETED, F_FLAGGED, Portfolio
from sandbox.process import CATEGORY_LABELS, HEALTH_VALUES, PRIORITIES

Predicate = Callable[[int], bool]
MAX_ORDER_FIELDS = 7
DATE_FORMATS = ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d")


class JqlError(ValueError):
    """A query Jira rejects with 400 and this message."""


class JqlUnbounded(JqlError):
    def __init__(self) -> None:
        super().__init__(
            "Unbounded JQL queries are not allowed here. Please add a search restriction to your "
            "query."
        )


# ---------------------------------------------------------------------- tokens
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>!=|>=|<=|!~|=|>|<|~|\(|\)|,)
      | (?P<word>[^\s"'=!<>~(),]+)
    )""",
    re.VERBOSE,
)


def tokenize(text: str) -> list[Tok]:
    def unexpected(pos: int) -> JqlError:
        return JqlError(
            f"Error in the JQL Query: The character '{text[pos]}' is a reserved JQL character. "
            f"You must enclose it in a string or use the escape '\\u{ord(text[pos]):04x}' "
            "instead. "
            f"(line 1, character {pos + 1})"
        )

    unquote = {"str": lambda raw: re.sub(r"\\(.)", r"\1", raw[1:-1])}
    return lexer.tokenize(text.rstrip(), _TOKEN, unquote, unexpected)


# ---------------------------------------------------------------------- AST
@dataclass(frozen=True, slots=True)
class Value:
    text: str
    quoted: bool = False
    func: str | None = None
    args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Clause:
    field: str
    op: str
    values: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # and | or | not
    args: tuple[Node, ...]


Node = Clause | BoolOp


@dataclass(frozen=True, slots=True)
class Query:
    where: Node | None
    order: tuple[tuple[str, bool], ...]
    """(field, descending)"""


class _Parser(TokenCursor):
    def __init__(self, text: str):
        super().__init__(
            tokenize(text),
            lambda: JqlError(
                "Error in the JQL Query: Expecting more input at the end of the query."
            ),
        )
        self.text = text

    def expect_op(self, op: str) -> None:
        t = self.take()
        if t.kind != "op" or t.text != op:
            raise self.error(t, f"Expecting '{op}' but got '{t.text}'.")

    def error(self, t: Tok, msg: str) -> JqlError:
        return JqlError(f"Error in the JQL Query: {msg} (line 1, character {t.pos + 1})")

    def parse(self) -> Query:
        where = None
        if not self.word("order") and self.peek() is not None:
            where = self.or_expr()
        order: list[tuple[str, bool]] = []
        if self.word("order"):
            self.take()
            if not self.word("by"):
                raise self.error(self.take(), "Expecting 'by' after 'order'.")
            self.take()
            while True:
                name = self.take()
                if name.kind == "op":
                    raise self.error(name, f"Expecting a field name but got '{name.text}'.")
                desc = False
                if self.word("asc", "desc"):
                    desc = self.take().text.lower() == "desc"
                order.append((name.text, desc))
                t = self.peek()
                if t is not None and t.kind == "op" and t.text == ",":
                    self.take()
                    continue
                break
            if len(order) > MAX_ORDER_FIELDS:
                raise JqlError(
                    f"The ORDER BY clause can contain a maximum of {MAX_ORDER_FIELDS} fields."
                )
        t = self.peek()
        if t is not None:
            raise self.error(t, f"Expecting either 'OR' or 'AND' but got '{t.text}'.")
        return Query(where, tuple(order))

    def or_expr(self) -> Node:
        args = [self.and_expr()]
        while self.word("or"):
            self.take()
            args.append(self.and_expr())
        return args[0] if len(args) == 1 else BoolOp("or", tuple(args))

    def and_expr(self) -> Node:
        args = [self.not_expr()]
        while self.word("and"):
            self.take()
            args.append(self.not_expr())
        return args[0] if len(args) == 1 else BoolOp("and", tuple(args))

    def not_expr(self) -> Node:
        t = self.peek()
        if t is not None and t.kind == "word" and t.text.lower() == "not":
            self.take()
            return BoolOp("not", (self.not_expr(),))
        if t is not None and t.kind == "op" and t.text == "(":
            self.take()
            node = self.or_expr()
            self.expect_op(")")
            return node
        return self.clause()

    def clause(self) -> Clause:
        field = self.take()
        if field.kind == "op":
            raise self.error(field, f"Expecting a field name but got '{field.text}'.")
        t = self.take()
        op = t.text.lower()
        if t.kind == "word" and op == "not":
            nxt = self.take()
            if nxt.text.lower() != "in":
                raise self.error(nxt, "Expecting 'IN' after 'NOT'.")
            op = "not in"
        elif t.kind == "word" and op == "is":
            if self.word("not"):
                self.take()
                op = "is not"
        elif t.kind == "word" and op in ("was", "changed"):
            raise self.error(t, f"The operator '{t.text.upper()}' is not supported by this site.")
        elif (t.kind == "word" and op != "in") or (
            t.kind == "op" and op not in ("=", "!=", ">", ">=", "<", "<=", "~", "!~")
        ):
            raise self.error(t, f"Expecting operator but got '{t.text}'.")
        if op in ("in", "not in"):
            head = self.peek()
            if head is not None and head.kind == "word":  # IN openSprints(): a list function
                return Clause(field.text, op, (self.value(),))
            self.expect_op("(")
            values = [self.value()]
            while True:
                nxt = self.take()
                if nxt.kind == "op" and nxt.text == ")":
                    break
                if nxt.kind != "op" or nxt.text != ",":
                    raise self.error(nxt, f"Expecting ',' or ')' but got '{nxt.text}'.")
                values.append(self.value())
            return Clause(field.text, op, tuple(values))
        return Clause(field.text, op, (self.value(),))

    def value(self) -> Value:
        t = self.take()
        if t.kind == "str":
            return Value(t.text, quoted=True)
        if t.kind == "op":
            raise self.error(t, f"Expecting a value but got '{t.text}'.")
        nxt = self.peek()
        if nxt is not None and nxt.kind == "op" and nxt.text == "(":
            self.take()
            args: list[str] = []
            while True:
                a = self.take()
                if a.kind == "op" and a.text == ")":
                    break
                if a.kind == "op" and a.text == ",":
                    continue
                args.append(a.text)
            return Value(t.text, func=t.text.lower(), args=tuple(args))
        return Value(t.text)


def parse(text: str) -> Query:
    return _Parser(text or "").parse()


# ---------------------------------------------------------------------- evaluation
class Compiler:
    """Turns a parsed query into a predicate and a sort key over portfolio indices."""

    def __init__(self, site: JiraSite, now_ms: int | None = None):
        self.site = site
        self.p: Portfolio = site.p
        self.tz = ZoneInfo("Europe/Berlin")
        self.now_ms = now_ms if now_ms is not None else int(time.time() * 1000)

    # -------------------------------------------------------------- entry
    def run(self, query: Query, *, require_bounded: bool) -> list[int]:
        """Live item indices matching `query`, sorted."""
        if query.where is None and require_bounded:
            raise JqlUnbounded()
        pred = self.compile(query.where) if query.where is not None else (lambda i: True)
        flags = self.p.flags
        hits = [i for i in self.candidates(query.where) if not flags[i] & F_DELETED and pred(i)]
        keys = [self.sort_key(name) for name, _ in query.order]
        for (_, desc), key in reversed(list(zip(query.order, keys, strict=True))):
            hits.sort(key=key, reverse=desc)
        return hits

    def candidates(self, where: Node | None) -> Iterable[int]:
        """The indices that can match: where the query ANDs a date range (`updated >= X` in
        every incremental sync), one pass over that column narrows the issues the whole
        predicate is evaluated on, as Jira's index would."""
        for c in _conjuncts(where):
            column = self.date_column(c.field.lower())
            if column is None or c.op not in _RANGE_OPS or len(c.values) != 1:
                continue
            ref, within = self.date_value(c.values[0], c.field), _RANGE_OPS[c.op]
            return [i for i, stamp in enumerate(column) if stamp >= 0 and within(stamp, ref)]
        return range(self.p.n)

    def date_column(self, name: str) -> Any:
        """The stamp column (ms, -1 for none) of a date field, or None for another field."""
        p = self.p
        return {
            "created": p.created,
            "createddate": p.created,
            "updated": p.updated,
            "updateddate": p.updated,
            "resolved": p.resolved,
            "resolutiondate": p.resolved,
            "statuscategorychangeddate": p.status_changed,
        }.get(name)

    def matches(self, query: Query, i: int) -> bool:
        if self.p.flags[i] & F_DELETED:
            return False
        return query.where is None or self.compile(query.where)(i)

    def compile(self, node: Node) -> Predicate:
        if isinstance(node, BoolOp):
            parts = [self.compile(a) for a in node.args]
            if node.op == "and":
                return lambda i: all(f(i) for f in parts)
            if node.op == "or":
                return lambda i: any(f(i) for f in parts)
            inner = parts[0]
            return lambda i: not inner(i)
        return self.clause(node)

    # -------------------------------------------------------------- clauses
    def clause(self, c: Clause) -> Predicate:
        name = c.field.lower()
        p = self.p
        if c.op in ("is", "is not"):
            if len(c.values) != 1 or c.values[0].text.lower() not in ("empty", "null"):
                raise JqlError(f"The operator '{c.op.upper()}' only works with EMPTY or NULL.")
            getter = self.getter(c.field)
            if c.op == "is":
                return lambda i: _empty(getter(i))
            return lambda i: not _empty(getter(i))
        if name in ("project",):
            codes = {self.project_code(v) for v in c.values}
            return self.membership(c.op, lambda i: p.art[i] + 1, codes, "project")
        if name in ("issuetype", "type"):
            codes = {self.type_code(v) for v in c.values}
            return self.membership(c.op, lambda i: p.type_[i], codes, "issuetype")
        if name in ("status",):
            codes = {self.status_code(v) for v in c.values}
            return self.membership(c.op, lambda i: p.status[i], codes, "status")
        if name == "statuscategory":
            cats = {self.category_key(v) for v in c.values}
            return self.membership(
                c.op, lambda i: p.status_of(i).tracker_category, cats, "statusCategory"
            )
        if name in ("key", "issuekey", "id", "issue"):
            return self.key_clause(c)
        if name == "parent" or (not self.site.cloud and name in ("epic link", "parent link")):
            targets = {self.issue_index(v, c.field) for v in c.values}

            def parent_of(i: int) -> int:
                return p.parent[i]

            return self.membership(c.op, parent_of, targets, c.field)
        if name in ("summary", "text", "description"):
            if c.op not in ("~", "!~"):
                raise JqlError(f"The operator '{c.op}' is not supported by the '{c.field}' field.")
            needle = c.values[0].text.lower().strip("*")
            if c.op == "~":
                return lambda i: needle in p.summary(i).lower()
            return lambda i: needle not in p.summary(i).lower()
        column = self.date_column(name)
        if column is not None:
            return self.compare_dates(c, column)
        if name == "labels":
            wanted = {v.text for v in c.values}
            return self.set_membership(c.op, lambda i: set(p.labels(i)), wanted)
        if name == "resolution":
            names = {self.resolution_name(v) for v in c.values}

            def resolution(i: int) -> str:
                if p.resolved[i] < 0:
                    return "unresolved"
                return "done" if p.status_of(i).phase == "done" else "won't do"

            return self.membership(c.op, resolution, names, "resolution")
        if name == "priority":
            codes = {self.priority_code(v) for v in c.values}
            return self.membership(c.op, lambda i: p.priority[i], codes, "priority")
        if name == "assignee":
            users = {self.user_code(v) for v in c.values}
            return self.membership(c.op, lambda i: p.assignee[i], users, "assignee")
        f = self.site.field_named(c.field)
        if f is None or not f.custom:
            raise JqlError(
                f"Field '{c.field}' does not exist or you do not have permission to view it."
            )
        return self.custom_clause(f, c)

    def membership(
        self, op: str, getter: Callable[[int], Any], wanted: set[Any], field: str
    ) -> Predicate:
        if op in ("=", "in"):
            if len(wanted) == 1:
                (only,) = wanted
                return lambda i: getter(i) == only
            return lambda i: getter(i) in wanted
        if op in ("!=", "not in"):
            return lambda i: getter(i) not in wanted
        raise JqlError(f"The operator '{op}' is not supported by the '{field}' field.")

    def set_membership(
        self, op: str, getter: Callable[[int], set[str]], wanted: set[str]
    ) -> Predicate:
        if op in ("=", "in"):
            return lambda i: bool(getter(i) & wanted)
        if op in ("!=", "not in"):
            return lambda i: not getter(i) & wanted
        raise JqlError(f"The operator '{op}' is not supported by the 'labels' field.")

    def key_clause(self, c: Clause) -> Predicate:
        p = self.p
        if c.op in ("=", "in", "!=", "not in"):
            targets = {self.issue_index(v, "key") for v in c.values}
            return self.membership(c.op, lambda i: i, targets, "key")
        target = self.issue_index(c.values[0], "key")
        if c.values[0].text.isdigit():
            ref = p.tracker_id(target)
            return _compare(c.op, lambda i: p.tracker_id(i), ref)
        project, number = p.project(target), p.keynum[target]
        cmp = _compare(c.op, lambda i: p.keynum[i], number)
        return lambda i: p.project(i) == project and cmp(i)

    def compare_dates(self, c: Clause, column: Any) -> Predicate:
        if c.op in ("in", "not in"):
            stamps = {self.date_value(v, c.field) for v in c.values}
            return self.membership(c.op, lambda i: column[i], stamps, c.field)
        if c.op in ("~", "!~"):
            raise JqlError(f"The operator '{c.op}' is not supported by the '{c.field}' field.")
        ref = self.date_value(c.values[0], c.field)

        def get(i: int) -> int | None:
            v: int = column[i]
            return None if v < 0 else v

        return _compare(c.op, get, ref)

    def custom_clause(self, f: FieldDef, c: Clause) -> Predicate:
        p = self.p
        getter = self.getter(f.id)
        if f.kind == "number":
            if c.op in ("in", "not in", "=", "!="):
                nums = {self.number(v, f) for v in c.values}
                return self.membership(c.op, getter, nums, f.name)
            return _compare(c.op, getter, self.number(c.values[0], f))
        if f.kind in ("select", "team", "flag", "sprint", "epiclink", "parentlink"):
            wanted = {v.text.lower() for v in c.values}
            if f.kind == "team":

                def team_keys(i: int) -> set[str]:
                    t = p.team[i]
                    if t < 0:
                        return set()
                    team = p.teams[t]
                    return {team.name.lower(), team.uuid.lower()}

                return self.set_membership(c.op, team_keys, wanted)
            if f.kind == "sprint":
                now = self.now_ms
                states = {
                    {"opensprints": "active", "closedsprints": "closed", "futuresprints": "future"}[
                        v.func
                    ]
                    for v in c.values
                    if v.func in ("opensprints", "closedsprints", "futuresprints")
                }

                def sprint_keys(i: int) -> set[str]:
                    s = p.sprint[i]
                    if s < 0:
                        return set()
                    sprint = p.sprints[s]
                    return {str(s + 1), sprint.name.lower(), sprint.state(now)}

                return self.set_membership(c.op, sprint_keys, wanted | states)
            if f.kind in ("epiclink", "parentlink"):
                targets = {self.issue_index(v, f.name) for v in c.values}
                return self.membership(c.op, lambda i: p.parent[i], targets, f.name)

            def option_keys(i: int) -> set[str]:
                v = getter(i)
                return set() if v is None else {str(v).lower()}

            return self.set_membership(c.op, option_keys, wanted)
        if f.kind == "date":
            column = p.start_day if f.name == "Start date" else p.target_day
            ref = self.date_value(c.values[0], f.name)
            return _compare(c.op, lambda i: column[i] * 86_400_000 if column[i] >= 0 else None, ref)
        raise JqlError(f"The operator '{c.op}' is not supported by the '{f.name}' field.")

    # -------------------------------------------------------------- values
    def getter(self, name: str) -> Callable[[int], Any]:
        """Comparable value of a field for IS EMPTY and custom clauses."""
        p = self.p
        low = name.lower()
        if low in ("resolved", "resolutiondate", "resolution"):
            return lambda i: None if p.resolved[i] < 0 else p.resolved[i]
        if low == "parent":
            return lambda i: None if p.parent[i] < 0 else p.parent[i]
        if low == "labels":
            return lambda i: p.labels(i) or None
        if low == "assignee":
            return lambda i: None if p.assignee[i] < 0 else p.assignee[i]
        if low in ("created", "updated", "summary", "project", "issuetype", "status", "priority"):
            return lambda i: True
        f = self.site.field_named(name)
        if f is None:
            raise JqlError(
                f"Field '{name}' does not exist or you do not have permission to view it."
            )
        if f.kind == "number":
            attr = f.attr
            if attr is None:
                return lambda i: None
            column = p.num[attr]
            return lambda i: None if math.isnan(column[i]) else column[i]
        if f.attr == "health":
            return lambda i: None if p.health[i] < 0 else HEALTH_VALUES[p.health[i]]
        if f.attr == "category":
            return lambda i: None if p.category[i] < 0 else CATEGORY_LABELS[p.category[i]]
        if f.attr == "increment":
            return lambda i: None if p.pi[i] < 0 else p.increments[p.pi[i]].name
        if f.attr == "team":
            return lambda i: None if p.team[i] < 0 else p.teams[p.team[i]].name
        if f.attr == "flagged":
            return lambda i: "Impediment" if p.flags[i] & F_FLAGGED else None
        if f.kind == "sprint":
            return lambda i: None if p.sprint[i] < 0 else p.sprint[i]
        if f.kind in ("epiclink", "parentlink"):
            return lambda i: None if p.parent[i] < 0 else p.parent[i]
        if f.kind == "date":
            days = p.start_day if f.name == "Start date" else p.target_day
            return lambda i: None if days[i] < 0 else days[i]
        if f.kind == "rank":
            ranks = p.rank
            return lambda i: ranks[i]
        return lambda i: None

    def number(self, v: Value, f: FieldDef) -> float:
        try:
            return float(v.text)
        except ValueError:
            raise JqlError(
                f"The value '{v.text}' is not a valid number for the field '{f.name}'."
            ) from None

    def project_code(self, v: Value) -> int:
        text = v.text.strip().lower()
        for code in range(len(self.p.arts) + 1):
            if text in (
                self.p.project_key(code).lower(),
                self.site.project_id(code),
                self.site.project_name(code).lower(),
            ):
                return code
        raise JqlError(f"The value '{v.text}' does not exist for the field 'project'.")

    def type_code(self, v: Value) -> int:
        text = v.text.strip().lower()
        for t in self.p.process.types:
            if text in (t.name.lower(), t.jira_id):
                return t.code
        raise JqlError(f"The value '{v.text}' does not exist for the field 'issuetype'.")

    def status_code(self, v: Value) -> int:
        text = v.text.strip().lower()
        for s in self.p.process.statuses:
            if text in (s.name.lower(), s.jira_id):
                return s.code
        raise JqlError(f"The value '{v.text}' does not exist for the field 'status'.")

    def category_key(self, v: Value) -> str:
        text = v.text.strip().lower()
        table = {
            "to do": "new",
            "new": "new",
            "2": "new",
            "in progress": "indeterminate",
            "indeterminate": "indeterminate",
            "4": "indeterminate",
            "done": "done",
            "complete": "done",
            "3": "done",
        }
        if text not in table:
            raise JqlError(f"The value '{v.text}' does not exist for the field 'statusCategory'.")
        return table[text]

    def resolution_name(self, v: Value) -> str:
        text = v.text.strip().lower()
        if text in ("unresolved", "done", "won't do", "10000", "10001"):
            return {"10000": "done", "10001": "won't do"}.get(text, text)
        raise JqlError(f"The value '{v.text}' does not exist for the field 'resolution'.")

    def priority_code(self, v: Value) -> int:
        text = v.text.strip().lower()
        for k, name in enumerate(PRIORITIES):
            if text in (name.lower(), str(k + 1)):
                return k
        raise JqlError(f"The value '{v.text}' does not exist for the field 'priority'.")

    def user_code(self, v: Value) -> int:
        if v.func == "currentuser":
            return 0
        text = v.text.strip().lower()
        for u in self.p.users:
            if text in (u.account_id.lower(), u.email.lower(), u.email.split("@")[0]):
                return u.code
        raise JqlError(f"The value '{v.text}' does not exist for the field 'assignee'.")

    def issue_index(self, v: Value, field: str) -> int:
        i = self.p.find(v.text)
        if i is None:
            if v.text.strip().isdigit():
                return -2  # an unknown id simply matches nothing
            raise JqlError(f"An issue with key '{v.text}' does not exist for field '{field}'.")
        return i

    def date_value(self, v: Value, field: str) -> int:
        if v.func is not None:
            return self.date_function(v, field)
        text = v.text.strip()
        if re.fullmatch(r"-?\d{10,}", text):
            return int(text)
        period = _period_ms(text)
        if period is not None:
            return self.now_ms + period
        for fmt in DATE_FORMATS:
            try:
                local = datetime.strptime(text, fmt).replace(tzinfo=self.tz)
            except ValueError:
                continue
            return int(local.timestamp() * 1000)
        raise JqlError(
            f"Date value '{text}' for field '{field}' is invalid. Valid formats include: "
            "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period "
            "format e.g. '-5d', '4w 2d'."
        )

    def date_function(self, v: Value, field: str) -> int:
        now = datetime.fromtimestamp(self.now_ms / 1000, self.tz)
        name = v.func or ""
        offset = _period_ms(v.args[0]) if v.args else 0
        if offset is None:
            raise JqlError(f"Incorrect argument '{v.args[0]}' for function '{v.text}'.")
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        if name == "now":
            base = now
        elif name == "startofday":
            base = day
        elif name == "endofday":
            base = day + timedelta(days=1) - timedelta(milliseconds=1)
        elif name == "startofweek":
            base = day - timedelta(days=day.weekday())
        elif name == "startofmonth":
            base = day.replace(day=1)
        else:
            raise JqlError(f"Unable to find JQL function '{v.text}()'.")
        return int(base.timestamp() * 1000) + offset

    # -------------------------------------------------------------- ordering
    def sort_key(self, name: str) -> Callable[[int], Any]:
        p = self.p
        low = name.lower()
        if low in ("key", "issuekey"):
            return lambda i: (p.project_key(p.project(i)), p.keynum[i])
        if low in ("id", "issue"):
            return lambda i: i
        if low in ("created", "createddate"):
            return p.created.__getitem__
        if low in ("updated", "updateddate"):
            return p.updated.__getitem__
        if low in ("resolved", "resolutiondate"):
            return lambda i: (p.resolved[i] < 0, p.resolved[i])
        if low == "rank":
            return p.rank.__getitem__
        if low == "priority":
            return p.priority.__getitem__
        if low == "status":
            return lambda i: p.status_of(i).name
        if low in ("issuetype", "type"):
            return lambda i: p.itype(i).name
        if low == "project":
            return lambda i: p.project_key(p.project(i))
        if low == "summary":
            return p.summary
        f = self.site.field_named(name)
        if f is None:
            raise JqlError(
                f"Field '{name}' does not exist or you do not have permission to view it."
            )
        getter = self.getter(f.id)
        return lambda i: (getter(i) is None, getter(i) if getter(i) is not None else 0)


_RANGE_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def _conjuncts(node: Node | None) -> Iterator[Clause]:
    """The clauses every match must satisfy: those reached from the root through ANDs only."""
    if isinstance(node, Clause):
        yield node
    elif isinstance(node, BoolOp) and node.op == "and":
        for arg in node.args:
            yield from _conjuncts(arg)


def _empty(value: Any) -> bool:
    return value is None or value == () or value == ""


def _compare(op: str, getter: Callable[[int], Any], ref: Any) -> Predicate:
    def ok(i: int) -> bool:
        v = getter(i)
        if v is None:
            return False  # Jira never matches EMPTY with a comparison, not even !=
        if op == "=":
            return bool(v == ref)
        if op == "!=":
            return bool(v != ref)
        if op == ">":
            return bool(v > ref)
        if op == ">=":
            return bool(v >= ref)
        if op == "<":
            return bool(v < ref)
        if op == "<=":
            return bool(v <= ref)
        raise JqlError(f"The operator '{op}' is not supported here.")

    if op not in ("=", "!=", ">", ">=", "<", "<="):
        raise JqlError(f"The operator '{op}' is not supported here.")
    return ok


_PERIOD = re.compile(r"^([+-]?)\s*((?:\d+\s*[wdhm]\s*)+)$")
_UNIT_MS = {"w": 7 * 86_400_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000}


def _period_ms(text: str) -> int | None:
    m = _PERIOD.match(text.strip())
    if not m:
        return None
    total = sum(int(n) * _UNIT_MS[u] for n, u in re.findall(r"(\d+)\s*([wdhm])", m.group(2)))
    return -total if m.group(1) == "-" else total
