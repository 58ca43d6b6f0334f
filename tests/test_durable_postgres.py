"""Scale-out on PostgreSQL, for real: a throw-away cluster on loopback, two worker processes pulling
runs from the durable queue, one SIGKILLed mid-run, and every run finished exactly once; then two
survivors recovering one dead worker's runs at once, each run still re-enqueued (and run) once.

The cluster is made with the server's own binaries (`initdb`, `pg_ctl`; `.ci/run` installs Debian's
`postgresql`). The module is skipped only when no PostgreSQL binaries exist on this machine.
"""

from __future__ import annotations

import asyncio
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agentflow import durable

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "tests" / "durable_pg_app.py"  # imported here only inside the test: it registers its agent
RUNS, CONCURRENCY, SLEEP = 6, 2, 3.0
LOG_ENV, SLEEP_ENV = "AGENTFLOW_PG_LOG", "AGENTFLOW_PG_SLEEP"  # as in durable_pg_app


def _pg_bin() -> Path | None:
    """The directory holding initdb and pg_ctl: on PATH, or Debian's /usr/lib/postgresql/<ver>/bin."""
    found = [shutil.which("initdb"), shutil.which("pg_ctl")]
    if all(found):
        return Path(found[0] or "").resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(re.sub(r"\D", "", Path(p).parent.parent.name) or 0))
    return Path(versions[-1]).parent if versions else None


PG_BIN = _pg_bin()
pytestmark = pytest.mark.skipif(PG_BIN is None, reason="no PostgreSQL binaries (initdb, pg_ctl) on this machine; "
                                                       ".ci/run installs Debian's postgresql")


def _as_postgres(argv: list[str]) -> list[str]:
    """The server refuses to run as root: run its binaries as the `postgres` system user then."""
    if os.geteuid() != 0:
        return argv
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--", *argv]
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(f"'{a}'" for a in argv)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.dir = Path(tempfile.mkdtemp(prefix="agentflow-pg-"))  # not under pytest's root-only tmp dirs
        self.data, self.log = self.dir / "data", self.dir / "server.log"
        self.port = 0
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        os.chmod(self.dir, 0o700)

    def run(self, *argv: str) -> None:
        done = subprocess.run(_as_postgres([str(self.bin / argv[0]), *argv[1:]]), capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n{log}")

    def start(self) -> None:
        self.run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C",
                 "--no-sync")
        for attempt in range(3):  # the free port may be taken before the server binds it
            self.port = _free_port()
            options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200 "
                       "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
            try:
                self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options,
                         "start")
                return
            except RuntimeError:
                if attempt == 2:
                    raise

    def url(self, db: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except Exception:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    assert PG_BIN is not None
    c = Cluster(PG_BIN)
    try:
        c.start()
        yield c
    finally:
        c.stop()


class Worker:
    """`agentflow runs --db URL worker --app tests/durable_pg_app.py --concurrency N` in a subprocess."""

    def __init__(self, url: str, log: Path, out: Path, concurrency: int, sleep: float) -> None:
        env = {**os.environ, LOG_ENV: str(log), SLEEP_ENV: str(sleep)}
        self.out = out
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agentflow.cli", "runs", "--db", url, "worker", "--app", str(APP),
             "--concurrency", str(concurrency)],
            cwd=ROOT, env=env, stdout=out.open("w"), stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        self.executor = ""

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"worker {self.pid} exited with {self.proc.returncode}:\n{self.out.read_text()}")
        found = re.search(r"^worker (\S+) pulling runs", self.out.read_text(), re.M)
        if found:
            self.executor = found.group(1)
        return found is not None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


async def until(check: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        if value := await check():
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.05)


class Scene:
    """A fresh database, the side-effect log, and the workers started on them (all killed at teardown)."""

    def __init__(self, url: str, tmp: Path) -> None:
        self.url, self.tmp, self.log = url, tmp, tmp / "effects.log"
        self.workers: list[Worker] = []

    async def start(self, count: int, concurrency: int, sleep: float = SLEEP) -> list[Worker]:
        made = [Worker(self.url, self.log, self.tmp / f"worker{len(self.workers) + i}.out", concurrency, sleep)
                for i in range(count)]
        self.workers += made

        async def ready() -> bool:
            return all([w.ready() for w in made])

        await until(ready, 30, f"{count} worker(s) launched")
        return made

    def rows(self) -> list[tuple[str, str, int]]:
        """(`start` or `end`, run task, worker pid) per line of the log, in the order written."""
        if not self.log.exists():
            return []
        rows = [line.split() for line in self.log.read_text().splitlines() if line.strip()]
        return [(kind, ident, int(pid)) for kind, ident, pid in rows]

    def started(self, w: Worker) -> set[str]:
        return {i for k, i, p in self.rows() if k == "start" and p == w.pid}

    def ended(self, w: Worker) -> set[str]:
        return {i for k, i, p in self.rows() if k == "end" and p == w.pid}


@pytest.fixture
def scene(cluster: Cluster, tmp_path: Path) -> Iterator[Scene]:
    from tests import durable_pg_app

    assert (durable_pg_app.LOG_ENV, durable_pg_app.SLEEP_ENV) == (LOG_ENV, SLEEP_ENV)
    url = cluster.create_database(f"scaleout_{os.getpid()}_{int(time.time() * 1000)}")
    made = Scene(url, tmp_path)
    durable.registry.add(durable_pg_app.agent)  # to decode results here; the producer needs only the name
    try:
        yield made
    finally:
        for w in made.workers:
            w.kill()
        durable.registry.entries.pop("pg_worker", None)


async def all_done(runs: list[durable.DurableRun]) -> bool:
    return all([await r.status() == "done" for r in runs])


