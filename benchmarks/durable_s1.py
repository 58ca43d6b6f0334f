"""S1 of the peer benchmark, plain and durable: what the SQLite journal costs per step (prints figures; no assertions).

S1 (react_overhead): one agent, one tool `lookup(key)` returning a fixed string; the model asks for
K = 20 lookups one after another, then answers (21 model calls, latency 0). The model is a fake
OpenAI-compatible server on loopback, run in a child process so its CPU is not counted (the same
policy as the peer harness's server: it answers from the number of assistant turns in the request).

The same agent runs (a) plainly, `await agent.run(task)`, and (b) durably on DBOS with a SQLite
journal in a fresh temporary directory (removed at the end), `await rt.run(agent, task)`, where
every model call and tool call is a journaled step. (b) is also measured without the wait for the
result that `rt.run` adds ("run only": from `rt.start` until the run's task in this process
ends), which separates the journal's cost from the result polling. After warm-up, the modes are
measured in alternating blocks; DBOS is launched only for the durable blocks, so the plain figures
carry none of its background threads. CPU is `time.process_time()` (this process, all threads),
divided by the model calls the server saw, as in the harness. The journal's cost per step is
(durable CPU - plain CPU) per run / steps journaled per run (model calls + tool calls).

    python benchmarks/durable_s1.py [--runs 20] [--blocks 3] [--warmup 5] [--k 20]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from functools import partial
from pathlib import Path

# The peer harness's texts (shared/bench/scenarios.py), verbatim.
MODEL_NAME = "fake-model"
INSTRUCTIONS = "You are a benchmark agent. Use the lookup tool when asked, then answer."
PROMPT = "Look up the keys you need and then report DONE."
LOOKUP_DESCRIPTION = "Look up a key and return its value."
LOOKUP_RESULT = "value-0123456789"
FINAL_TEXT = "DONE"
FINAL_TOOLS = ("final_result", "final_answer", "finish", "final_output", "submit_final_answer", "done")


# -- the fake model (child process) ----------------------------------------------------------------


def serve(port: int, k: int) -> None:
    """The peer harness's fake server, reduced to what S1 uses: non-streaming chat completions, a
    `lookup` call while fewer than K assistant turns are in the conversation, then a terminal tool if
    one is offered, else the text DONE. `GET /stats` counts requests since `POST /reset`."""
    from aiohttp import web

    state = {"requests": 0, "ids": 0}

    def rounds(messages: list[dict]) -> int:
        n, prev = 0, False
        for m in messages:
            is_a = m.get("role") == "assistant"
            n += is_a and not prev
            prev = is_a
        return n

    async def chat(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        state["requests"] += 1
        state["ids"] += 1
        n = state["ids"]
        names = [(t.get("function") or {}).get("name") for t in body.get("tools") or []]
        r = rounds(body.get("messages") or [])
        content, calls, finish = None, [], "tool_calls"
        if "lookup" in names and r < k:
            calls = [("lookup", json.dumps({"key": f"key{r}"}))]
        elif final := next((f for f in FINAL_TOOLS if f in names), None):
            calls = [(final, json.dumps({"answer": FINAL_TEXT}))]  # agentflow's `finish(answer)`
        else:
            content, finish = FINAL_TEXT, "stop"
        message = {"role": "assistant", "content": content, "refusal": None}
        if calls:
            message["tool_calls"] = [{"id": f"call_{n:08d}_{i}", "type": "function",
                                      "function": {"name": name, "arguments": args}}
                                     for i, (name, args) in enumerate(calls)]
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        return web.json_response({"id": f"chatcmpl-fake{n:08d}", "object": "chat.completion",
                                  "created": int(time.time()), "model": body.get("model") or MODEL_NAME,
                                  "choices": [{"index": 0, "message": message, "logprobs": None,
                                               "finish_reason": finish}],
                                  "usage": usage, "system_fingerprint": None})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"requests": state["requests"]})

    async def reset(request: web.Request) -> web.Response:
        state["requests"] = 0
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=lambda *a: None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url: str, post: bool = False) -> dict:
    req = urllib.request.Request(url, data=b"{}" if post else None, method="POST" if post else "GET")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def start_server(k: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--k", str(k)])
    root = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            http(root + "/stats")
            return proc, root
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the fake model server did not start")


# -- the measurement --------------------------------------------------------------------------------


class Mode:
    """Per-run figures of one way of running the agent, over all blocks."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.cpu: list[float] = []   # seconds, process CPU (all threads)
        self.sys: list[float] = []   # of which system time (the kernel splits user/system by sampling: use the mean)
        self.wall: list[float] = []
        self.calls: list[int] = []   # model calls the server saw

    def median(self, xs: list[float], block: int | None = None, n: int = 0) -> float:
        return statistics.median(xs if block is None else xs[block * n:(block + 1) * n])


async def measure(runs: int, once, root: str, mode: Mode | None) -> None:
    """`runs` runs of `once()`, each timed alone; the server's counter is reset and read untimed."""
    for _ in range(runs):
        http(root + "/reset", post=True)
        gc.collect()
        r0, c0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.process_time(), time.perf_counter()
        output = await once()
        w1, c1, r1 = time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_SELF)
        if FINAL_TEXT not in str(output):
            raise SystemExit(f"unexpected output: {output!r}")
        if mode is not None:
            mode.calls.append(http(root + "/stats")["requests"])
            mode.cpu.append(c1 - c0)
            mode.sys.append(r1.ru_stime - r0.ru_stime)
            mode.wall.append(w1 - w0)


