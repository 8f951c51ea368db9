"""The chaos harness: both sandbox trackers misbehaving and edited by people, the pipeline run
again and again in a child process that is SIGKILLed at random points, then the invariants.

The sandboxes live in this process, so their ground truth and changelogs are read directly. Each
cycle runs `python -m tests.chaos.driver` (the plain steps of `portfolio_run`, or the real flow
with `--prefect`); a seeded RNG decides which cycles are killed, in which step and how long after
it began. Between cycles a 429 burst may start or stop. After the last cycle the mutators stop,
faults are switched off and two clean cycles run: the first converges, the second must find
nothing left to write. Then `invariants.check` compares everything with the trackers. With
`check_every_cycle`, `invariants.check_between` runs after every cycle too (what must hold while
people keep editing: nothing duplicated, invented or overwritten, every complete cycle settled).
"""

from __future__ import annotations

import base64
import json
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import yaml
from sqlalchemy import Engine, func, select

from flows.demo import ADO_SOURCE, JIRA_SOURCE, demo_config
from sandbox.process import HEALTH_VALUES
from sandbox.server import Sandbox, serve
from tests.chaos.invariants import Findings, check, check_between
from warehouse import models
from warehouse.db import open_warehouse

ROOT = Path(__file__).resolve().parents[2]
PLAIN_PHASES = (f"sync {JIRA_SOURCE}", f"sync {ADO_SOURCE}", "rollup", "writeback", "report")
CYCLE_TIMEOUT = 600.0
"""A cycle that has not finished by then hangs: that is a failure, not a slow run. (A flow run
with a 429 burst and the report took over 300 s on two cores shared by a dozen busy processes.)"""


@dataclass(frozen=True)
class Settings:
    cycles: int = 20
    jira_items: int = 300
    ado_items: int = 150
    seed: int = 10
    kill_share: float = 1 / 3
    prefect_cycles: int = 0
    """How many cycles (spread over the run) go through the real `portfolio_run` flow."""
    fault_rate: float = 0.05
    drop_rate: float = 0.02
    burst_rate_limit: float = 30.0
    """Requests per second allowed during a 429 burst."""
    burst_share: float = 0.3
    mutation_interval: float = 0.4
    """Seconds between two human edits, per tracker, while cycles run."""
    owned_edit_interval: float = 1.0
    """Seconds between two more human edits, per tracker, of a field lpm-sync writes (the
    mutator makes few of those; these are the edits write-back must never overwrite)."""
    report_every: int = 1
    """The report step runs in every n-th cycle (and in each cycle to be killed in it)."""
    warehouse_url: str | None = None
    """Default: SQLite in the work directory."""
    check_every_cycle: bool = True
    """Also check the invariants that hold mid-run after each cycle, not only at the end."""


@dataclass
class Cycle:
    number: int
    mode: str
    killed_in: str | None
    exit_code: int | None
    seconds: float
    burst: bool
    steps: dict[str, float] = field(default_factory=dict)
    """Seconds spent in each step (from the child's `phase` lines)."""
    violations: list[str] = field(default_factory=list)
    """Violations first seen by the check after this cycle (`kind: problem`)."""


