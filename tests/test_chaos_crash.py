"""Crashes at random moments: a durable run SIGKILLed again and again, then resumed to the end.

tests/crash_app.py runs a durable supervisor (two workers at once, one waiting for an approval)
or a durable workflow (a fan-out, then a join), and writes every model call, tool call and Python
step as `start`/`end` rows to a SQLite file outside the journal. This test launches it, kills it
at a seeded random moment within the time an uninterrupted run takes, reads the journal, and
does it again, several times per run; then lets the run finish. It proves:

- a call or step the journal had recorded when the process died never runs again;
- the run ends with the same output as an uninterrupted one, having done the same work;
- only what was in flight at a kill ran more than once.

By default 2 runs of each scenario, 3 kills each, on SQLite; `pytest -m chaos` kills 100 times
on SQLite and 20 on PostgreSQL. The moments are classified (mid model call, mid tool call,
between a side effect and its journal row, waiting for approval, between steps) and printed.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LABEL = re.compile(r"(?:model|tool|step):[A-Za-z0-9_.:]*[A-Za-z0-9_]")
SEED = int(os.environ.get("CHAOS_SEED", "1"))
_started: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_orphans() -> Iterator[None]:
    yield
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def launch(db: str, scenario: str, effects: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.crash_app", db, scenario, str(effects)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _started.append(proc)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "READY", proc.stderr and proc.stderr.read()
    return proc


def effects(path: Path) -> list[tuple[int, str, str]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT seq, label, phase FROM effects ORDER BY seq").fetchall()


def journaled(db: str, run_id: str) -> set[str]:
    """The labels the journal's recorded outputs show."""
    query = "SELECT output FROM agentflow_steps WHERE run_id = %s AND error IS NULL"
    if db.startswith("sqlite:///"):
        with sqlite3.connect(db.removeprefix("sqlite:///")) as con:
            try:
                rows = con.execute(query.replace("%s", "?"), (run_id,)).fetchall()
            except sqlite3.OperationalError:  # killed before the table was made
                return set()
    else:
        import psycopg
        with psycopg.connect(db) as con:
            rows = con.execute(query, (run_id,)).fetchall()
    return {label for (output,) in rows for label in LABEL.findall(output or "")}


def result_of(proc: subprocess.Popen[str], timeout: float = 90) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return json.loads(next(line for line in out.splitlines() if line.startswith("RESULT ")).removeprefix("RESULT "))


@dataclass
class Kill:
    journal: set[str]      # labels recorded when it struck
    seen: int              # the last effect row written before it
    moment: str
    in_flight: set[str]    # begun, and not recorded


@dataclass
class Crashes:
    moments: Counter[str] = field(default_factory=Counter[str])
    repeated: Counter[str] = field(default_factory=Counter[str])
    runs: int = 0


def moment(rows: list[tuple[int, str, str]], journal: set[str]) -> str:
    phases: dict[str, set[str]] = {}
    for _, label, phase in rows:
        phases.setdefault(label, set()).add(phase)
    open_ = [label for label, p in phases.items() if "end" not in p]
    if any(label.startswith("model:") for label in open_):
        return "mid model call"
    if open_:
        return "mid tool call or step"
    if any(label not in journal for label in phases):
        return "between a side effect and its journal row"
    if "model:deployer:0" in journal and "tool:deploy:1.2" not in phases:
        return "waiting for approval"
    return "between steps" if rows else "before the first step"


def reference(tmp: Path, db: str, scenario: str) -> tuple[str, float, list[str]]:
    path = tmp / f"ref-{scenario}.effects"
    start = time.monotonic()
    output = result_of(launch(db, scenario, path))
    return output, time.monotonic() - start, sorted(label for _, label, phase in effects(path) if phase == "end")


def crash(db: str, scenario: str, path: Path, kills: int, span: float, rng: random.Random, seen: Crashes) -> str:
    """Kill the run `kills` times at random moments, then let it finish; check every kill."""
    record: list[Kill] = []
    for _ in range(kills):
        proc = launch(db, scenario, path)
        time.sleep(rng.uniform(0.0, span))
        if proc.poll() is not None:  # it finished before the moment came
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        rows = effects(path) if path.exists() else []
        journal = journaled(db, f"r-{scenario}")
        begun = {label for _, label, phase in rows if phase == "start"}
        record.append(Kill(journal, rows[-1][0] if rows else 0, moment(rows, journal), begun - journal))
    output = result_of(launch(db, scenario, path))
    rows = effects(path)
    for kill in record:
        seen.moments[kill.moment] += 1
        again = [label for seq, label, phase in rows if seq > kill.seen and phase == "start" and label in kill.journal]
        assert again == [], f"journaled before a kill ({kill.moment}), then run again: {again}"
    starts = Counter(label for _, label, phase in rows if phase == "start")
    repeated = {label: n - 1 for label, n in starts.items() if n > 1}
    assert set(repeated) <= set().union(*(k.in_flight for k in record)), repeated  # only what a kill cut short
    seen.repeated.update(repeated)
    seen.runs += 1
    return output


def check(tmp: Path, url: str, scenarios: dict[str, tuple[int, int]]) -> Crashes:
    """`scenarios`: name -> (runs, kills per run). `url` is a database URL with {} for its name."""
    seen = Crashes()
    rng = random.Random(SEED)
    for scenario, (runs, kills) in scenarios.items():
        output, seconds, work = reference(tmp, url.format(f"ref_{scenario}"), scenario)
        startup = 1.0  # the program's own start, before the run begins, is not worth killing it in
        for n in range(runs):
            path = tmp / f"{scenario}-{n}.effects"
            got = crash(url.format(f"{scenario}_{n}"), scenario, path, kills, max(seconds - startup, 0.3), rng, seen)
            assert got == output
            assert sorted(set(label for _, label, phase in effects(path) if phase == "end")) == sorted(set(work))
    print(f"\n{sum(seen.moments.values())} kills in {seen.runs} runs: "
          + ", ".join(f"{k} {v}" for k, v in seen.moments.most_common())
          + f"; calls run again (in flight at a kill): {sum(seen.repeated.values())}")
    return seen


def test_durable_runs_killed_at_random_moments_resume_and_repeat_nothing_recorded(tmp_path: Path) -> None:
    seen = check(tmp_path, f"sqlite:///{tmp_path}/{{}}.db", {"supervisor": (2, 3), "workflow": (2, 3)})
    assert sum(seen.moments.values()) >= 6  # most moments came before the run ended


@pytest.mark.chaos
def test_a_hundred_kills_on_sqlite(tmp_path: Path) -> None:
    seen = check(tmp_path, f"sqlite:///{tmp_path}/{{}}.db", {"supervisor": (10, 6), "workflow": (10, 6)})
    assert sum(seen.moments.values()) >= 100 * 0.8


@pytest.mark.chaos
def test_kills_on_postgresql(tmp_path: Path) -> None:
    from tests.test_durable_postgres import PG_BIN, Cluster

    if PG_BIN is None:
        pytest.skip("PostgreSQL's server binaries are not installed")
    cluster = Cluster(PG_BIN)
    try:
        cluster.start()
        for scenario in ("supervisor", "workflow"):
            cluster.create_database(f"ref_{scenario}")
            for n in range(2):
                cluster.create_database(f"{scenario}_{n}")
        seen = check(tmp_path, cluster.url("{}"), {"supervisor": (2, 5), "workflow": (2, 5)})
        assert sum(seen.moments.values()) >= 12
    finally:
        cluster.stop()
