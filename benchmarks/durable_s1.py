"""S1 of the peer benchmark, plain and durable: what the SQLite journal costs (prints figures; no assertions).

S1 (react_overhead): one agent, one tool `lookup(key)` returning a fixed string; the model asks for
K = 20 lookups one after another, then answers (21 model calls, latency 0). The model is a fake
OpenAI-compatible server on loopback, run in a child process so its CPU is not counted (the same
policy as the peer harness's server: it answers from the number of assistant turns in the request;
a model named `...-kN` gets N lookups).

The same agent runs (a) plainly, `await agent.run(task)`, and (b) durably on DBOS with a SQLite
journal in a fresh temporary directory (removed at the end), `await rt.run(agent, task)`, where
every model call and tool call is a journaled step. A second agent, whose model answers at once
(one model call), separates what a durable run costs once (DBOS's workflow: its start, result and
status) from what each journaled step costs. The four modes are warmed up, then measured in
rounds, each mode once per round, so a slow spell of the (shared, noisy) machine hits every mode
alike; DBOS runs throughout, so its background threads' little CPU is counted in every mode. CPU
is `time.process_time()` (this process, all threads), divided by the model calls the server saw,
as in the harness.

    python benchmarks/durable_s1.py [--rounds 60] [--warmup 5] [--k 20] [--ends-with text|finish]
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
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

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
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    state = {"requests": 0, "ids": 0}

    def rounds(messages: list[dict]) -> int:
        n, prev = 0, False
        for m in messages:
            is_a = m.get("role") == "assistant"
            n += is_a and not prev
            prev = is_a
        return n

    def chat(body: dict) -> dict:
        state["requests"] += 1
        state["ids"] += 1
        n = state["ids"]
        names = [(t.get("function") or {}).get("name") for t in body.get("tools") or []]
        r = rounds(body.get("messages") or [])
        model = str(body.get("model") or "")
        lookups = int(model.rsplit("-k", 1)[1]) if "-k" in model else k  # "fake-model-k0": K = 0
        content, calls, finish = None, [], "tool_calls"
        if "lookup" in names and r < lookups:
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
        return {"id": f"chatcmpl-fake{n:08d}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model") or MODEL_NAME,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                "usage": usage, "system_fingerprint": None}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real API
        disable_nagle_algorithm = True  # headers and body go out as two writes

        def log_message(self, format: str, *args: object) -> None:
            pass

        def reply(self, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # /stats
            self.reply({"requests": state["requests"]})

        def do_POST(self) -> None:  # /v1/chat/completions, /reset
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if self.path == "/reset":
                state["requests"] = 0
                self.reply({"ok": True})
            else:
                self.reply(chat(body))

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


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
    """Per-run figures of one way of running one agent, over all rounds."""

    def __init__(self, label: str, once: Callable[[], Awaitable[str]]) -> None:
        self.label, self.once = label, once
        self.cpu: list[float] = []   # seconds, process CPU (all threads)
        self.sys: list[float] = []   # of which system time (the kernel splits user/system by sampling: use the mean)
        self.wall: list[float] = []
        self.calls: list[int] = []   # model calls the server saw

    async def measure(self, root: str, keep: bool = True) -> None:
        """One run, timed alone; the server's counter is reset and read untimed."""
        http(root + "/reset", post=True)
        gc.collect()
        r0, c0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.process_time(), time.perf_counter()
        output = await self.once()
        w1, c1, r1 = time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_SELF)
        if FINAL_TEXT not in str(output):
            raise SystemExit(f"unexpected output: {output!r}")
        if keep:
            self.calls.append(http(root + "/stats")["requests"])
            self.cpu.append(c1 - c0)
            self.sys.append(r1.ru_stime - r0.ru_stime)
            self.wall.append(w1 - w0)

    def cpu_ms(self) -> float:
        return statistics.median(self.cpu) * 1e3


def spread(durable: Mode, plain: Mode) -> str:
    """The quartiles of the per-round ratios: how much the machine's noise moves the median."""
    ratios = sorted(d / p for d, p in zip(durable.cpu, plain.cpu, strict=True))
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    return f"quartiles of per-round ratios {q1:.2f}-{q3:.2f}"


