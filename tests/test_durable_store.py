"""The step table: first success wins, failures give way, a cancelled run is reported, and (on SQLite) a
busy file is waited for off the loop. test_durable_postgres.py runs the same rules on PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentflow.durable.store import SQLiteSteps, StepStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteSteps]:
    path = tmp_path / "runs.db"
    with sqlite3.connect(path) as db:  # the one column of DBOS's table of runs that the store reads
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE workflow_status (workflow_uuid TEXT PRIMARY KEY, status TEXT)")
        db.execute("INSERT INTO workflow_status VALUES ('r1', 'PENDING'), ('r2', 'CANCELLED')")
    made = SQLiteSteps(path)
    yield made
    made.close()


async def test_the_first_success_for_a_name_wins_and_a_failure_gives_way(store: StepStore) -> None:
    assert await store.record("r1", "a/model/0", None, "TimeoutError: slow", 1.0, 2.0)
    assert [(r.output, r.error) for r in await store.load("r1")] == [(None, "TimeoutError: slow")]
    assert await store.record("r1", "a/model/0", '{"n": 1}', None, 3.0, 4.0)  # the retry succeeded
    assert await store.record("r1", "a/model/0", '{"n": 2}', None, 5.0, 6.0)  # a second execution: ignored
    assert await store.record("r1", "a/model/0", None, "late failure", 7.0, 8.0)
    assert [(r.name, r.output, r.error, r.started_at) for r in await store.load("r1")] == [
        ("a/model/0", {"n": 1}, None, 3.0)]


async def test_a_write_reports_a_cancelled_run(store: StepStore) -> None:
    assert await store.record("r2", "a/model/0", "{}", None, 1.0, 2.0) is False
    assert await store.record("r2", "a/model/0", "{}", None, 1.0, 2.0) is False  # also when nothing is written
    assert await store.record("unknown", "a/model/0", "{}", None, 1.0, 2.0) is True


async def test_a_busy_file_is_waited_for_without_blocking_the_loop(store: SQLiteSteps, tmp_path: Path) -> None:
    other = sqlite3.connect(tmp_path / "runs.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another writer (DBOS, another process) holds the file
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    writing = asyncio.create_task(store.record("r1", "a/tool/c1", '{"x": 1}', None, 1.0, 2.0))
    await asyncio.sleep(0.3)
    assert not writing.done() and ticks >= 10  # waiting, and the loop still runs
    threading.Timer(0, lambda: other.execute("COMMIT")).start()
    assert await asyncio.wait_for(writing, 10) is True
    ticker.cancel()
    other.close()
    assert [r.output for r in await store.load("r1")] == [{"x": 1}]


async def test_copy_takes_finished_steps_only_and_delete_removes_a_runs_steps(store: StepStore) -> None:
    await store.record("r1", "a/model/0", '{"n": 1}', None, 1.0, 2.0)
    await store.record("r1", "a/model/1", None, "boom", 3.0, 4.0)
    await store.copy("r1", "r3")
    assert [r.name for r in await store.load("r3")] == ["a/model/0"]
    store.delete(["r1"])
    assert await store.load("r1") == [] and len(await store.load("r3")) == 1


RULES = (test_the_first_success_for_a_name_wins_and_a_failure_gives_way, test_a_write_reports_a_cancelled_run,
         test_copy_takes_finished_steps_only_and_delete_removes_a_runs_steps)
