"""Three processes on one local model at once: one shared server, or a server each (prints figures).

Each process runs a tool agent (multiply, then finish) on `local:qwen2.5-coder-1.5b`: one task to
warm up, then three timed. `shared` gives the three the same settings, so they share one server
(agentflow/local/lease.py); `separate` gives each a different context size, so each starts its
own, as every process did before servers were shared. Needs `agentflow[local]` and the pulled model.

    python benchmarks/shared_server.py shared|separate
"""
import subprocess
import sys
import time

CHILD = r'''
import sys, time
from agentflow import Agent, tool
from agentflow.models import get_model

@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b

model = get_model("local:qwen2.5-coder-1.5b", context=int(sys.argv[1]))
agent = Agent("calc", "You multiply with the tool, then finish with the product.", tools=[multiply], model=model)
agent.run_sync("What is 2 * 3?")  # the server is up
started, tokens, right = time.monotonic(), 0, 0
for a, b in [(17, 23), (41, 59), (123, 45)]:
    result = agent.run_sync(f"What is {a} * {b}?")
    tokens += result.usage.output_tokens
    right += str(a * b) in str(result.output)
print(time.monotonic() - started, tokens, right)
'''


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "shared"
    if mode not in ("shared", "separate"):
        sys.exit("usage: python benchmarks/shared_server.py shared|separate")
    started = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(8192 + (i if mode == "separate" else 0))],
                              stdout=subprocess.PIPE, text=True) for i in range(3)]
    for proc in procs:
        wall, tokens, right = proc.communicate()[0].split()
        print(f"{mode}: {float(wall):.1f} s, {tokens} output tokens, "
              f"{1000 * float(wall) / int(tokens):.0f} ms per output token, right {right}/3")
    print(f"{mode}: all three done in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