async def test_a_killed_workers_runs_are_finished_by_another_exactly_once(scene: Scene) -> None:
    t0 = time.monotonic()
    a, b = await scene.start(2, CONCURRENCY)
    assert a.executor != b.executor and a.executor.endswith(str(a.pid))
    rt = durable.connect(scene.url)
    try:
        runs = [await rt.submit("pg_worker", f"job-{i}", id=f"pg-run-{i}") for i in range(RUNS)]

        async def a_is_mid_run() -> list[str]:  # a run of A's is in its tool (started, not ended)
            if not scene.started(a) - scene.ended(a):
                return []
            infos = [await r.info() for r in runs]
            return [i.task or "" for i in infos if i.executor == a.executor and i.status == "running"]

        running_on_a = await until(a_is_mid_run, 30, "worker A running a run")
        a.kill()
        t_kill = time.monotonic()
        await until(lambda: all_done(runs), 60, "every run done after worker A was killed")
        t_done = time.monotonic()
        infos = {r.id: await r.info() for r in runs}
        for i, r in enumerate(runs):
            assert (await r.result()).output == f"done job-{i}"
    finally:
        rt.shutdown()

    rows = scene.rows()
    ends = Counter(i for k, i, _ in rows if k == "end")
    assert ends == Counter({f"job-{i}": 1 for i in range(RUNS)}), rows  # every side effect finished exactly once
    # A's interrupted runs: started by A, never ended by A, then run again and finished by B.
    cut = scene.started(a) - scene.ended(a)
    assert cut and set(running_on_a) <= cut, (running_on_a, rows)
    for r in runs:
        info = infos[r.id]
        if info.task in cut:
            assert info.executor == b.executor, info
            assert ("end", info.task, b.pid) in rows
    starts = Counter(i for k, i, _ in rows if k == "start")
    assert starts == Counter({f"job-{i}": 1 + (f"job-{i}" in cut) for i in range(RUNS)}), rows
    # The concurrency limit held: never more than CONCURRENCY tools in flight per worker.
    most: dict[int, int] = {}
    open_: Counter[int] = Counter()
    for kind, _, pid in rows:
        open_[pid] += 1 if kind == "start" else -1
        most[pid] = max(most.get(pid, 0), open_[pid])
    assert most[a.pid] <= CONCURRENCY and most[b.pid] == CONCURRENCY, most
    assert b.proc.poll() is None  # the survivor is still up
    print(f"\nlaunch+submit+first run on A {t_kill - t0:.1f}s, all {RUNS} runs done {t_done - t_kill:.1f}s after "
          f"the kill; A's runs {sorted(cut)} finished by B")


# Every re-enqueue (DBOS's resume: the UPDATE that resets recovery_attempts and deduplication_id) waits
# 0.3 s before it touches a row. Two survivors recovering one dead worker at once then overlap for
# seconds, the window in which one used to re-enqueue a run the other had already dequeued.
SLOW_RESUME = """
CREATE FUNCTION dbos.agentflow_test_slow_resume() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_query() LIKE '%recovery_attempts=%' AND current_query() LIKE '%deduplication_id=%' THEN
        PERFORM pg_sleep(0.3);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER agentflow_test_slow_resume BEFORE UPDATE ON dbos.workflow_status
    FOR EACH STATEMENT EXECUTE FUNCTION dbos.agentflow_test_slow_resume();
"""


async def test_two_survivors_recover_a_dead_workers_runs_once(scene: Scene) -> None:
    """Both live workers see the dead one's runs; only one may put each back on the queue."""
    import psycopg

    n, sleep = 10, 6.0  # A's runs must still be in their tools when B and C have launched
    (a,) = await scene.start(1, n, sleep)
    rt = durable.connect(scene.url)
    try:
        runs = [await rt.submit("pg_worker", f"job-{i}", id=f"pg-run-{i}") for i in range(n)]

        async def a_has_all() -> bool:
            return len(scene.started(a)) == n

        await until(a_has_all, 30, "worker A running every run")
        b, c = await scene.start(2, n, sleep)  # idle, so each dequeues a re-enqueued run at once
        with psycopg.connect(scene.url, autocommit=True) as conn:
            conn.execute(SLOW_RESUME)
        assert scene.ended(a) == set(), "worker A finished a run before it was killed: sleep longer"
        a.kill()
        await until(lambda: all_done(runs), 60, "every run done after worker A was killed")
        infos = [await r.info() for r in runs]
    finally:
        rt.shutdown()
    rows = scene.rows()
    assert Counter(i for k, i, _ in rows if k == "end") == Counter({f"job-{i}": 1 for i in range(n)}), rows
    assert Counter(i for k, i, _ in rows if k == "start") == Counter({f"job-{i}": 2 for i in range(n)}), rows
    assert {i.executor for i in infos} <= {b.executor, c.executor}


async def test_the_step_table_keeps_its_rules_on_postgresql(cluster: Cluster) -> None:
    import psycopg

    from agentflow.durable.store import PostgresSteps
    from tests.test_durable_store import RULES

    url = cluster.create_database("steps")
    with psycopg.connect(url, autocommit=True) as db:  # the one column of DBOS's table of runs that the store reads
        db.execute("CREATE SCHEMA dbos")
        db.execute("CREATE TABLE dbos.workflow_status (workflow_uuid TEXT PRIMARY KEY, status TEXT)")
        db.execute("INSERT INTO dbos.workflow_status VALUES ('r1', 'PENDING'), ('r2', 'CANCELLED')")
    store = PostgresSteps(url)
    try:
        for rule in RULES:
            await rule(store)
    finally:
        store.close()
