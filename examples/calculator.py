"""An agent with a calculator tool answers "What is 17*23?" and ends by calling `finish`.

    python examples/calculator.py --model openai:gpt-4o-mini
    python examples/calculator.py --base-url http://127.0.0.1:8080/v1 --constrained   # llama-server
"""

from __future__ import annotations

import sys

from _setup import model_from, parser
from agentflow.tools import calculator

from agentflow import Agent, ConfigError


def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("question", nargs="?", default="What is 17*23?")
    args = p.parse_args()
    try:
        model = model_from(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    agent = Agent("calculator", "Answer arithmetic questions. Use the calculator tool for every computation.",
                  tools=[calculator], model=model, max_steps=8)
    result = agent.run_sync(args.question)
    for step in result.steps:
        if step.kind == "tool":
            print(f"  {step.call.name}({step.call.arguments}) -> {step.observation}")
    print(f"answer: {result.output}   [{result.stop_reason}; {result.usage.requests} model calls, "
          f"{result.usage.total_tokens} tokens]")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