@dataclass
class Outcome:
    settings: Settings
    cycles: list[Cycle]
    findings: Findings
    stats: dict[str, dict[str, Any]]
    mutations: dict[str, Counter[str]]
    writeback: Counter[str]
    last_cycle_writes: list[str]
    """The writes the second clean cycle applied (`source id.field = value: note`): none when
    the runs converged."""
    seconds: float
    checks: int
    """How many times the invariants were checked (after cycles, and at the end)."""
    logs: list[Path] = field(default_factory=list)

    @property
    def kills(self) -> int:
        return sum(1 for c in self.cycles if c.killed_in is not None)

    def figures(self) -> dict[str, Any]:
        injected: Counter[str] = Counter()
        requests = 0
        for stats in self.stats.values():
            injected.update(stats["injected"])
            requests += stats["requests"]
        return {
            "cycles": len(self.cycles),
            "prefect_cycles": sum(1 for c in self.cycles if c.mode == "prefect"),
            "kills": self.kills,
            "kills_by_step": dict(Counter(c.killed_in for c in self.cycles if c.killed_in)),
            "burst_cycles": sum(1 for c in self.cycles if c.burst),
            "requests": requests,
            "faults_injected": dict(injected),
            "items": self.findings.items,
            "objectives": self.findings.objectives,
            "deleted": self.findings.deleted,
            "human_edits": self.findings.human_edits,
            "human_edits_to_written_fields": self.findings.human_edits_to_owned_fields,
            "mutations": {name: dict(c) for name, c in self.mutations.items()},
            "transitions_checked": self.findings.transitions_checked,
            "lpm_field_writes": self.findings.lpm_writes,
            "lpm_rank_changes": self.findings.rank_moves,
            "ledger": dict(self.writeback),
            "conflicts": self.findings.conflicts_recorded,
            "overwrites_undone": self.findings.overwrites_undone,
            "aba_restores": self.findings.aba_restores,
            "same_value_races": self.findings.same_value_races,
            "writes_in_last_clean_cycle": len(self.last_cycle_writes),
            "lost": self.findings.lost,
            "duplicated": self.findings.duplicated,
            "overwritten": self.findings.overwritten,
            "invariant_checks": self.checks,
            "violations": sum(len(v) for v in self.findings.violations.values()),
            "seconds": round(self.seconds, 1),
        }


