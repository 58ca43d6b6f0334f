"""Crashes at random moments: a durable run SIGKILLed again and again, then resumed to the end.

tests/crash_app.py runs a durable supervisor (two workers at once, one waiting for an approval)
or a durable workflow (a fan-out, then a join), and writes every model call, tool call and Python
step as `start`/`end` rows to a SQLite file outside the journal. This test launches it, kills it
at a seeded random moment within the time an uninterrupted run takes, reads the journal, and
does it again, several times per run; then lets the run finish. It proves:

- a call or step the journal had recorded when the process died never runs again;
- the run ends with the same output as an uninterrupted one, having done the same work;
- only what was in flight at a kill ran more than once.

On PostgreSQL the same program runs as two queue workers (`crash_app DB worker EFFECTS`): one of
them is killed again and again while runs of both kinds keep arriving, the other never, and every
run must still finish once, with the same output and the same work.

By default 2 runs of each scenario, 3 kills each, on SQLite, and two workers with one killed
until it has cut 2 runs short on PostgreSQL; `pytest -m chaos` kills 100 times on SQLite, 20 on
one PostgreSQL process, and the PostgreSQL worker until it has cut 20 runs short. The moments are
classified (mid model call, mid tool call, between a side effect and its journal row, waiting
for approval, between steps) and printed.
"""

from __future__ import annotations

import asyncio
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import programs

ROOT = Path(__file__).resolve().parent.parent
LABEL = re.compile(r"(?:model|tool|step):[A-Za-z0-9_.:]*[A-Za-z0-9_]")
SEED = int(os.environ.get("CHAOS_SEED", "1"))