async def bench(args: argparse.Namespace, root: str, db: Path) -> None:
    from agentflow import Agent, durable, tool
    from agentflow.models.openai import OpenAIModel

    @tool(name="lookup", description=LOOKUP_DESCRIPTION)
    async def lookup(key: str) -> str:
        return LOOKUP_RESULT

    model = OpenAIModel(MODEL_NAME, base_url=root + "/v1", api_key="x")
    agent = Agent("agent", INSTRUCTIONS, tools=[lookup], model=model, max_steps=args.k + 5, ends_with=args.ends_with)
    plain = Mode("plain agent.run")
    public = Mode("durable rt.run")
    inner = Mode("durable, run only")
    kinds: Counter[str] = Counter()

    async def plain_once() -> str:
        return (await agent.run(PROMPT)).output

    async def public_once(rt: durable.Runtime) -> str:
        return (await rt.run(agent, PROMPT)).output

    async def inner_once(rt: durable.Runtime) -> str:
        # Until the run's task in this process ends; rt.run() then still waits for DBOS's client,
        # which polls the database for the result once a second.
        await rt.start(agent, PROMPT)
        while not rt.tasks:
            await asyncio.sleep(0)
        (task,) = rt.tasks
        return (await task)["output"]

    for b in range(args.blocks):
        await measure(args.warmup if b == 0 else 0, plain_once, root, None)
        await measure(args.runs, plain_once, root, plain)

        rt = durable.launch(f"sqlite:///{db}", targets=[agent])  # DBOS runs only during the durable blocks
        try:
            for once, mode in ((partial(public_once, rt), public), (partial(inner_once, rt), inner)):
                await measure(args.warmup if b == 0 else 1, once, root, None)
                await measure(args.runs, once, root, mode)
            if b == 0:  # what one durable run journals
                run = await rt.start(agent, PROMPT)
                await run.result()
                kinds.update(s.kind for s in await run.steps())
        finally:
            rt.shutdown()

    modes = (plain, public, inner)
    calls = statistics.median(plain.calls)
    if any(set(m.calls) != {calls} for m in modes):
        print("note: model calls per run varied: " + ", ".join(f"{m.label} {sorted(set(m.calls))}" for m in modes))
    steps = kinds["model"] + kinds["tool"]
    others = ", ".join(f"{n} {k}" for k, n in kinds.items() if k not in ("model", "tool"))
    others = f", plus {others}" if others else ""
    print(f"S1, K={args.k}, ends_with={args.ends_with!r}: {calls:.0f} model calls per run; {steps} steps journaled "
          f"per durable run ({kinds['model']} model calls + {kinds['tool']} tool calls{others})")
    print(f"{args.blocks} blocks of {args.runs} runs of each, after {args.warmup} warm-up runs; medians per run "
          "(sys: mean system time within CPU)")
    print(f"  {'':20} {'CPU ms/model call':>17} {'CPU ms/run':>11} {'(sys)':>7} {'wall ms/run':>12}")
    for m in modes:
        print(f"  {m.label:20} {m.median(m.cpu) / calls * 1e3:17.3f} {m.median(m.cpu) * 1e3:11.2f} "
              f"{statistics.mean(m.sys) * 1e3:7.2f} {m.median(m.wall) * 1e3:12.1f}")
    for m in (public, inner):
        ratio = m.median(m.cpu) / plain.median(plain.cpu)
        blocks = [m.median(m.cpu, b, args.runs) / plain.median(plain.cpu, b, args.runs) for b in range(args.blocks)]
        extra = m.median(m.cpu) - plain.median(plain.cpu)
        wall = m.median(m.wall) - plain.median(plain.wall)
        print(f"{m.label}: CPU per model call {ratio:.2f}x plain (target <= 1.5x; blocks "
              f"{' '.join(f'{r:.2f}' for r in blocks)}); wall per run "
              f"{m.median(m.wall) / plain.median(plain.wall):.1f}x")
        if steps:
            walls = (f"+{wall / steps * 1e6:.0f} us wall per step" if m is inner
                     else "wall: mostly the result wait, DBOS's client polls every 1 s")
            print(f"  journal cost: +{extra * 1e3:.1f} ms CPU per run = {extra / steps * 1e6:.0f} us CPU per journaled "
                  f"step ({walls})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="measured runs per block and mode")
    parser.add_argument("--blocks", type=int, default=3, help="alternating plain/durable blocks")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs of each mode first")
    parser.add_argument("--k", type=int, default=20, help="lookups per run (S1: 20)")
    parser.add_argument("--ends-with", default="text", choices=["text", "finish"],
                        help="the agent's end protocol; the peer adapter uses text")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.k)
        return
    proc, root = start_server(args.k)
    try:
        with tempfile.TemporaryDirectory(prefix="agentflow-durable-s1-") as tmp:  # a fresh journal each time
            asyncio.run(bench(args, root, Path(tmp) / "journal.db"))
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
