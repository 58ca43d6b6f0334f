"""The chaos suite: mixed runs against a model server that injects faults (tests/faults/).

Every run must end within its time limit, with a result or one of agentflow's documented errors,
and with the usage the server counted as delivered. By default a slice of 200 runs; `pytest -m
chaos` runs 1,000. `python -m tests.faults.runs` prints the table for any number of runs.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from tests.faults.runs import KINDS, LIMIT, Outcome, chaos, problems, table
from tests.faults.server import FAULTS

SEED = int(os.environ.get("CHAOS_SEED", "1"))


def check(runs: int) -> None:
    start = time.monotonic()
    outcomes, served = asyncio.run(chaos(runs, SEED, 0.3, 16))
    print(table(outcomes, served, time.monotonic() - start))
    assert problems(outcomes, served, SEED) == []
    injected = {fault for m in served.values() for fault in m["faults"]}
    assert injected == set(FAULTS)  # every fault happened at least once
    ends = {o.ended for o in outcomes}
    assert "finish" in ends and "ModelError" in ends  # runs that recovered, and runs that gave up with a named error
    assert {o.kind for o in outcomes} == set(KINDS) and any(o.streamed for o in outcomes)


def test_two_hundred_runs_under_faults_keep_every_promise() -> None:
    check(200)


@pytest.mark.chaos
def test_a_thousand_runs_under_faults_keep_every_promise() -> None:
    check(1000)


def test_the_checks_can_fail() -> None:
    good = Outcome(0, "agent", "openai", False, "finish", 1.0, LIMIT, (10, 5), 2, True)
    served = {f"run-{SEED}-0": {"input": 10, "output": 5}}
    assert problems([good], served, SEED) == []
    lost = Outcome(0, "agent", "openai", False, "ModelError", 1.0, LIMIT, (4, 2), 1, True)
    raw = Outcome(0, "agent", "openai", True, "ReadError", 1.0, LIMIT, (10, 5), 2, False)
    slow = Outcome(0, "agent", "openai", False, "finish", LIMIT + 3, LIMIT, (10, 5), 2, True)
    assert ["usage (4, 2), the server delivered (10, 5)" in p for p in problems([lost], served, SEED)] == [True]
    assert ["raised ReadError" in p for p in problems([raw], served, SEED)] == [True]
    assert ["past its limit" in p for p in problems([slow], served, SEED)] == [True]
