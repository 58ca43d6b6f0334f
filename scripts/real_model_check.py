"""Run a handful of tool tasks on a real model and print protocol success and accuracy.

Protocol success: the run ended with a valid `finish` within its step limit. Accuracy: the
answer contains the expected value. Not part of the test suite (a real model is slow).

    llama-server -m MODEL.gguf --host 127.0.0.1 --port 8080 -c 8192 --jinja
    python scripts/real_model_check.py --base-url http://127.0.0.1:8080/v1 --constrained
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from agentflow.tools import calculator

from agentflow import Agent, get_model, tool

WEATHER = {"oslo": "-3C, snow", "rome": "24C, sunny", "lima": "19C, cloudy"}
CAPITALS = {"japan": "Tokyo", "france": "Paris", "kenya": "Nairobi"}


@tool
def weather(city: Annotated[str, "a city name"]) -> str:
    """Current weather in a city."""
    return WEATHER.get(city.strip().lower(), f"no weather data for {city}")


@tool
def capital(country: Annotated[str, "a country name"]) -> str:
    """The capital city of a country."""
    return CAPITALS.get(country.strip().lower(), f"unknown country {country}")


@tool
def word_count(text: Annotated[str, "the text to count words in"]) -> int:
    """Count the words in a text."""
    return len(text.split())


@tool
def reverse(text: Annotated[str, "the text to reverse"]) -> str:
    """Reverse a string, character by character."""
    return text[::-1]


@tool
def km_to_miles(km: Annotated[float, "a distance in kilometres"]) -> float:
    """Convert kilometres to miles."""
    return round(km * 0.621371, 2)


@dataclass
class Task:
    question: str
    tools: list[Any]
    check: Callable[[str], bool]


def has_number(expected: float) -> Callable[[str], bool]:
    def check(answer: str) -> bool:
        return any(abs(float(n) - expected) < 0.05 for n in re.findall(r"-?\d+(?:\.\d+)?", answer.replace(",", "")))
    return check


def has_text(expected: str) -> Callable[[str], bool]:
    return lambda answer: expected.lower() in answer.lower()


TASKS = [
    Task("What is 17*23?", [calculator], has_number(391)),
    Task("What is (15-3)*4?", [calculator], has_number(48)),
    Task("What is 1234 + 5678?", [calculator], has_number(6912)),
    Task("What is 2 to the power of 10, minus 24?", [calculator], has_number(1000)),
    Task("What is the square root of 144, plus 8?", [calculator], has_number(20)),
    Task("What is the weather in Oslo right now?", [weather, calculator], has_text("-3")),
    Task("What is the capital of Japan?", [capital, weather], has_text("Tokyo")),
    Task("How many words are in the sentence 'the quick brown fox jumps'?", [word_count, reverse], has_number(5)),
    Task("Reverse the string 'agentflow'.", [reverse, word_count], has_text("wolftnega")),
    Task("How many miles is 5 kilometres?", [km_to_miles, calculator], has_number(3.11)),
]

INSTRUCTIONS = ("You solve the user's task with the tools. Call a tool to get facts or compute; read its "
                "observation; when you know the answer, call `finish` with it.")


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--base-url", default=os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1"))
    p.add_argument("--model", default="local", help="model name the server expects")
    p.add_argument("--constrained", action="store_true", help="grammar-constrained tool calling")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=6)
    args = p.parse_args()
    model = get_model(f"openai:{args.model}", base_url=args.base_url,
                      tool_calling="constrained" if args.constrained else "native")
    ok = right = runs = 0
    started = time.monotonic()
    for _ in range(args.repeat):
        for task in TASKS:
            agent = Agent("checker", INSTRUCTIONS, tools=task.tools, model=model, max_steps=args.max_steps)
            try:
                result = await agent.run(task.question)
                finished, answer = result.ok, str(result.output)
                detail = f"{result.stop_reason}, {result.usage.requests} calls"
            except Exception as e:  # a protocol failure is a result here, not a crash
                finished, answer, detail = False, "", f"{type(e).__name__}: {e}"[:120]
            correct = finished and task.check(answer)
            runs, ok, right = runs + 1, ok + finished, right + correct
            print(f"{'OK ' if finished else 'ERR'} {'right' if correct else 'wrong'}  {task.question[:48]:48}"
                  f" -> {answer[:40]!r} ({detail})", flush=True)
    print(f"\nprotocol success: {ok}/{runs}   answers right: {right}/{runs}   "
          f"mode: {'constrained' if args.constrained else 'native'}   {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