class Chaos:
    """Both sandboxes, a config and a warehouse in `workdir`; `run()` does the whole thing."""

    def __init__(self, settings: Settings, workdir: Path, prefect_api: str | None = None):
        self.settings = settings
        self.workdir = workdir
        self.prefect_api = prefect_api
        self.rng = random.Random(f"chaos:{settings.seed}")
        self.sandboxes: dict[str, Sandbox] = {}
        self.config_path = workdir / "lpm.yaml"
        self.report_dir = workdir / "report"
        self.logs: list[Path] = []
        self._stack = ExitStack()
        self._durations: dict[str, list[float]] = {}
        """Seconds each step took in the cycles so far (where to aim a kill)."""

    def __enter__(self) -> Chaos:
        s = self.settings
        enter = self._stack.enter_context
        jira = enter(
            serve(
                "jira",
                items=s.jira_items,
                seed=s.seed,
                fault_rate=s.fault_rate,
                drop_rate=s.drop_rate,
            )
        )
        ado = enter(
            serve(
                "azure_devops",
                items=s.ado_items,
                seed=s.seed + 1,
                fault_rate=s.fault_rate,
                drop_rate=s.drop_rate,
            )
        )
        self.sandboxes = {JIRA_SOURCE: jira, ADO_SOURCE: ado}
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = demo_config(jira, ado, self.workdir)
        for source in config["sources"]:
            # The sandboxes' health fields have no "blocked" option.
            source["writeback"]["health_values"] = {"blocked": "off-track"}
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.env = {**os.environ, **jira.env(JIRA_SOURCE), **ado.env(ADO_SOURCE)}
        self.env["PYTHONPATH"] = str(ROOT)
        self.env.pop("PREFECT_API_URL", None)
        if s.warehouse_url:
            self.env["LPM_WAREHOUSE_URL"] = s.warehouse_url
        if self.prefect_api:
            self.env["PREFECT_API_URL"] = self.prefect_api
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def warehouse_url(self) -> str:
        return self.settings.warehouse_url or str(
            yaml.safe_load(self.config_path.read_text())["warehouse"]["url"]
        )

    def secrets(self) -> dict[str, str]:
        """The credentials every run used (the sandboxes' generated tokens), and the Basic
        auth header values made of them."""
        jira, ado = self.sandboxes[JIRA_SOURCE], self.sandboxes[ADO_SOURCE]
        return {
            "jira token": jira.token,
            "jira basic": base64.b64encode(f"{jira.email}:{jira.token}".encode()).decode(),
            "ado pat": ado.pat,
            "ado basic": base64.b64encode(f":{ado.pat}".encode()).decode(),
        }

    def leaks(self, *elsewhere: Path) -> list[str]:
        """Every file the runs left (cycle logs, warehouse, report, and `elsewhere`, e.g. the
        Prefect database) that holds a secret."""
        secrets = {name: value.encode() for name, value in self.secrets().items()}
        found = []
        for path in [*sorted(self.workdir.rglob("*")), *elsewhere]:
            if path.is_file():
                data = path.read_bytes()
                found += [
                    f"{path.name}: {name}" for name, value in secrets.items() if value in data
                ]
        return found

    def _typical(self, step: str) -> float:
        """The median time of a step in complete runs so far (1 s before there is one)."""
        seen = self._durations.get(step)
        return _median(seen) if seen else 1.0

    # --- the run ------------------------------------------------------------------------------

    def run(self, progress: Callable[[Cycle], None] | None = None) -> Outcome:
        """All cycles, the clean ones and the final check; `progress` sees each cycle done."""
        s = self.settings
        started = time.perf_counter()
        prefect_at = _spread(s.prefect_cycles, s.cycles) if self.prefect_api else set()
        killed = self.rng.sample(range(s.cycles), round(s.cycles * s.kill_share))
        # Every step gets its share of the kills: the steps in rounds, each round shuffled.
        steps = [step for _ in killed for step in self.rng.sample(PLAIN_PHASES, len(PLAIN_PHASES))]
        targets = dict(zip(sorted(killed), steps, strict=False))
        editors = [
            _OwnedFieldEditor(sandbox, s.owned_edit_interval, s.seed)
            for sandbox in self.sandboxes.values()
        ]
        for sandbox in self.sandboxes.values():
            sandbox.mutator.start(s.mutation_interval)
        for editor in editors:
            editor.start()
        cycles = []
        due: deque[str] = deque()
        """Kills not done yet: a cycle that ends before its kill moment passes it on."""
        between = _Between(self)
        try:
            for number in range(s.cycles):
                burst = self.rng.random() < s.burst_share
                rate = s.burst_rate_limit if burst else None
                for sandbox in self.sandboxes.values():
                    sandbox.set_faults(rate_limit=rate)
                if number in targets:
                    due.append(targets[number])
                target = due[0] if due else None
                prefect = number in prefect_at
                report = number % s.report_every == 0 or target == "report"
                cycle = self.cycle(number, target, prefect=prefect, burst=burst, report=report)
                if cycle.killed_in is not None and due:
                    due.popleft()
                if s.check_every_cycle:
                    between.check(cycle)
                cycles.append(cycle)
                if progress is not None:
                    progress(cycle)
        finally:
            for editor in editors:
                editor.stop()
            for sandbox in self.sandboxes.values():
                sandbox.mutator.stop()
            between.close()
        for sandbox in self.sandboxes.values():
            sandbox.set_faults(fault_rate=0.0, drop_rate=0.0, rate_limit=None)
        cycles.append(self.cycle(s.cycles, None, prefect=False, burst=False, report=False))
        engine = open_warehouse(self.warehouse_url)
        try:
            before = _applied(engine)
            cycles.append(self.cycle(s.cycles + 1, None, prefect=False, burst=False, report=True))
            last_writes = [write for key, write in _applied(engine).items() if key not in before]
            findings = between.merged_into(check(engine, self.sandboxes))
            ledger = _ledger(engine)
        finally:
            engine.dispose()
        return Outcome(
            settings=s,
            cycles=cycles,
            findings=findings,
            stats={name: sb.stats() for name, sb in self.sandboxes.items()},
            mutations={
                name: Counter(m.action for m in sb.mutator.log)
                for name, sb in self.sandboxes.items()
            },
            writeback=ledger,
            last_cycle_writes=last_writes,
            seconds=time.perf_counter() - started,
            checks=between.checks + 1,
            logs=list(self.logs),
        )

    def cycle(
        self, number: int, target: str | None, *, prefect: bool, burst: bool, report: bool
    ) -> Cycle:
        """One child run; with a `target` step, SIGKILL it at a random moment of that step (a
        flow run, whose steps the harness cannot see: at a random moment of the run)."""
        command = [sys.executable, "-m", "tests.chaos.driver", "--config", str(self.config_path)]
        if report or prefect:
            command += ["--report", str(self.report_dir)]
        if prefect:
            command.append("--prefect")
        log = self.workdir / f"cycle-{number:03d}.log"
        self.logs.append(log)
        kill = target is not None
        if prefect:
            target = None
        if prefect:
            delay = self.rng.uniform(5.0, 30.0)
        else:  # a moment inside the step, however long it usually takes
            delay = self.rng.uniform(0.0, self._typical(target) if target else 1.0)
        started = time.perf_counter()
        with log.open("wb") as stderr:
            child = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=stderr
            )
            assert child.stdout is not None
            lines = _lines(child.stdout)
            killed_in = None
            phase = "start"
            steps: dict[str, float] = {}
            entered = started
            deadline = started + CYCLE_TIMEOUT
            kill_at = started + delay if kill and prefect else None
            while child.poll() is None or not lines.empty():
                try:
                    line = lines.get(timeout=0.05)
                except queue.Empty:
                    line = None
                if line is not None and line.startswith("phase "):
                    now = time.perf_counter()
                    steps[phase] = now - entered
                    phase, entered = line.removeprefix("phase "), now
                    if phase == target:
                        kill_at = time.perf_counter() + delay
                now = time.perf_counter()
                if kill_at is not None and now >= kill_at and child.poll() is None:
                    child.send_signal(signal.SIGKILL)
                    killed_in = phase
                    kill_at = None
                if now > deadline:
                    child.send_signal(signal.SIGKILL)
                    child.wait()
                    raise AssertionError(
                        f"cycle {number} hung in {phase!r} (log: {log}):\n{_tail(log)}"
                    )
            code = child.wait()
        for step, seconds in steps.items():
            self._durations.setdefault(step, []).append(seconds)
        if killed_in is None and code != 0:
            raise AssertionError(f"cycle {number} failed with exit {code}; see {log}")
        _check_report(self.report_dir, number)
        return Cycle(
            number,
            "prefect" if prefect else "plain",
            killed_in,
            code,
            time.perf_counter() - started,
            burst,
            {name: round(seconds, 2) for name, seconds in steps.items()},
        )


