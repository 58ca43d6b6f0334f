"""S1 CPU per model call with tracing off and on, in one run of the peer bench harness.

    python benchmarks/telemetry_overhead.py BENCH [--reps N] [--out FILE.md] [--jsonl FILE.jsonl]

BENCH is the harness's folder (README.md). Its run_all.py runs `raw_openai`, `agentflow`
(peer_adapter.py, tracing off) and `agentflow_traced` (the same adapter with
AGENTFLOW_BENCH_OTEL=memory: `telemetry.instrument()` on a TracerProvider whose spans go to the
SDK's in-memory exporter), interleaved per repetition, each run a fresh process. The medians and
their ratios are printed at the end. Run it with the project's python.
"""
import argparse
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLUMNS = ("raw_openai", "agentflow", "agentflow_traced")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench", help="the peer bench harness's folder (it holds run_all.py)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", default="/tmp/telemetry_bench.md")
    ap.add_argument("--jsonl", default="/tmp/telemetry_bench.jsonl")
    a = ap.parse_args()
    sys.path.insert(0, str(Path(a.bench).resolve()))
    import run_all  # the harness, stdlib only

    run_all.FRAMEWORKS["agentflow_traced"] = (sys.prefix, str(HERE / "peer_adapter_traced.py"))  # this python
    sys.argv = ["run_all.py", "--agentflow-adapter", str(HERE / "peer_adapter.py"), "--agentflow-python",
                sys.executable, "--frameworks", ",".join(COLUMNS), "--scenarios", "S1", "--reps", str(a.reps),
                "--out", a.out, "--jsonl", a.jsonl]
    run_all.main()
    with open(a.jsonl) as f:
        rows = [json.loads(line) for line in f if line.strip()][1:]
    cpu = {fw: [r["cpu_per_call_ms"] for r in rows if r["framework"] == fw and r.get("ok")] for fw in COLUMNS}
    med = {fw: statistics.median(v) for fw, v in cpu.items()}
    for fw in COLUMNS:
        print(f"{fw:17s} S1 CPU ms per model call: median {med[fw]:.3f}  runs {', '.join(f'{x:.3f}' for x in cpu[fw])}")
    print(f"tracing off / raw_openai: {med['agentflow'] / med['raw_openai']:.3f}")
    print(f"tracing on  / raw_openai: {med['agentflow_traced'] / med['raw_openai']:.3f}")
    print(f"tracing on  / off:        {med['agentflow_traced'] / med['agentflow']:.3f}")


if __name__ == "__main__":
    main()
