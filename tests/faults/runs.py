"""Mixed runs against the fault server, through the real `openai` and `anthropic` SDKs.

    python -m tests.faults.runs [--runs 1000] [--seed 1] [--rate 0.3] [--concurrency 16]

prints the table: outcomes by kind, retries, faults, the longest run. tests/test_chaos.py runs the
same and asserts what agentflow promises of each run: it ends within its time limit, with a
result (finished, or best-effort with its stop reason) or one of agentflow's documented errors,
and its usage is what the server counted as delivered (at most that, for a run its time limit
stopped: a reply sent as the limit struck may never have been read).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agentflow import (
    Agent,
    AgentflowError,
    Conversation,
    GroupChat,
    Limits,
    Supervisor,
    UserProxy,
    tool,
)
from agentflow.core.errors import partial_of
from agentflow.models import RetryPolicy
from agentflow.models.anthropic import AnthropicModel
from agentflow.models.base import Model
from agentflow.models.openai import OpenAIModel
from agentflow.workflow import Workflow, step, task

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("agent", "typed", "route", "plan", "worklist", "workflow", "pair", "group")
LIMIT = 20.0      # each run's max_seconds
TIGHT = 1.2       # one run in ten has this max_seconds instead, shorter than a hang and its retry
TIMEOUT = 1.0     # the SDK clients' timeout; a "hang" fault outlasts it
HANG = 1.5


@dataclass
class Outcome:
    run: int
    kind: str
    wire: str
    streamed: bool
    ended: str            # "finish", another stop reason, or the error's class name
    seconds: float
    limit: float
    usage: tuple[int, int]
    calls: int            # model calls that returned
    documented: bool      # a result, or an error agentflow documents (AgentflowError)
    detail: str = ""


class Report(BaseModel):
    total: int
    note: str


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@tool
async def lookup(city: str) -> str:
    """The weather in a city."""
    await asyncio.sleep(0)
    return f"sunny in {city}"


def build(kind: str, model: Model, limit: float) -> Callable[[bool], Awaitable[Any]]:
    """The run of one kind, as a function of whether it streams."""
    limits = Limits(max_seconds=limit)

    def agent(name: str, **kw: Any) -> Agent[Any]:
        return Agent(name, tools=[add, lookup], model=model, description=f"{name}: adds and looks up", max_steps=6,
                     **kw)

    if kind in ("agent", "typed"):
        worker = agent("worker", output=Report if kind == "typed" else None, limits=limits)
        return lambda streamed: drained(worker.stream("add 2 and 3", deltas=True)) if streamed else \
            worker.run("add 2 and 3")
    if kind in ("route", "plan", "worklist"):
        boss = Supervisor([agent("adder"), agent("weather")], model=model, mode=kind, limits=limits,  # type: ignore[arg-type]
                          max_steps=8)
        return lambda streamed: drained(boss.stream("add 2 and 3, and the weather in Oslo", deltas=True)) \
            if streamed else boss.run("add 2 and 3, and the weather in Oslo")
    if kind == "workflow":
        @task("Write a line about {topic}.")
        async def line(topic: str) -> str: ...

        @task("Sum up {topic} as a report.")
        async def summary(topic: str) -> Report: ...

        @step
        def join(line: str, summary: Report) -> str:
            return f"{line} / {summary.note}"

        flow = Workflow((line | summary | line.named("again")) >> join, model=model, limits=limits)
        return lambda streamed: drained(flow.stream(topic="rain")) if streamed else flow.run(topic="rain")
    if kind == "pair":
        talk = Conversation(Agent("assistant", model=model, max_steps=4), UserProxy("Know 2+3.", model=model),
                            max_turns=6, limits=limits)
        return lambda streamed: drained(talk.stream(deltas=True)) if streamed else talk.run()
    chat = GroupChat([agent("planner"), Agent("critic", model=model, max_steps=4)], manager="round_robin",
                     max_turns=6, limits=limits)
    return lambda streamed: drained(chat.stream("plan a day", deltas=True)) if streamed else chat.run("plan a day")


async def drained(stream: Any) -> Any:
    async for _ in stream:
        pass
    return stream.result


def usage_of(result: Any) -> tuple[tuple[int, int], int]:
    usage = getattr(result, "usage", None)
    return ((usage.input_tokens, usage.output_tokens), usage.requests) if usage is not None else ((-1, -1), 0)


async def one(n: int, url: str, seed: int) -> Outcome:
    rng = random.Random(f"{seed}/run/{n}")
    kind = KINDS[n % len(KINDS)]
    wire = rng.choice(("openai", "anthropic"))
    streamed = rng.random() < 0.4
    retry = RetryPolicy(attempts=rng.choice((2, 3, 4)), initial_delay=0.01, max_delay=0.05)
    name = f"run-{seed}-{n}"
    model: Model = OpenAIModel(name, base_url=url + "/v1", api_key="k", timeout=TIMEOUT, retry=retry) \
        if wire == "openai" else AnthropicModel(name, base_url=url, api_key="k", timeout=TIMEOUT, retry=retry)
    limit = TIGHT if rng.random() < 0.1 else LIMIT
    start = time.monotonic()
    try:
        result = await build(kind, model, limit)(streamed)
        ended, documented, detail = str(result.stop_reason), True, str(result.detail)[:200]
    except AgentflowError as e:
        result, ended, documented, detail = partial_of(e), type(e).__name__, True, str(e)[:300]
    except Exception as e:  # noqa: BLE001 (what the suite looks for)
        result, ended, documented, detail = partial_of(e), type(e).__name__, False, f"{e!r}"[:300]
    seconds = time.monotonic() - start
    return Outcome(n, kind, wire, streamed, ended, seconds, limit, *usage_of(result), documented, detail)


@contextmanager
def fault_server(seed: int, rate: float) -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.faults.server", str(seed), str(rate), str(HANG)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("PORT "):
            raise RuntimeError(f"the fault server did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.kill()
        proc.wait()


def counts(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/counts", timeout=10) as response:
        return json.loads(response.read())


async def chaos(runs: int, seed: int, rate: float, concurrency: int) -> tuple[list[Outcome], dict[str, Any]]:
    with fault_server(seed, rate) as url:
        gate = asyncio.Semaphore(concurrency)

        async def gated(n: int) -> Outcome:
            async with gate:
                return await one(n, url, seed)

        outcomes = await asyncio.gather(*map(gated, range(runs)))
        await asyncio.sleep(HANG)  # a hung request the client gave up on ends on the server too
        return list(outcomes), counts(url)


def problems(outcomes: list[Outcome], served: dict[str, Any], seed: int) -> list[str]:
    """Every broken promise, one line each."""
    found: list[str] = []
    for o in outcomes:
        got = served.get(f"run-{seed}-{o.run}", {})
        where = f"run {o.run} ({o.kind}, {o.wire}{', streamed' if o.streamed else ''})"
        if not o.documented:
            found.append(f"{where} raised {o.ended}: {o.detail}")
        if o.seconds > o.limit + 2:
            found.append(f"{where} took {o.seconds:.1f} s, past its limit of {o.limit:g} s")
        delivered = (got.get("input", 0), got.get("output", 0))
        if o.seconds >= o.limit * 0.95:
            # Stopped by its time limit: a reply the server sent just before may never have been read.
            short = o.usage[0] > delivered[0] or o.usage[1] > delivered[1]
        else:
            short = o.usage != delivered
        if short:
            found.append(f"{where} ended {o.ended} with usage {o.usage}, the server delivered {delivered}: {o.detail}")
    return found


def table(outcomes: list[Outcome], served: dict[str, Any], seconds: float) -> str:
    by_kind: dict[str, Counter[str]] = {}
    for o in outcomes:
        by_kind.setdefault(o.kind, Counter())[o.ended] += 1
    ends = sorted({o.ended for o in outcomes}, key=lambda e: (e != "finish", e))
    lines = ["| kind | runs | " + " | ".join(ends) + " | max s |", "|---" * (len(ends) + 3) + "|"]
    for kind in KINDS:
        if kind in by_kind:
            longest = max(o.seconds for o in outcomes if o.kind == kind)
            lines.append(f"| {kind} | {sum(by_kind[kind].values())} | "
                         + " | ".join(str(by_kind[kind][e]) for e in ends) + f" | {longest:.1f} |")
    requests = sum(m["requests"] for m in served.values())
    faults: Counter[str] = Counter()
    for m in served.values():
        faults.update(m["faults"])
    lines.append("")
    lines.append(f"{len(outcomes)} runs in {seconds:.0f} s; {requests} model requests, {sum(faults.values())} "
                 f"answered with a fault ({', '.join(f'{k} {v}' for k, v in sorted(faults.items()))}); "
                 f"streamed runs {sum(o.streamed for o in outcomes)}; longest run "
                 f"{max(o.seconds for o in outcomes):.1f} s (limit {LIMIT:g} s), longest with a limit of {TIGHT:g} s "
                 f"{max((o.seconds for o in outcomes if o.limit == TIGHT), default=0):.1f} s; requests retried or "
                 f"answered with no reply {requests - sum(o.calls for o in outcomes)}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=0.3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    start = time.monotonic()
    outcomes, served = asyncio.run(chaos(args.runs, args.seed, args.rate, args.concurrency))
    print(table(outcomes, served, time.monotonic() - start))
    found = problems(outcomes, served, args.seed)
    print(f"\n{len(found)} broken promises" + "".join(f"\n- {p}" for p in found))
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
