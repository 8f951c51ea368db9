"""A WIQL subset for flat work item queries, evaluated over the portfolio.

`SELECT [fields] FROM WorkItems [WHERE ...] [ORDER BY [field] [ASC|DESC], ...]` with
=, <>, >, >=, <, <=, IN, NOT IN, UNDER, NOT UNDER, CONTAINS, NOT CONTAINS, CONTAINS WORDS,
IS EMPTY / IS NOT EMPTY, AND/OR/NOT and parentheses; values are 'strings', numbers, @project,
@today[-n], @me. Without `timePrecision=true` dates compare by day and a literal with a time is
rejected, as the service does; more than 20,000 results fail with VS402337.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sandbox import lexer
from sandbox.ado_site import PROJECT, AdoField, AdoSite, field_named
from sandbox.lexer import Tok, TokenCursor
from sandbox.portfolio import F_DELETED, MS_DAY

MAX_RESULTS = 20_000
SCAN_SLICE = 2_000
"""Items a query scans per hold of the portfolio lock."""
Predicate = Callable[[int], bool]


class WiqlError(ValueError):
    """A query the service rejects with 400: `message` and the exception's type key."""

    def __init__(self, message: str, type_key: str = "WorkItemTrackingQueryInvalidSyntaxException"):
        super().__init__(message)
        self.type_key = type_key


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<field>\[[^\]]+\])
      | (?P<str>'(?:[^']|'')*')
      | (?P<op><>|!=|>=|<=|=|>|<|\(|\)|,|\+|-)
      | (?P<word>[@A-Za-z0-9_.:*]+)
    )""",
    re.VERBOSE,
)


def tokenize(text: str) -> list[Tok]:
    def unexpected(pos: int) -> WiqlError:
        return WiqlError(
            f"TF51006: The query statement contains an unexpected character at position {pos}."
        )

    unquote = {
        "str": lambda raw: raw[1:-1].replace("''", "'"),
        "field": lambda raw: raw[1:-1].strip(),
    }
    return lexer.tokenize(text.strip(), _TOKEN, unquote, unexpected)


@dataclass(frozen=True, slots=True)
class Cond:
    field: AdoField | str
    op: str
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Bool:
    op: str
    args: tuple[Cond | Bool, ...]


@dataclass(frozen=True, slots=True)
class Wiql:
    columns: tuple[AdoField, ...]
    where: Cond | Bool | None
    order: tuple[tuple[AdoField, bool], ...]


@dataclass(frozen=True, slots=True)
class DateLit:
    ms: int
    has_time: bool
    text: str


class _Parser(TokenCursor):
    def __init__(self, text: str, project: str, now_ms: int):
        super().__init__(
            tokenize(text), lambda: WiqlError("TF51006: The query statement is incomplete.")
        )
        self.project = project
        self.now_ms = now_ms

    def expect_word(self, word: str) -> None:
        t = self.take()
        if t.kind != "word" or t.text.lower() != word:
            raise WiqlError(f"TF51006: Expecting '{word.upper()}' but found '{t.text}'.")

    def field(self) -> AdoField:
        t = self.take()
        if t.kind not in ("field", "word"):
            raise WiqlError(f"TF51006: Expecting a field name but found '{t.text}'.")
        f = field_named(t.text)
        if f is None:
            raise WiqlError(
                "TF51005: The query references a field that does not exist. The error is caused "
                f"by «[{t.text}]».",
                "WorkItemTrackingQueryFieldDoesNotExistException",
            )
        return f

    def parse(self) -> Wiql:
        self.expect_word("select")
        columns = [self.field()]
        while (t := self.peek()) is not None and t.kind == "op" and t.text == ",":
            self.take()
            columns.append(self.field())
        self.expect_word("from")
        source = self.take()
        if source.text.lower() != "workitems":
            raise WiqlError(
                f"The sandbox answers flat queries only (FROM WorkItems), not FROM {source.text}.",
                "WorkItemTrackingQueryException",
            )
        where = None
        if self.word("where"):
            self.take()
            where = self.or_expr()
        order: list[tuple[AdoField, bool]] = []
        if self.word("order"):
            self.take()
            self.expect_word("by")
            while True:
                f = self.field()
                desc = False
                if self.word("asc", "desc"):
                    desc = self.take().text.lower() == "desc"
                order.append((f, desc))
                t = self.peek()
                if t is not None and t.kind == "op" and t.text == ",":
                    self.take()
                    continue
                break
        if self.word("asof"):
            self.take()
            self.take()
        if self.peek() is not None:
            raise WiqlError(f"TF51006: Unexpected '{self.peek().text}' at the end of the query.")  # type: ignore[union-attr]
        return Wiql(tuple(columns), where, tuple(order))

    def or_expr(self) -> Cond | Bool:
        args = [self.and_expr()]
        while self.word("or"):
            self.take()
            args.append(self.and_expr())
        return args[0] if len(args) == 1 else Bool("or", tuple(args))

    def and_expr(self) -> Cond | Bool:
        args = [self.not_expr()]
        while self.word("and"):
            self.take()
            args.append(self.not_expr())
        return args[0] if len(args) == 1 else Bool("and", tuple(args))

    def not_expr(self) -> Cond | Bool:
        if self.word("not"):
            self.take()
            return Bool("not", (self.not_expr(),))
        t = self.peek()
        if t is not None and t.kind == "op" and t.text == "(":
            self.take()
            node = self.or_expr()
            close = self.take()
            if close.text != ")":
                raise WiqlError(f"TF51006: Expecting ')' but found '{close.text}'.")
            return node
        return self.condition()

    def condition(self) -> Cond:
        f = self.field()
        t = self.take()
        op = t.text.lower()
        if t.kind == "word":
            if op == "not":
                nxt = self.take().text.lower()
                if nxt not in ("in", "under", "contains"):
                    raise WiqlError(
                        f"TF51006: Expecting IN, UNDER or CONTAINS after NOT, found '{nxt}'."
                    )
                op = f"not {nxt}"
            elif op == "contains" and self.word("words"):
                self.take()
                op = "contains words"
            elif op == "is":
                if self.word("not"):
                    self.take()
                    op = "is not"
                self.expect_word("empty")
                return Cond(f, op, ())
            elif op not in ("in", "under", "contains", "ever"):
                raise WiqlError(f"TF51006: Expecting an operator but found '{t.text}'.")
        elif op == "!=":
            op = "<>"
        if op in ("in", "not in"):
            if self.take().text != "(":
                raise WiqlError("TF51006: Expecting '(' after IN.")
            values = [self.value()]
            while True:
                sep = self.take()
                if sep.text == ")":
                    break
                if sep.text != ",":
                    raise WiqlError(f"TF51006: Expecting ',' or ')' but found '{sep.text}'.")
                values.append(self.value())
            return Cond(f, op, tuple(values))
        return Cond(f, op, (self.value(),))

    def value(self) -> Any:
        t = self.take()
        if t.kind == "str":
            return t.text
        if t.kind == "op" and t.text == "-":
            return -float(self.take().text)
        text = t.text
        low = text.lower()
        if low == "@project":
            return self.project
        if low == "@me":
            return "lpm-sync@example.com"
        if low == "@today":
            day = self.now_ms // MS_DAY
            nxt = self.peek()
            if nxt is not None and nxt.kind == "op" and nxt.text in ("+", "-"):
                sign = 1 if self.take().text == "+" else -1
                day += sign * int(float(self.take().text))
            return DateLit(day * MS_DAY, False, "@today")
        try:
            return float(text)
        except ValueError:
            return text


def parse(text: str, project: str = PROJECT, now_ms: int | None = None) -> Wiql:
    return _Parser(text, project, now_ms if now_ms is not None else int(time.time() * 1000)).parse()


_DATE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


def date_literal(value: Any) -> DateLit | None:
    if isinstance(value, DateLit):
        return value
    if not isinstance(value, str):
        return None
    m = _DATE.match(value.strip())
    if not m:
        for fmt in ("%m/%d/%Y %H:%M", "%m/%d/%Y"):
            try:
                d = datetime.strptime(value.strip(), fmt).replace(tzinfo=UTC)
            except ValueError:
                continue
            return DateLit(int(d.timestamp() * 1000), "%H" in fmt, value)
        return None
    y, mo, da, h, mi, s, frac, _tz = m.groups()
    d = datetime(int(y), int(mo), int(da), int(h or 0), int(mi or 0), int(s or 0), tzinfo=UTC)
    ms = int(d.timestamp() * 1000) + (int((frac or "0")[:3].ljust(3, "0")) if frac else 0)
    return DateLit(ms, h is not None, value)


class Evaluator:
    def __init__(self, site: AdoSite, *, time_precision: bool):
        self.site = site
        self.p = site.p
        self.time_precision = time_precision

    def run(
        self, q: Wiql, top: int | None = None, lock: AbstractContextManager[Any] | None = None
    ) -> list[int]:
        """The ids (indexes) a query selects, in its order.

        With `lock` (the portfolio's), the scan holds it for one slice of items at a time, as a
        real server's query does not stop other requests; each item is read whole within its
        slice (its sort values with it), and the caller takes `asOf` before the scan, so an item
        changed meanwhile has a `System.ChangedDate` after it and the next sync sees it."""
        pred = self.compile(q.where) if q.where is not None else (lambda i: True)
        getters = [self.site.getter(f.ref) for f, _ in q.order]
        hits: list[tuple[list[tuple[int, Any]], int]] = []
        start, scanned = 0, False
        while not scanned:
            with lock or nullcontext():
                flags, end = self.p.flags, min(start + SCAN_SLICE, self.p.n)
                hits += [
                    ([_sortable(g(i)) for g in getters], i)
                    for i in range(start, end)
                    if not flags[i] & F_DELETED and pred(i)
                ]
                start, scanned = end, end >= self.p.n
        for position in reversed(range(len(q.order))):
            hits.sort(key=lambda hit, k=position: hit[0][k], reverse=q.order[position][1])  # type: ignore[misc]
        ids = [i for _, i in hits]
        if top is not None:
            if top > MAX_RESULTS:
                raise WiqlError(
                    f"VS402336: The $top parameter must be less than or equal to {MAX_RESULTS}.",
                    "WorkItemTrackingQueryException",
                )
            return ids[:top]
        if len(ids) > MAX_RESULTS:
            raise WiqlError(
                "VS402337: The number of work items returned exceeds the size limit of "
                f"{MAX_RESULTS}. "
                "Change the query to return fewer items.",
                "WorkItemTrackingQueryResultSizeLimitExceededException",
            )
        return ids

    def compile(self, node: Cond | Bool) -> Predicate:
        if isinstance(node, Bool):
            parts = [self.compile(a) for a in node.args]
            if node.op == "and":
                return lambda i: all(f(i) for f in parts)
            if node.op == "or":
                return lambda i: any(f(i) for f in parts)
            inner = parts[0]
            return lambda i: not inner(i)
        return self.condition(node)

    def condition(self, c: Cond) -> Predicate:
        assert isinstance(c.field, AdoField)
        f = c.field
        getter = self.site.getter(f.ref)
        op = c.op
        if op in ("is", "is not"):
            empty = op == "is"
            return lambda i: (getter(i) in (None, "")) == empty
        if f.type == "dateTime":
            return self.date_condition(f, getter, op, c.values)
        if op in ("under", "not under"):
            prefixes = [str(v).lower() for v in c.values]

            def under(i: int) -> bool:
                path = str(getter(i) or "").lower()
                return any(path == pre or path.startswith(pre + "\\") for pre in prefixes)

            return under if op == "under" else (lambda i: not under(i))
        if op in ("contains", "not contains", "contains words"):
            needle = str(c.values[0]).lower()
            if f.ref == "System.Tags":

                def has(i: int) -> bool:
                    tags = [t.strip().lower() for t in str(getter(i) or "").split(";")]
                    return (
                        needle in tags if op == "contains words" else any(needle in t for t in tags)
                    )
            else:

                def has(i: int) -> bool:
                    return needle in str(getter(i) or "").lower()

            return (lambda i: not has(i)) if op == "not contains" else has
        values = [_normal(v) for v in c.values]
        if op in ("=", "in"):
            wanted = set(values)
            return lambda i: _normal(getter(i)) in wanted
        if op in ("<>", "not in"):
            unwanted = set(values)
            return lambda i: getter(i) is not None and _normal(getter(i)) not in unwanted
        ref = values[0]
        return _compare(op, lambda i: _normal(getter(i)), ref)

    def date_condition(
        self, f: AdoField, getter: Callable[[int], Any], op: str, values: tuple[Any, ...]
    ) -> Predicate:
        lits = []
        for v in values:
            lit = date_literal(v)
            if lit is None:
                raise WiqlError(
                    f"TF51008: The date/time value '{v}' is not valid for field '{f.name}'.",
                    "WorkItemTrackingQueryInvalidDateException",
                )
            if lit.has_time and not self.time_precision:
                raise WiqlError(
                    "You cannot supply a time with the date when running a query using date "
                    "precision. "
                    f"The error is caused by «'{lit.text}'».",
                    "WorkItemTrackingQueryException",
                )
            lits.append(lit.ms)
        if self.time_precision:

            def value(i: int) -> int | None:
                v = getter(i)
                return None if v is None or v < 0 else int(v)

            refs = lits
        else:

            def value(i: int) -> int | None:
                v = getter(i)
                return None if v is None or v < 0 else int(v) // MS_DAY

            refs = [ms // MS_DAY for ms in lits]
        if op in ("=", "in"):
            wanted = set(refs)
            return lambda i: value(i) in wanted
        if op in ("<>", "not in"):
            unwanted = set(refs)
            return lambda i: value(i) is not None and value(i) not in unwanted
        return _compare(op, value, refs[0])


def _normal(v: Any) -> Any:
    if isinstance(v, str):
        low = v.strip().lower()
        try:
            return float(low)
        except ValueError:
            return low
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int | float):
        return float(v)
    return v


def _sortable(v: Any) -> tuple[int, Any]:
    if v is None:
        return (1, 0)
    if isinstance(v, str):
        return (0, v.lower())
    return (0, v)


def _compare(op: str, get: Callable[[int], Any], ref: Any) -> Predicate:
    def ok(i: int) -> bool:
        v = get(i)
        if v is None:
            return False
        try:
            if op == ">":
                return bool(v > ref)
            if op == ">=":
                return bool(v >= ref)
            if op == "<":
                return bool(v < ref)
            if op == "<=":
                return bool(v <= ref)
        except TypeError:
            return False
        return False

    if op not in (">", ">=", "<", "<="):
        raise WiqlError(f"TF51006: The operator '{op}' is not supported here.")
    return ok
