"""Scale-out on PostgreSQL: which workers are alive, and taking over the runs of dead ones.

DBOS recovers a process's pending runs when that same executor launches again; noticing that a
worker died and handing its runs to another is left to a paid service. Here every worker holds
a PostgreSQL advisory lock named for its executor id for as long as its process lives (the
server drops it the moment the connection does). A worker that can take another's lock knows
that one is dead, and puts its pending runs back on the queue through DBOS's client API, where
the queue's atomic dequeue hands each to exactly one live worker.
"""

from __future__ import annotations

from typing import Any

LOCK = "agentflow.worker:"


class Liveness:
    def __init__(self, url: str, executor: str) -> None:
        import psycopg

        self.executor = executor
        self.conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
        self.conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (LOCK + executor,))

    def recover_dead(self, client: Any, queue: str, workflow: str) -> list[str]:
        """Re-enqueue the pending runs of every dead worker; returns their ids.

        The dead worker's lock is held while its runs are listed again and re-enqueued, so two live
        workers never both re-enqueue one run: a second re-enqueue would take a run back from the
        worker that already dequeued it, and the run would execute twice."""
        pending = client.list_workflows(status=["PENDING"], name=workflow, load_input=False, load_output=False)
        others = {wf.executor_id for wf in pending} - {self.executor, "local", None}
        moved: list[str] = []
        for executor in others:
            key = LOCK + executor
            row = self.conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone()
            if row is None or not row[0]:
                continue  # alive, or another worker is recovering it right now
            try:  # listed again under the lock: what another worker re-enqueued meanwhile is no longer its
                still = client.list_workflows(status=["PENDING"], name=workflow, executor_id=executor,
                                              load_input=False, load_output=False)
                for wf in still:  # a submitted run goes back on its queue; one started directly, on DBOS's own
                    client.resume_workflow(wf.workflow_id, queue_name=queue if wf.queue_name == queue else None)
                    moved.append(wf.workflow_id)
            finally:
                self.conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))
        return moved

    def close(self) -> None:
        self.conn.close()