def _tail(log: Path, lines: int = 15) -> str:
    """The end of a cycle's log, for the failure message (a test's work directory may be gone
    by the time someone reads it)."""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


class _Between:
    """`check_between` after each cycle; each violation is kept once, from the first cycle it
    was seen after (a violation still there at the end is counted by the final check)."""

    def __init__(self, chaos: Chaos) -> None:
        self.chaos = chaos
        self.engine: Engine | None = None
        self.checks = 0
        self.seen: dict[tuple[str, str], int] = {}

    def check(self, cycle: Cycle) -> None:
        if self.engine is None:  # opened after the first cycle created the warehouse
            self.engine = open_warehouse(self.chaos.warehouse_url)
        found = check_between(self.engine, self.chaos.sandboxes, killed=cycle.killed_in is not None)
        self.checks += 1
        for kind, problems in found.violations.items():
            for problem in problems:
                if (kind, problem) not in self.seen:
                    self.seen[(kind, problem)] = cycle.number
                    cycle.violations.append(f"{kind}: {problem}")

    def merged_into(self, final: Findings) -> Findings:
        """`final` with the violations seen between cycles only, each marked with its cycle."""
        at_end = {(kind, p) for kind, problems in final.violations.items() for p in problems}
        for (kind, problem), number in self.seen.items():
            if (kind, problem) not in at_end:
                final.add(kind, f"after cycle {number}: {problem}")
        return final

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()


