"""The REST server under load: runs/s, latency from `POST /runs` to the result, and peak RSS.

    python benchmarks/server_load.py                     # N = 1, 50, 500 concurrent clients
    python benchmarks/server_load.py --clients 50 --runs 1000

For each N it starts `agentflow serve benchmarks/server_load.py:echo` (a new SQLite file; the
model answers at once, so a run is one model call and its `finish`) and N clients that each
loop, on a keep-alive connection of their own: `POST /runs`, then `GET /runs/{id}?wait=60`.
Then the same runs started in-process with `durable.launch().run(echo, task)` by 50 concurrent
callers (in a process of their own), for the HTTP overhead per run. The clients share the
machine with the server (two cores here), so compare ratios measured in one run, not absolute
figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from agentflow import Agent, FunctionModel
from agentflow.models import call

HERE = Path(__file__).resolve()
echo = Agent(name="echo", model=FunctionModel(lambda info: call("finish", answer="ok"), name="zero-latency"))


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def summary(latencies: list[float], wall: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {"runs": len(ordered), "runs_per_s": len(ordered) / wall, "wall_per_run_ms": 1000 * wall / len(ordered),
            "p50_ms": 1000 * ordered[len(ordered) // 2], "p99_ms": 1000 * ordered[min(len(ordered) - 1,
                                                                                   int(len(ordered) * 0.99))],
            "mean_ms": 1000 * statistics.fmean(ordered)}


class Connection:
    """One keep-alive HTTP/1.1 connection: a load generator that costs next to nothing (httpx's pool walks
    every connection it holds per request; with 500 of them the clients would use more CPU than the server)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        data = b"" if body is None else json.dumps(body).encode()
        self.writer.write(f"{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                          f"content-length: {len(data)}\r\n\r\n".encode() + data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        payload = json.loads(await self.reader.readexactly(length))
        if status >= 400:
            raise RuntimeError(f"{method} {path}: {status} {payload}")
        return payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def drive(port: int, clients: int, runs: int) -> dict[str, float]:
    latencies: list[float] = []
    left = runs

    async def client() -> None:
        nonlocal left
        http = Connection(port)
        try:
            while left > 0:
                left -= 1
                began = time.perf_counter()
                made = await http.request("POST", "/runs", {"target": "echo", "input": "say ok"})
                while (view := await http.request("GET", f"/runs/{made['id']}?wait=60"))["status"] not in (
                        "succeeded", "failed", "cancelled"):
                    pass
                assert view["output"] == "ok", view
                latencies.append(time.perf_counter() - began)
        finally:
            http.close()

    await client()  # warm-up: imports, first connections, the database's first pages
    latencies.clear()
    left = runs
    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return summary(latencies, time.perf_counter() - began)


def over_http(clients: int, runs: int) -> dict[str, float]:
    work = tempfile.mkdtemp(prefix="server-load-")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "agentflow.cli", "serve", f"{HERE}:echo", "--port", str(port),
                             "--db", f"sqlite:///{work}/runs.db", "--log-level", "warning"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        import httpx

        for _ in range(600):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        figures = asyncio.run(drive(port, clients, runs))
        figures["server_peak_rss_mb"] = peak_rss_mb(proc.pid)
        return figures
    finally:
        proc.terminate()
        proc.wait(30)


async def in_process(clients: int, runs: int) -> dict[str, float]:
    from agentflow import durable

    rt = durable.launch(f"sqlite:///{tempfile.mkdtemp(prefix='inproc-load-')}/runs.db", targets=[echo])
    latencies: list[float] = []
    left = runs

    async def caller() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            began = time.perf_counter()
            result = await rt.run(echo, "say ok")
            assert result.output == "ok"
            latencies.append(time.perf_counter() - began)

    try:
        await caller()
        latencies.clear()
        left = runs
        began = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(clients)))
        figures = summary(latencies, time.perf_counter() - began)
        figures["peak_rss_mb"] = peak_rss_mb(os.getpid())
        return figures
    finally:
        rt.shutdown()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, nargs="+", default=[1, 50, 500])
    p.add_argument("--runs", type=int, default=None, help="runs per N (default: 200 at N=1, else 20 per client, "
                                                          "at least 1000)")
    p.add_argument("--in-process", type=int, default=None, help=argparse.SUPPRESS)  # the baseline's own process
    args = p.parse_args()
    if args.in_process is not None:
        print(json.dumps(asyncio.run(in_process(args.in_process, args.runs or 1000))))
        return 0
    rows = []
    for n in args.clients:
        runs = args.runs or (200 if n == 1 else max(1000, 20 * n))
        rows.append((f"HTTP, N={n}", over_http(n, runs)))
        print(f"{rows[-1][0]}: {json.dumps({k: round(v, 2) for k, v in rows[-1][1].items()})}", flush=True)
    baseline_n = 50
    done = subprocess.run([sys.executable, str(HERE), "--in-process", str(baseline_n), "--runs",
                           str(args.runs or 1000)], capture_output=True, text=True, check=True)
    base = json.loads(done.stdout.strip().splitlines()[-1])
    rows.append((f"in-process rt.run, N={baseline_n}", base))
    print("\n| | runs | runs/s | p50 ms | p99 ms | mean ms | wall/run ms | peak RSS MB |\n" + "|---" * 8 + "|")
    for label, f in rows:
        rss = f.get("server_peak_rss_mb", f.get("peak_rss_mb", float("nan")))
        print(f"| {label} | {f['runs']:.0f} | {f['runs_per_s']:.0f} | {f['p50_ms']:.1f} | {f['p99_ms']:.1f} | "
              f"{f['mean_ms']:.1f} | {f['wall_per_run_ms']:.2f} | {rss:.0f} |")
    http50 = next((f for label, f in rows if label == f"HTTP, N={baseline_n}"), None)
    if http50 is not None:
        wall, mean = http50["wall_per_run_ms"] / base["wall_per_run_ms"], http50["mean_ms"] / base["mean_ms"]
        print(f"\nHTTP / in-process at N={baseline_n}: wall per run {wall:.2f}x, mean latency {mean:.2f}x "
              "(target: wall per run <= 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
