"""Workflow scheduling and overhead, measured (prints figures; no assertions).

1. Critical path: the Shopify DAG of the book chapter for three stores whose model calls take
   different times (a stand-in model sleeps per prompt). Prints the wall time against the
   critical path, against running the same tasks in strict topological rounds, and against
   running them one after another.
2. Overhead: a fan-out of N tasks whose model replies at once: tasks per second and the
   framework's time per task.

    python benchmarks/workflow_critical_path.py [--stores 3] [--fanout 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from pydantic import BaseModel

from agentflow import FunctionModel
from agentflow.models import RequestInfo
from agentflow.workflow import Workflow, each, step, task

STAGES = {"Summarize": 0.30, "Invent": 0.20, "Write": 0.25}  # seconds per call, by the prompt's first word
# store i's call at stage i takes twice as long: every stage has one slow store, no store is slow throughout


class Store(BaseModel):
    id: int
    html: str


@step
def storefronts(count: int) -> list[Store]:
    return [Store(id=i, html=f"<h1>Store {i}</h1>") for i in range(count)]


@task("Summarize this storefront: {store.html}")
async def summarize(store: Store) -> str: ...


@task("Invent a plug-in for this store: {summarize}")
async def concept(summarize: str) -> str: ...


@task("Write an email about {concept} for the store described as {summarize}")
async def email(summarize: str, concept: str) -> str: ...


def latency(stage: str, store: int) -> float:
    return STAGES[stage] * (2 if list(STAGES).index(stage) == store else 1)


def store_of(prompt: str) -> int:
    return int(prompt.split("Store ", 1)[1].split("<", 1)[0])


async def slow_reply(info: RequestInfo) -> str:
    prompt = info.last.content or ""
    await asyncio.sleep(latency(prompt.split(" ", 1)[0], store_of(prompt)))
    return prompt.replace("Summarize this storefront:", "summary of").replace("Invent", "plug-in for")


async def critical_path(stores: int) -> None:
    per_store = Workflow(summarize >> concept >> email, name="promote")
    flow = Workflow(storefronts >> each(per_store, over="storefronts"), model=FunctionModel(slow_reply),
                    concurrency=3 * stores)
    started = time.perf_counter()
    await flow.run(count=stores)
    wall = time.perf_counter() - started
    calls = [[latency(stage, i) for stage in STAGES] for i in range(stores)]
    critical = max(sum(chain) for chain in calls)
    rounds = sum(max(chain[k] for chain in calls) for k in range(len(STAGES)))  # each round waits for its slowest
    total = sum(map(sum, calls))
    print(f"critical path, {stores} stores (3 dependent calls each; store i's call i twice as slow):")
    print(f"  wall {wall:.3f} s   critical path {critical:.3f} s   ratio {wall / critical:.3f}")
    print(f"  strict rounds would take {rounds:.3f} s; one call after another {total:.3f} s")


async def overhead(n: int) -> None:
    @task("Classify: {email}")
    async def classify(email: str) -> str: ...

    flow = Workflow(each(classify, over="emails"), model=FunctionModel(lambda info: "normal"), concurrency=64)
    emails = [f"email {i}" for i in range(n)]
    await flow.run(emails=emails[:10])  # warm up imports and caches
    started, cpu = time.perf_counter(), time.process_time()
    result = await flow.run(emails=emails)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert len(result.output) == n
    print(f"overhead, fan-out of {n} prompt tasks (the model replies at once):")
    print(f"  {n / wall:.0f} tasks/s   {wall / n * 1e6:.0f} us wall and {cpu / n * 1e6:.0f} us CPU per task")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stores", type=int, default=3)
    parser.add_argument("--fanout", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(critical_path(args.stores))
    asyncio.run(overhead(args.fanout))


if __name__ == "__main__":
    main()
