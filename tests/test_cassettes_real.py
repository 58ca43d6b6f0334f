"""Runs recorded on the local Qwen model (tests/cassettes/, by scripts/record_cassettes.py) replay offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentflow.testing import replay
from tests.cassette_runs import RUNS

FOLDER = Path(__file__).resolve().parent / "cassettes"


@pytest.mark.parametrize("name", list(RUNS))
async def test_a_run_recorded_on_the_real_model_replays_offline(name: str) -> None:
    build, expected = RUNS[name]
    model = replay(FOLDER / f"{name}.jsonl")
    assert model.provider == "local"  # recorded on the real model
    result = await build(model)()
    assert all(e in str(result.output) for e in expected), result.output
    assert model.unserved == 0 and model.requests == len(model.calls) > 0
