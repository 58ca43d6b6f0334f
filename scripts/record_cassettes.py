"""Record the cassettes tests/test_cassettes_real.py replays: three runs on a real model.

    python scripts/record_cassettes.py [--model local:qwen2.5-coder-1.5b] [NAME ...]   # all, or these

Each run (tests/cassette_runs.py) is recorded to tests/cassettes/NAME.jsonl only if its answer is
right; the script exits non-zero if one is not.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agentflow.models import get_model  # noqa: E402
from agentflow.testing import record  # noqa: E402
from tests.cassette_runs import RUNS  # noqa: E402

FOLDER = Path(__file__).resolve().parent.parent / "tests" / "cassettes"


async def main(model_name: str, names: list[str]) -> int:
    model = get_model(model_name)
    wrong = 0
    if unknown := [n for n in names if n not in RUNS]:
        raise SystemExit(f"no run called {', '.join(unknown)}; runs: {', '.join(RUNS)}")
    for name, (build, expected) in RUNS.items():
        if names and name not in names:
            continue
        scratch = FOLDER / f"{name}.recording"
        start = time.monotonic()
        result = await build(record(model, scratch))()
        answer = str(result.output)
        right = all(e in answer for e in expected)
        print(f"{name}: {'right' if right else 'WRONG'} in {time.monotonic() - start:.0f} s: {answer!r}")
        if right:
            scratch.replace(FOLDER / f"{name}.jsonl")
        else:
            wrong += 1
            scratch.unlink()
    return 1 if wrong else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="local:qwen2.5-coder-1.5b")
    parser.add_argument("names", nargs="*", help=f"the runs to record (default: all of {', '.join(RUNS)})")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.model, args.names)))
