"""agentflow's tables beside DBOS's: the step table (one row per finished model call, tool call or
wait), the event log (what `agentflow serve` streams) and durable sessions.

DBOS's step API costs about 2 ms of CPU per step here (a check and a record, each its own
SQLAlchemy transaction on an executor thread), twice what agentflow spends on a whole model
call. So steps are written here, through the database's own driver, in one short transaction
each (0.03-0.07 ms of CPU on SQLite). DBOS still owns the run: its status, recovery, queues,
events and the humans' replies. Each write also reads the run's status, so a cancelled run
stops at its next step, as under DBOS's own steps.

A step is keyed by its agentflow name. The first success recorded for a name wins: a later
write for that name (a run taken over while its old process still ran) changes nothing, and a
failure is recorded only until a retry succeeds.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Any, TypeVar

T = TypeVar("T")

TABLE = "agentflow_steps"
CANCELLED = "CANCELLED"

_COLUMNS = "run_id, name, output, error, started_at, finished_at"
_UPSERT = (f"INSERT INTO {TABLE} ({_COLUMNS}) VALUES ({{p}}, {{p}}, {{p}}, {{p}}, {{p}}, {{p}}) "
           "ON CONFLICT (run_id, name) DO UPDATE SET output = excluded.output, error = excluded.error, "
           f"started_at = excluded.started_at, finished_at = excluded.finished_at WHERE {TABLE}.error IS NOT NULL")
_LOAD = f"SELECT name, output, error, started_at, finished_at FROM {TABLE} WHERE run_id = {{p}} ORDER BY seq"
_COPY = (f"INSERT INTO {TABLE} ({_COLUMNS}) SELECT {{p}}, name, output, error, started_at, finished_at FROM {TABLE} "
         "WHERE run_id = {p} AND error IS NULL ON CONFLICT (run_id, name) DO NOTHING")
_CREATE = (f"CREATE TABLE IF NOT EXISTS {TABLE} ({{seq}}, run_id TEXT NOT NULL, name TEXT NOT NULL, output TEXT, "
           "error TEXT, started_at DOUBLE PRECISION NOT NULL, finished_at DOUBLE PRECISION NOT NULL, "
           "UNIQUE (run_id, name))")
EVENTS, SESSIONS = "agentflow_events", "agentflow_sessions"
_CREATE_MORE = (f"CREATE TABLE IF NOT EXISTS {EVENTS} (run_id TEXT NOT NULL, seq INTEGER NOT NULL, "
                "event TEXT NOT NULL, PRIMARY KEY (run_id, seq))",
                f"CREATE TABLE IF NOT EXISTS {SESSIONS} (id TEXT PRIMARY KEY, target TEXT NOT NULL, "
                "created_at DOUBLE PRECISION NOT NULL)")


@dataclass
class StepRow:
    name: str
    output: Any  # decoded JSON; None when the step failed
    error: str | None
    started_at: float
    finished_at: float


def _row(r: tuple[Any, ...]) -> StepRow:
    return StepRow(r[0], None if r[1] is None else json.loads(r[1]), r[2], r[3], r[4])


class StepStore:
    """The table in one database; `open_store(url)` picks the driver."""

    async def record(self, run_id: str, name: str, output: str | None, error: str | None, started: float,
                     finished: float) -> bool:
        """Journal one finished step (`output` as JSON text); False when the run has been cancelled."""
        raise NotImplementedError

    async def load(self, run_id: str) -> list[StepRow]:
        """The run's steps in the order they were recorded."""
        raise NotImplementedError

    async def copy(self, source: str, to: str) -> None:
        """Give run `to` the finished steps of run `source` (a failed run resumed under a new id)."""
        raise NotImplementedError

    def delete(self, run_ids: list[str]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    # -- the event log and sessions: rare next to steps, so written through one generic call ---------

    p = "?"  # the driver's placeholder

    async def _do(self, fn: Callable[[Any], T]) -> T:
        """`fn(connection)`, from wherever this driver runs statements."""
        raise NotImplementedError

    async def add_events(self, events: list[tuple[str, int, str]]) -> None:
        """Append events (run id, number, JSON text), a few statements for all; a number already taken is kept."""
        for at in range(0, len(events), 500):
            chunk = events[at:at + 500]
            rows = ", ".join([f"({self.p}, {self.p}, {self.p})"] * len(chunk))
            sql = f"INSERT INTO {EVENTS} (run_id, seq, event) VALUES {rows} ON CONFLICT (run_id, seq) DO NOTHING"
            args = [x for row in chunk for x in row]
            await self._do(lambda db, sql=sql, args=args: db.execute(sql, args))

    async def load_events(self, run_id: str, after: int = 0) -> list[tuple[int, str]]:
        """The run's events numbered above `after`, in order."""
        sql = f"SELECT seq, event FROM {EVENTS} WHERE run_id = {self.p} AND seq > {self.p} ORDER BY seq"
        return await self._do(lambda db: [(r[0], r[1]) for r in db.execute(sql, (run_id, after)).fetchall()])

    async def add_session(self, session_id: str, target: str, created: float) -> tuple[str, float]:
        """Record a session (a second call for an id changes nothing); its target and creation time."""
        insert = (f"INSERT INTO {SESSIONS} (id, target, created_at) VALUES ({self.p}, {self.p}, {self.p}) "
                  "ON CONFLICT (id) DO NOTHING")
        await self._do(lambda db: db.execute(insert, (session_id, target, created)))
        found = await self.session(session_id)
        assert found is not None
        return found

    async def session(self, session_id: str) -> tuple[str, float] | None:
        """A recorded session's target and creation time."""
        sql = f"SELECT target, created_at FROM {SESSIONS} WHERE id = {self.p}"
        row = await self._do(lambda db: db.execute(sql, (session_id,)).fetchone())
        return None if row is None else (row[0], row[1])


def _sql(p: str, runs: str) -> dict[str, str]:
    """The statements for one driver (`p`: its placeholder; `runs`: DBOS's table of runs)."""
    status = f"SELECT status FROM {runs} WHERE workflow_uuid = {p}"
    sql = {k: v.format(p=p) for k, v in (("upsert", _UPSERT), ("load", _LOAD), ("copy", _COPY))}
    # One statement, one transaction: the write, and the run's status as DBOS sees it then.
    return {**sql, "status": status, "record": f"{sql['upsert']} RETURNING ({status})"}


_LITE, _PG = _sql("?", "workflow_status"), _sql("%s", "dbos.workflow_status")


class NormalSync(sqlite3.Connection):
    """A connection whose commits wait for the write-ahead log, not for the disk (see SQLiteSteps)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.execute("PRAGMA synchronous=NORMAL")


class SQLiteSteps(StepStore):
    """Writes from the event loop's thread when the file is free at once (no thread hop), else from
    a thread that waits for the lock. Write-ahead log with `synchronous=NORMAL`: a commit survives
    the process dying (SIGKILL included) but not the machine losing power; a step lost that way is
    taken again on resume."""

    def __init__(self, path: Path) -> None:
        self.now, self.now_lock = self._connect(path, busy_ms=0), threading.Lock()
        self.wait, self.wait_lock = self._connect(path, busy_ms=30_000), threading.Lock()
        for create in (_CREATE.format(seq="seq INTEGER PRIMARY KEY"), *_CREATE_MORE):
            self._waiting(lambda db, args: db.execute(args[0]), (create,))

    @staticmethod
    def _connect(path: Path, busy_ms: int) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, factory=NormalSync)
        db.execute(f"PRAGMA busy_timeout={busy_ms}")
        return db

    async def record(self, run_id: str, name: str, output: str | None, error: str | None, started: float,
                     finished: float) -> bool:
        return await self._either(self._record, (run_id, name, output, error, started, finished))

    async def load(self, run_id: str) -> list[StepRow]:
        return await self._either(self._load, (run_id,))

    async def _either(self, fn: Callable[[sqlite3.Connection, tuple[Any, ...]], T], args: tuple[Any, ...]) -> T:
        """`fn` on this thread if the file is free right now, else on a thread that waits for it."""
        if self.now_lock.acquire(blocking=False):
            try:
                return fn(self.now, args)
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e):
                    raise
            finally:
                self.now_lock.release()
        return await asyncio.to_thread(self._waiting, fn, args)

    def _waiting(self, fn: Callable[[sqlite3.Connection, tuple[Any, ...]], T], args: tuple[Any, ...]) -> T:
        """`fn` on the connection that waits for the file (30 s), one caller at a time."""
        with self.wait_lock:
            return fn(self.wait, args)

    @staticmethod
    def _record(db: sqlite3.Connection, args: tuple[Any, ...]) -> bool:
        rows = db.execute(_LITE["record"], (*args, args[0])).fetchall()  # all: the statement ends, and commits
        row = rows[0] if rows else db.execute(_LITE["status"], args[:1]).fetchone()  # nothing written: see above
        return row is None or row[0] != CANCELLED

    @staticmethod
    def _load(db: sqlite3.Connection, args: tuple[Any, ...]) -> list[StepRow]:
        return [_row(r) for r in db.execute(_LITE["load"], args)]

    async def copy(self, source: str, to: str) -> None:
        await asyncio.to_thread(self._waiting, lambda db, args: db.execute(_LITE["copy"], args), (to, source))

    async def _do(self, fn: Callable[[Any], T]) -> T:
        return await self._either(lambda db, _: fn(db), ())

    def delete(self, run_ids: list[str]) -> None:
        for table in (TABLE, EVENTS):
            self._waiting(lambda db, args, table=table: db.executemany(f"DELETE FROM {table} WHERE run_id = ?", args),
                          tuple((i,) for i in run_ids))

    def close(self) -> None:
        self.now.close()
        self.wait.close()


class PostgresSteps(StepStore):
    """A few autocommit connections, used from threads (a run may execute on any event loop)."""

    p = "%s"

    def __init__(self, url: str) -> None:
        self.url = url.replace("postgresql+psycopg://", "postgresql://")
        self.idle: SimpleQueue[Any] = SimpleQueue()

        def create(db: Any) -> None:
            with db.transaction():  # concurrent CREATE TABLE IF NOT EXISTS can collide: one at a time
                db.execute("SELECT pg_advisory_xact_lock(hashtext('agentflow.steps.create'))")
                for sql in (_CREATE.format(seq="seq BIGSERIAL PRIMARY KEY"), *_CREATE_MORE):
                    db.execute(sql)
        self._with(create)

    def _with(self, fn: Callable[[Any], T]) -> T:
        """`fn(connection)` on an idle connection, or a new one; a broken one is not kept."""
        import psycopg

        try:
            db = self.idle.get_nowait()
        except Empty:
            db = psycopg.connect(self.url, autocommit=True)
        try:
            return fn(db)
        except psycopg.OperationalError:
            db.close()
            raise
        finally:
            if not db.closed:
                self.idle.put(db)

    async def record(self, run_id: str, name: str, output: str | None, error: str | None, started: float,
                     finished: float) -> bool:
        def run(db: Any) -> bool:
            row = db.execute(_PG["record"], (run_id, name, output, error, started, finished, run_id)).fetchone() \
                or db.execute(_PG["status"], (run_id,)).fetchone()  # nothing written: the name was journaled
            return row is None or row[0] != CANCELLED
        return await asyncio.to_thread(self._with, run)

    async def load(self, run_id: str) -> list[StepRow]:
        return await asyncio.to_thread(self._with, lambda db: [_row(r) for r in db.execute(_PG["load"], (run_id,))])

    async def copy(self, source: str, to: str) -> None:
        await asyncio.to_thread(self._with, lambda db: db.execute(_PG["copy"], (to, source)))

    async def _do(self, fn: Callable[[Any], T]) -> T:
        return await asyncio.to_thread(self._with, fn)

    def delete(self, run_ids: list[str]) -> None:
        for table in (TABLE, EVENTS):
            self._with(lambda db, table=table: db.execute(f"DELETE FROM {table} WHERE run_id = ANY(%s)", (run_ids,)))

    def close(self) -> None:
        while True:
            try:
                self.idle.get_nowait().close()
            except Empty:
                return


def open_store(url: str) -> StepStore:
    if url.startswith("sqlite:///"):
        return SQLiteSteps(Path(url.removeprefix("sqlite:///")))
    return PostgresSteps(url)