async def bench(args: argparse.Namespace, root: str, db: Path) -> None:
    from agentflow import Agent, durable, tool
    from agentflow.models.openai import OpenAIModel

    @tool(name="lookup", description=LOOKUP_DESCRIPTION)
    async def lookup(key: str) -> str:
        return LOOKUP_RESULT

    def agent(k: int) -> Agent[str]:  # the fake server reads K from the model's name
        model = OpenAIModel(f"{MODEL_NAME}-k{k}", base_url=root + "/v1", api_key="x")
        return Agent(f"agent{k}", INSTRUCTIONS, tools=[lookup], model=model, max_steps=k + 5, ends_with=args.ends_with)

    s1, one = agent(args.k), agent(0)
    rt = durable.launch(f"sqlite:///{db}", targets=[s1, one])
    try:
        modes: dict[str, Mode] = {}
        for a, label in ((s1, f"S1 (K={args.k})"), (one, "one call (K=0)")):
            modes[label + " plain"] = Mode(f"{label}: plain agent.run", partial(_plain, a))
            modes[label + " durable"] = Mode(f"{label}: durable rt.run", partial(_durable, rt, a))
        for m in modes.values():  # warm-up: imports, connections, caches
            for _ in range(args.warmup):
                await m.measure(root, keep=False)
        for _ in range(args.rounds):  # interleaved, so a slow spell of the machine hits every mode alike
            for m in modes.values():
                await m.measure(root)
        run = await rt.start(s1, PROMPT)
        await run.result()
        kinds = Counter(s.kind for s in await run.steps())
    finally:
        rt.shutdown()
    report(args, list(modes.values()), kinds)


async def _plain(agent: Any) -> str:
    return (await agent.run(PROMPT)).output


async def _durable(rt: Any, agent: Any) -> str:
    return (await rt.run(agent, PROMPT)).output


def report(args: argparse.Namespace, modes: list[Mode], kinds: Counter[str]) -> None:
    s1_plain, s1_durable, one_plain, one_durable = modes
    calls = statistics.median(s1_plain.calls)
    if any(len(set(m.calls)) != 1 for m in modes):
        print("note: model calls per run varied: " + ", ".join(f"{m.label} {sorted(set(m.calls))}" for m in modes))
    steps = kinds["model"] + kinds["tool"]
    others = "".join(f", plus {n} {k}" for k, n in kinds.items() if k not in ("model", "tool"))
    print(f"S1, K={args.k}, ends_with={args.ends_with!r}: {calls:.0f} model calls per run; {steps} steps journaled "
          f"per durable run ({kinds['model']} model calls + {kinds['tool']} tool calls{others})")
    print(f"{args.rounds} rounds, each mode once per round, after {args.warmup} warm-up runs of each; medians per run "
          "(sys: mean system time within CPU)")
    print(f"  {'':34} {'CPU ms/model call':>17} {'CPU ms/run':>11} {'(sys)':>7} {'wall ms/run':>12}")
    for m in modes:
        n = statistics.median(m.calls)
        print(f"  {m.label:34} {m.cpu_ms() / n:17.3f} {m.cpu_ms():11.2f} {statistics.mean(m.sys) * 1e3:7.2f} "
              f"{statistics.median(m.wall) * 1e3:12.1f}")
    ratio = s1_durable.cpu_ms() / s1_plain.cpu_ms()
    print(f"durable S1: CPU per model call {ratio:.2f}x plain (target <= 1.5x; {spread(s1_durable, s1_plain)}); "
          f"wall per run {statistics.median(s1_durable.wall) / statistics.median(s1_plain.wall):.2f}x")
    fixed = one_durable.cpu_ms() - one_plain.cpu_ms()  # a run of one model call: one step
    extra = s1_durable.cpu_ms() - s1_plain.cpu_ms()
    if steps > 1:
        print(f"  durable extra per run: {extra:.2f} ms CPU = {fixed:.2f} ms once (the one-call run's: DBOS's workflow "
              f"start, result and status, and one step) + {(extra - fixed) / (steps - 1) * 1e3:.0f} us per further "
              "step (its journal write, and DBOS storing a longer result)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=60, help="measured runs of each mode, interleaved")
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