def _check_report(directory: Path, number: int) -> None:
    """A report killed while being written is the previous one or the new one, never a part."""
    html = directory / "portfolio.html"
    if html.exists() and not html.read_bytes().rstrip().endswith(b"</html>"):
        raise AssertionError(f"cycle {number} left a truncated {html}")
    for table in sorted((directory / "data").glob("*.json")):
        try:
            json.loads(table.read_bytes())
        except ValueError as exc:
            raise AssertionError(f"cycle {number} left a truncated {table}: {exc}") from None


class _OwnedFieldEditor:
    """People changing the fields lpm-sync writes (WSJF, health, progress) of random epics,
    capabilities and features, through the tracker's own edit path and under a person's name."""

    def __init__(self, sandbox: Sandbox, interval: float, seed: int) -> None:
        self.portfolio = sandbox.portfolio
        self.interval = interval
        self.rng = random.Random(f"owned-edits:{sandbox.kind}:{seed}")
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="owned-field-editor", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        p, rng = self.portfolio, self.rng
        candidates = [
            i for i in range(p.n) if p.itype(i).level in ("epic", "capability", "feature")
        ]
        while candidates and not self.stopped.wait(self.interval):
            i = rng.choice(candidates)
            attr = rng.choice(("wsjf", "health", "progress"))
            if attr == "wsjf":
                value: Any = round(rng.uniform(0.5, 30.0), 1)
            elif attr == "health":
                value = rng.choice(HEALTH_VALUES)
            else:
                value = float(rng.randrange(0, 101, 5))
            with p.lock:
                if not p.is_deleted(i):
                    p.set_attr(i, attr, value, author=rng.randrange(1, len(p.users)))


def _lines(stream: IO[bytes]) -> queue.Queue[str]:
    """The child's stdout lines, read by a thread so the kill timer never blocks on a read."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for raw in stream:
            lines.put(raw.decode(errors="replace").rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _spread(count: int, total: int) -> set[int]:
    """`count` cycle numbers spread evenly over `total` (the first included)."""
    if count <= 0:
        return set()
    return {round(k * total / count) for k in range(count)}


def _applied(engine: Engine) -> dict[int, str]:
    """The ledger's applied rows: id -> `source id.field = value: note`."""
    ledger, item = models.Writeback.__table__, models.WorkItem.__table__
    source = models.Source.__table__
    query = (
        select(
            ledger.c.id,
            source.c.name,
            item.c.external_id,
            ledger.c.field,
            ledger.c.new_value,
            ledger.c.note,
        )
        .join(item, item.c.id == ledger.c.work_item_id)
        .join(source, source.c.id == item.c.source_id)
        .where(ledger.c.status == "applied")
    )
    with engine.connect() as conn:
        return {
            row.id: f"{row.name} {row.external_id}.{row.field} = {row.new_value!r}: {row.note}"
            for row in conn.execute(query)
        }


def _ledger(engine: Engine) -> Counter[str]:
    ledger = models.Writeback.__table__
    with engine.connect() as conn:
        return Counter(
            {
                status: count
                for status, count in conn.execute(
                    select(ledger.c.status, func.count()).group_by(ledger.c.status)
                )
            }
        )


# --- a Prefect API for the flow cycles --------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def prefect_server(home: Path, timeout: float = 600.0) -> Iterator[str]:
    """A `prefect server` on 127.0.0.1 with its SQLite database in `home`; yields the API URL.
    (It took over 180 s to answer on two cores shared by a dozen busy processes.)"""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    binary = Path(sys.executable).with_name("prefect")
    with (home / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [str(binary), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prefect server did not start: {(home / 'server.log')}")
            time.sleep(0.5)
        yield api
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
