"""Run the quickstart (examples/quickstart.py) N times on a local model and count the right answers.

Greedy decoding repeats a run exactly on one machine, so the runs are varied the two ways one
machine can vary them: the server's thread count (llama.cpp sums in another order: another
greedy path) and, at a temperature above 0, the sampling seed. Run i uses threads[i % len] and
seed i. Each run's line shows its answer and whether it is right; a transcript of each wrong
run's task-agent results follows. Exits 1 if fewer than --need runs are right.

    python scripts/quickstart_runs.py --runs 10 --threads 1,2 --temperature 0.3 --need 9
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

import quickstart  # noqa: E402

from agentflow import ModelSettings, RunFinished, get_model  # noqa: E402


async def once(model_name: str, threads: int, temperature: float, seed: int) -> tuple[bool, str, list[str]]:
    settings = ModelSettings(temperature=temperature, seed=seed, max_tokens=2048)
    model = get_model(model_name, threads=threads, settings=settings)
    stream = quickstart.build(dict.fromkeys(quickstart.STAND_INS, model)).stream(quickstart.QUESTION)
    lines = [f"    {e.agent} -> {e.output} ({e.stop_reason})" async for e in stream if isinstance(e, RunFinished)]
    result = stream.result
    return quickstart.is_right(result), f"{result.output} ({result.stop_reason})", lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="local:qwen2.5-coder-1.5b")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--threads", default="1,2", help="server thread counts to cycle through, comma-separated")
    p.add_argument("--temperature", type=float, default=0.3)
    p.add_argument("--need", type=int, default=9, help="right runs needed for exit status 0")
    args = p.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    right = 0
    for i in range(args.runs):
        started = time.monotonic()
        ok, answer, lines = asyncio.run(once(args.model, threads[i % len(threads)], args.temperature, i + 1))
        right += ok
        print(f"run {i + 1}: threads {threads[i % len(threads)]}, seed {i + 1}, temperature {args.temperature}: "
              f"{'right' if ok else 'WRONG'}  {answer}  {time.monotonic() - started:.0f} s", flush=True)
        if not ok:
            print("\n".join(lines), flush=True)
    print(f"\nright in {right} of {args.runs} runs (truth: {quickstart.truth()})")
    return 0 if right >= args.need else 1


if __name__ == "__main__":
    sys.exit(main())
