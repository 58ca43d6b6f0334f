"""peer_adapter.py with tracing on (AGENTFLOW_BENCH_OTEL=memory): a second agentflow column in one harness run."""
import os
import runpy
from pathlib import Path

os.environ["AGENTFLOW_BENCH_OTEL"] = "memory"
runpy.run_path(str(Path(__file__).with_name("peer_adapter.py")), run_name="__main__")