def launch(db: str, scenario: str, effects: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.crash_app", db, scenario, str(effects)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    programs.started.append(proc)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "READY", proc.stderr and proc.stderr.read()
    return proc


def effects(path: Path, run: str) -> list[tuple[int, str, str]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT seq, label, phase FROM effects WHERE run = ? ORDER BY seq", (run,)).fetchall()


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
    return output, time.monotonic() - start, sorted(label for _, label, phase in effects(path, f"r-{scenario}")
                                                    if phase == "end")


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
        rows = effects(path, f"r-{scenario}") if path.exists() else []
        journal = journaled(db, f"r-{scenario}")
        begun = {label for _, label, phase in rows if phase == "start"}
        record.append(Kill(journal, rows[-1][0] if rows else 0, moment(rows, journal), begun - journal))
    output = result_of(launch(db, scenario, path))
    rows = effects(path, f"r-{scenario}")
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
            ended = {label for _, label, phase in effects(path, f"r-{scenario}") if phase == "end"}
            assert sorted(ended) == sorted(set(work))
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
    cluster = _cluster()
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


# -- two workers on PostgreSQL, one of them killed again and again ---------------------------------

KINDS = {"supervisor": ("supervisor", {"task": "write the notes and deploy 1.2"}),
         "workflow": ("pipeline", {"topic": "rain"})}


async def submit(rt: Any, kind: str, run_id: str) -> Any:
    target, kwargs = KINDS[kind]
    return await rt.submit(target, id=run_id, **kwargs)


async def finished(rt: Any, ids: list[str], timeout: float) -> dict[str, Any]:
    """Each run's stored output, once every one is done."""
    deadline = time.monotonic() + timeout
    while True:
        infos = [await rt.info(i) for i in ids]
        if all(i.status == "done" for i in infos):
            return {i: (await rt.info(i, outcome=True)).outcome["output"] for i in ids}
        assert not [i for i in infos if i.status in ("failed", "cancelled")], infos
        assert time.monotonic() < deadline, f"not done within {timeout} s: {[(i.id, i.status) for i in infos]}"
        await asyncio.sleep(0.1)


async def begun_by(path: Path, pid: int, timeout: float) -> str:
    """The first run the worker `pid` wrote an effect for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            with sqlite3.connect(path) as db:
                row = db.execute("SELECT run FROM effects WHERE pid = ? ORDER BY seq LIMIT 1", (pid,)).fetchone()
            if row:
                return row[0]
        await asyncio.sleep(0.01)
    raise AssertionError(f"worker {pid} began no run within {timeout} s")


async def pool_check(tmp: Path, cluster: Any, cuts: int, rounds: int) -> Crashes:
    """Workers A and B pull runs from the queue. Each round one run of each kind is submitted, and A is
    SIGKILLed at a random moment within the time a run takes once it has begun one, then launched again
    (a new executor); until A's death has cut `cuts` runs short (or after `rounds` rounds). B is never
    killed; it, or A's next life, takes over what A had begun."""
    from agentflow import durable

    rng, seen = random.Random(SEED), Crashes()
    ref_url, url = cluster.create_database("pool_ref"), cluster.create_database("pool")
    ref_path, path = tmp / "pool-ref.effects", tmp / "pool.effects"
    ref, rt = durable.connect(ref_url), durable.connect(url)
    ids: list[str] = []
    record: list[tuple[str, Kill]] = []
    try:  # the reference: one worker, one run of each kind after the other, uninterrupted
        launch(ref_url, "worker", ref_path)
        want, took = {}, {}
        for kind in KINDS:
            start = time.monotonic()
            await submit(ref, kind, f"{kind}-ref")
            want |= await finished(ref, [f"{kind}-ref"], 60)
            took[kind] = time.monotonic() - start
        work = {kind: sorted(label for _, label, p in effects(ref_path, f"{kind}-ref") if p == "end") for kind in KINDS}

        launch(url, "worker", path)  # B
        a = launch(url, "worker", path)
        kills = 0
        while len(record) < cuts and kills < rounds:
            for kind in KINDS:
                ids.append(f"{kind}-{kills}")
                await submit(rt, kind, ids[-1])
            first = await begun_by(path, a.pid, 30)
            await asyncio.sleep(rng.uniform(0.0, took[first.split("-")[0]]))
            a.send_signal(signal.SIGKILL)
            a.wait()
            kills += 1
            with sqlite3.connect(path) as db:  # the runs the dead worker had begun
                touched = {r for (r,) in db.execute("SELECT DISTINCT run FROM effects WHERE pid = ?", (a.pid,))}
            for run_id in sorted(touched):
                if (await rt.info(run_id)).status == "done":  # it finished that one before the kill
                    continue
                rows, journal = effects(path, run_id), journaled(url, run_id)
                begun = {label for _, label, phase in rows if phase == "start"}
                record.append((run_id, Kill(journal, rows[-1][0] if rows else 0, moment(rows, journal),
                                            begun - journal)))
            a = launch(url, "worker", path)
        got = await finished(rt, ids, 120)
    finally:
        ref.shutdown()
        rt.shutdown()
    for run_id in ids:
        kind = run_id.split("-")[0]
        assert got[run_id] == want[f"{kind}-ref"], run_id
        rows = effects(path, run_id)
        assert sorted({label for _, label, p in rows if p == "end"}) == sorted(set(work[kind])), run_id
        kills_here = [k for r, k in record if r == run_id]
        for kill in kills_here:
            again = [label for seq, label, p in rows if seq > kill.seen and p == "start" and label in kill.journal]
            assert again == [], f"{run_id}: journaled before a kill ({kill.moment}), then run again: {again}"
        starts = Counter(label for _, label, p in rows if p == "start")
        repeated = {label: n - 1 for label, n in starts.items() if n > 1}
        assert set(repeated) <= set().union(*(k.in_flight for k in kills_here)), (run_id, repeated)
        seen.repeated.update(repeated)
    seen.moments.update(k.moment for _, k in record)
    seen.runs = len(ids)
    print(f"\n2 workers on PostgreSQL, {len(ids)} runs, one worker killed {kills} times, cutting short "
          f"{len(record)} runs: " + ", ".join(f"{k} {v}" for k, v in seen.moments.most_common())
          + f"; calls run again (in flight at a kill): {sum(seen.repeated.values())}")
    return seen


def _cluster() -> Any:
    from tests.test_durable_postgres import PG_BIN, Cluster

    if PG_BIN is None:
        pytest.skip("PostgreSQL's server binaries are not installed")
    return Cluster(PG_BIN)


async def pool_on_a_new_cluster(tmp: Path, cuts: int, rounds: int) -> Crashes:
    cluster = _cluster()
    try:
        cluster.start()
        return await pool_check(tmp, cluster, cuts=cuts, rounds=rounds)
    finally:
        cluster.stop()


async def test_two_workers_on_postgresql_one_killed_at_random_moments(tmp_path: Path) -> None:
    seen = await pool_on_a_new_cluster(tmp_path, cuts=2, rounds=12)
    assert sum(seen.moments.values()) >= 2


@pytest.mark.chaos
async def test_two_workers_on_postgresql_one_killed_until_it_cut_twenty_runs_short(tmp_path: Path) -> None:
    seen = await pool_on_a_new_cluster(tmp_path, cuts=20, rounds=80)
    assert sum(seen.moments.values()) >= 20
