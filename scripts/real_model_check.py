"""Run a suite of small tasks on a real model and print protocol success and accuracy per kind.

Five kinds of task:

- tool: one task agent (`Agent(..., tools=[...])`) answers with its tools;
- route: a `Supervisor(team, mode="route")` delegates to a team of three task agents (math:
  the calculator; lookup: capitals and weather; text: word counts and reversal);
- worklist: the same team under `Supervisor(team, mode="worklist")`, tasks that split in two;
- chain: a deterministic `Workflow` of two or three LLM steps joined with `>>` (look up a
  capital, then its weather, then a sentence about it; or compute a distance, then convert it);
- conversation: a `Conversation` of an assistant with tools and a `UserProxy` holding the goal,
  or a `GroupChat` of a lead and two tool agents (an LLM manager or round robin). The goal is met
  when the conversation's result passes the check, whatever the proxy's verdict says.

Protocol success: the run ended with a valid `finish` within its limits (`result.ok`); for a
chain, the workflow completed with an output. An exception counts as a protocol failure, not
a crash. Answer right: a check on the final answer (it contains the expected value). Each run
is bounded by `--max-steps` (task agents), `--supervisor-steps` and `--max-seconds` (a
`Limits(max_seconds=...)` on every agent, supervisor and workflow). One line per run, then a
table per kind (protocol success, answers right, mean model calls, mean seconds) and the
totals. `--json FILE` writes every run's record with its transcript (model replies, tool
observations and worklist changes of the run and its sub-agents); `--transcripts` prints the
transcript of every run whose answer was not right. Not part of the test suite (a real model
is slow).

`--runs N` runs the suite N times with seeds 1..N at `--temperature` (0.3 by default when N > 1:
greedy decoding repeats itself, so only sampling shows the spread), prints each run's table,
then the mean and the spread (lowest-highest) of each kind's rates over the runs.

    llama-server -m MODEL.gguf --host 127.0.0.1 --port 8080 -c 8192 --jinja
    python scripts/real_model_check.py --constrained                  # the whole suite
    python scripts/real_model_check.py --constrained --kinds route,chain --json runs.json
    python scripts/real_model_check.py --constrained --match capital --transcripts
    python scripts/real_model_check.py --model local:qwen2.5-coder-1.5b --runs 3   # starts the server itself

`--model` takes a full model string (default `openai:local` on `--base-url`); `--constrained`
adds `tool_calling="constrained"` to `openai:` models (grammar-constrained tool calls, for
small local models that do not emit native tool calls).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any

from agentflow.tools import calculator

from agentflow import (
    Agent,
    Conversation,
    Event,
    GroupChat,
    Limits,
    Model,
    ModelSettings,
    ModelStep,
    Supervisor,
    ToolStep,
    Turn,
    UserProxy,
    WorklistChanged,
    get_model,
    tool,
)
from agentflow.workflow import Workflow, task

WEATHER = {"oslo": "-3C, snow", "rome": "24C, sunny", "lima": "19C, cloudy", "tokyo": "15C, rain",
           "paris": "12C, windy", "nairobi": "22C, clear"}
CAPITALS = {"japan": "Tokyo", "france": "Paris", "kenya": "Nairobi", "norway": "Oslo", "italy": "Rome",
            "peru": "Lima"}
KINDS = ("tool", "route", "worklist", "chain", "conversation")


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


# -- checks -------------------------------------------------------------------------------------

Check = Callable[[str], bool]


def has_number(expected: float) -> Check:
    def check(answer: str) -> bool:
        return any(abs(float(n) - expected) < 0.05 for n in re.findall(r"-?\d+(?:\.\d+)?", answer.replace(",", "")))
    return check


def has_text(expected: str) -> Check:
    return lambda answer: expected.lower() in answer.lower()


def has_degrees(expected: int) -> Check:
    """A temperature as the weather tool gives it ("15C", "15 °C", "15 degrees"): not the same number elsewhere."""
    pattern = re.compile(rf"(?<![\d.-]){expected}\s*(?:°\s*C?|C\b|degrees)", re.IGNORECASE)
    return lambda answer: bool(pattern.search(answer))


def all_of(*checks: Check) -> Check:
    return lambda answer: all(c(answer) for c in checks)


# -- the agents ---------------------------------------------------------------------------------

INSTRUCTIONS = ("You solve the user's task with the tools. Call a tool to get facts or compute; read its "
                "observation; when you know the answer, call `finish` with it.")


@dataclass
class Setup:
    """What every run is built from: the model and the limits."""

    model: Model
    max_steps: int
    supervisor_steps: int
    max_seconds: float
    settings: ModelSettings | None = None

    @property
    def limits(self) -> Limits:
        return Limits(max_seconds=self.max_seconds)

    def agent(self, name: str, tools: list[Any], description: str = "") -> Agent[str]:
        return Agent(name, INSTRUCTIONS, tools=tools, model=self.model, max_steps=self.max_steps,
                     limits=self.limits, description=description, settings=self.settings)

    def team(self) -> list[Agent[str]]:
        return [
            self.agent("math", [calculator], "Does arithmetic with a calculator: give it one calculation."),
            self.agent("lookup", [capital, weather],
                       "Looks up the capital city of a country, or the current weather in a city."),
            self.agent("text", [word_count, reverse], "Counts the words in a text, or reverses a string."),
        ]

    def supervisor(self, mode: Any) -> Supervisor[str]:
        return Supervisor(self.team(), model=self.model, mode=mode, max_steps=self.supervisor_steps,
                          limits=self.limits, settings=self.settings)


# -- the chains (deterministic workflows of LLM steps) ------------------------------------------

def capital_then_weather(s: Setup) -> Workflow[Any]:
    lookup = s.agent("lookup", [capital, weather])
    city = task(lookup, "What is the capital of {country}? Answer with the city name only.", name="city")
    forecast = task(lookup, "What is the weather in {city}?", name="forecast")
    return Workflow(city >> forecast, name="capital_then_weather", model=s.model, limits=s.limits)


def capital_weather_sentence(s: Setup) -> Workflow[Any]:
    lookup = s.agent("lookup", [capital, weather])
    city = task(lookup, "What is the capital of {country}? Answer with the city name only.", name="city")
    forecast = task(lookup, "What is the weather in {city}?", name="forecast")

    @task("Write one short sentence for a traveller to {city} about today's weather there, keeping the "
          "temperature exactly as given: {forecast}")
    async def sentence(city: str, forecast: str) -> str: ...

    return Workflow(city >> forecast >> sentence, name="capital_weather_sentence", model=s.model,
                    limits=s.limits)


def compute_then_convert(s: Setup) -> Workflow[Any]:
    math = s.agent("math", [calculator])
    convert = s.agent("convert", [km_to_miles, calculator])
    km = task(math, "A runner does {laps} laps of {lap_km} km. How many km is that? Answer with the number only.",
              name="km")
    miles = task(convert, "How many miles is {km} kilometres?", name="miles")
    return Workflow(km >> miles, name="compute_then_convert", model=s.model, limits=s.limits)


# -- the conversations --------------------------------------------------------------------------

Talk = Conversation[str] | GroupChat[str]


def pair(tools: list[Any], goal: str) -> Callable[[Setup], Talk]:
    def build(s: Setup) -> Talk:
        proxy = UserProxy(goal, model=s.model, settings=s.settings)
        return Conversation(s.agent("assistant", tools), proxy, max_turns=8, limits=s.limits)
    return build


def group(manager: Any) -> Callable[[Setup], Talk]:
    def build(s: Setup) -> Talk:
        lead = Agent("lead", "You lead the team: ask the members for what the task needs, one thing at a time, and "
                     "when their messages hold every part of the answer, call `finish` with it.", model=s.model,
                     max_steps=s.max_steps, description="Leads the team and gives the final answer.",
                     settings=s.settings)
        members = [lead, s.agent("lookup", [capital, weather], "Looks up capitals of countries and weather in cities."),
                   s.agent("math", [calculator], "Does arithmetic with a calculator.")]
        return GroupChat(members, manager=manager, finishers=["lead"], max_turns=8, limits=s.limits, seed=1)
    return build


# -- the suite ----------------------------------------------------------------------------------

@dataclass
class Case:
    kind: str
    question: str  # the task; for a chain, a label
    check: Check
    tools: list[Any] = field(default_factory=list[Any])
    chain: Callable[[Setup], Workflow[Any]] | None = None
    inputs: dict[str, Any] = field(default_factory=dict[str, Any])
    talk: Callable[[Setup], Talk] | None = None


def chain(build: Callable[[Setup], Workflow[Any]], check: Check, **inputs: Any) -> Case:
    label = f"{build.__name__}({', '.join(f'{k}={v}' for k, v in inputs.items())})"
    return Case("chain", label, check, chain=build, inputs=inputs)


CASES = [
    Case("tool", "What is 17*23?", has_number(391), [calculator]),
    Case("tool", "What is (15-3)*4?", has_number(48), [calculator]),
    Case("tool", "What is 1234 + 5678?", has_number(6912), [calculator]),
    Case("tool", "What is 2 to the power of 10, minus 24?", has_number(1000), [calculator]),
    Case("tool", "What is the square root of 144, plus 8?", has_number(20), [calculator]),
    Case("tool", "What is the weather in Oslo right now?", has_text("-3"), [weather, calculator]),
    Case("tool", "What is the capital of Japan?", has_text("Tokyo"), [capital, weather]),
    Case("tool", "How many words are in the sentence 'the quick brown fox jumps'?", has_number(5),
         [word_count, reverse]),
    Case("tool", "Reverse the string 'agentflow'.", has_text("wolftnega"), [reverse, word_count]),
    Case("tool", "How many miles is 5 kilometres?", has_number(3.11), [km_to_miles, calculator]),

    Case("route", "What is the capital of Kenya?", has_text("Nairobi")),
    Case("route", "What is 345 * 12?", has_number(4140)),
    Case("route", "Reverse the string 'supervisor'.", has_text("rosivrepus")),
    Case("route", "How many words are in the sentence 'agents of agents are fun'?", has_number(5)),
    Case("route", "What is the weather in Rome, and what is 12*12?", all_of(has_text("24"), has_number(144))),
    Case("route", "What is the capital of France, and what is the weather in Lima?",
         all_of(has_text("Paris"), has_text("19"))),

    Case("worklist", "What is the weather in Rome, and what is 12*12?", all_of(has_text("24"), has_number(144))),
    Case("worklist", "What are the capitals of France and Kenya?", all_of(has_text("Paris"), has_text("Nairobi"))),
    Case("worklist", "What is the weather in Oslo, and what is the weather in Lima?",
         all_of(has_text("-3"), has_text("19"))),
    Case("worklist", "What is the capital of Japan, and how many words are in 'one two three four'?",
         all_of(has_text("Tokyo"), has_number(4))),
    Case("worklist", "Reverse the string 'worklist', and compute 99 + 1.",
         all_of(has_text("tsilkrow"), has_number(100))),
    Case("worklist", "What is 25*4, and what is the capital of Italy?", all_of(has_number(100), has_text("Rome"))),

    chain(capital_then_weather, has_text("24"), country="Italy"),
    chain(capital_then_weather, has_text("19"), country="Peru"),
    chain(capital_weather_sentence, has_text("-3"), country="Norway"),
    chain(capital_weather_sentence, has_text("12"), country="France"),
    chain(compute_then_convert, has_number(24.85), laps=8, lap_km=5),
    chain(compute_then_convert, has_number(74.56), laps=12, lap_km=10),

    Case("conversation", "pair: the price of 3 notebooks at 4.25 and 2 pens at 1.10", has_number(14.95),
         talk=pair([calculator], "Know the total price of 3 notebooks at 4.25 euros each and 2 pens at 1.10 euros "
                   "each. The result is that total.")),
    Case("conversation", "pair: the weather in the capital of Peru", all_of(has_text("Lima"), has_text("19")),
         talk=pair([capital, weather], "Find out today's weather in the capital city of Peru. The result names the "
                   "city and its weather.")),
    Case("conversation", "pair: 'conversation' reversed", has_text("noitasrevnoc"),
         talk=pair([reverse, word_count], "Get the word 'conversation' written backwards, character by character. "
                   "The result is the reversed word.")),
    Case("conversation", "What is the capital of Kenya, and what is 21 * 3?",
         all_of(has_text("Nairobi"), has_number(63)), talk=group("llm")),
    Case("conversation", "What is the weather in Tokyo, and what is 15 + 27?",
         all_of(has_text("rain"), has_degrees(15), has_number(42)), talk=group("round_robin")),
]


# -- running ------------------------------------------------------------------------------------

@dataclass
class Record:
    number: int
    kind: str
    question: str
    ok: bool
    right: bool
    calls: int
    seconds: float
    stop: str
    answer: str
    transcript: list[str]


def describe(event: Event) -> str | None:
    """One transcript line for a model reply, a tool observation or a worklist change."""
    if isinstance(event, ModelStep):
        message = event.response.message
        if not message.tool_calls:
            return f"{event.agent} said: {message.content!r}"
        thought = f"  # {message.content}" if message.content else ""
        return "; ".join(f"{event.agent} -> {c.name}({c.arguments})" for c in message.tool_calls) + thought
    if isinstance(event, ToolStep):
        error = f" [{event.error}]" if event.error else ""
        return f"{event.agent} <- {event.call.name}{error}: {event.observation}"
    if isinstance(event, WorklistChanged):
        return f"{event.agent} worklist: {event.item.id} {event.change} ({event.item.agent})"
    if isinstance(event, Turn):
        return f"[turn {event.index}] {event.speaker}{' (verdict)' if event.final else ''}: {event.text}"
    return None


async def execute(case: Case, s: Setup, lines: list[str]) -> tuple[bool, str, int | None, str]:
    """Run one case, its transcript into `lines` as it goes: (protocol success, answer, calls, stop)."""
    if case.kind == "chain":
        assert case.chain is not None
        wf_stream = case.chain(s).stream(**case.inputs)
        async for event in wf_stream:
            if (line := describe(event)) is not None:
                lines.append(line)
        wf = wf_stream.result
        ok = wf.ok and wf.output is not None
        return ok, "" if wf.output is None else str(wf.output), wf.usage.requests, \
            "completed" if ok else f"error: {wf.error}"
    if case.talk is not None:  # a conversation's result is an Outcome like a run's
        talk = case.talk(s)
        stream: Any = talk.stream() if isinstance(talk, Conversation) else talk.stream(case.question)
    else:
        runner: Any = s.agent("checker", case.tools) if case.kind == "tool" else s.supervisor(case.kind)
        stream = runner.stream(case.question)
    async for event in stream:
        if (line := describe(event)) is not None:
            lines.append(line)
    result = stream.result
    stop = result.stop_reason + (f": {result.detail}" if result.detail else "")
    return result.ok, "" if result.output is None else str(result.output), result.usage.requests, stop


async def run_one(number: int, case: Case, s: Setup) -> Record:
    lines: list[str] = []
    started = time.monotonic()
    try:  # the limits end a stuck run; the outer timeout is a backstop
        ok, answer, calls, stop = await asyncio.wait_for(execute(case, s, lines), s.max_seconds + 60)
    except Exception as e:  # a protocol failure is a result here, not a crash
        partial = getattr(e, "result", None)
        usage = getattr(partial, "usage", None)
        ok, answer, calls = False, "", getattr(usage, "requests", None)
        stop = "timeout (outer backstop)" if isinstance(e, TimeoutError) else f"{type(e).__name__}: {e}"
        lines.append(f"exception: {stop}")
    seconds = time.monotonic() - started
    if calls is None:
        calls = sum(1 for line in lines if " -> " in line or " said: " in line)
    right = ok and case.check(answer)
    return Record(number, case.kind, case.question, ok, right, calls, round(seconds, 1), stop, answer, lines)


def table(records: list[Record], kinds: list[str]) -> str:
    rows = [f"{'kind':13} {'protocol':>9} {'right':>7} {'calls':>6} {'seconds':>8}"]
    for name, group in [*((k, [r for r in records if r.kind == k]) for k in kinds), ("total", records)]:
        if not group:
            continue
        n = len(group)
        rows.append(f"{name:13} {sum(r.ok for r in group):>5}/{n:<3} {sum(r.right for r in group):>3}/{n:<3}"
                    f" {sum(r.calls for r in group) / n:>6.1f} {sum(r.seconds for r in group) / n:>8.1f}")
    return "\n".join(rows)


def spread(runs: list[list[Record]], kinds: list[str]) -> str:
    """Each kind's protocol and right rates over the runs: mean and lowest-highest."""
    def rates(group: list[Record]) -> tuple[float, float]:
        return 100 * sum(r.ok for r in group) / len(group), 100 * sum(r.right for r in group) / len(group)

    rows = [f"{'kind':13} {'protocol % mean (range)':>24} {'right % mean (range)':>22}"]
    for name in [*kinds, "total"]:
        per_run = [rates(group) for records in runs
                   if (group := [r for r in records if name in ("total", r.kind)])]
        if not per_run:
            continue
        cells = [f"{sum(values) / len(values):5.1f} ({min(values):.0f}-{max(values):.0f})"
                 for values in zip(*per_run, strict=True)]
        rows.append(f"{name:13} {cells[0]:>24} {cells[1]:>22}")
    return "\n".join(rows)


def model_from(args: argparse.Namespace) -> Model:
    os.environ["OPENAI_BASE_URL"] = args.base_url
    name = args.model or "openai:local"
    options = {"tool_calling": "constrained"} if args.constrained and name.startswith("openai:") else {}
    return get_model(name, **options)


def select(args: argparse.Namespace) -> list[tuple[int, Case]]:
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if unknown := [k for k in kinds if k not in KINDS]:
        raise SystemExit(f"unknown kind(s) {', '.join(unknown)}; kinds: {', '.join(KINDS)}")
    only = {int(n) for n in args.only.split(",")} if args.only else None
    return [(n, c) for n, c in enumerate(CASES, 1) if c.kind in kinds and (only is None or n in only)
            and (args.match is None or args.match.lower() in c.question.lower())]


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base-url", default=os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1"))
    p.add_argument("--model", default=None, help="a full model string (default openai:local)")
    p.add_argument("--constrained", action="store_true", help="grammar-constrained tool calls (openai: models)")
    p.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated subset of {','.join(KINDS)}")
    p.add_argument("--only", default=None, help="task numbers to run, comma-separated (as printed)")
    p.add_argument("--match", default=None, help="run only tasks whose text contains this (case-insensitive)")
    p.add_argument("--runs", type=int, default=1, help="run the suite this many times, with seeds 1..N")
    p.add_argument("--first-seed", type=int, default=1, help="the first run's seed (the runs go on from it)")
    p.add_argument("--temperature", type=float, default=None,
                   help="sampling temperature (default: the model's own; 0.3 when --runs > 1)")
    p.add_argument("--max-steps", type=int, default=6, help="model calls per task agent")
    p.add_argument("--supervisor-steps", type=int, default=8, help="model calls of a supervisor itself")
    p.add_argument("--max-seconds", type=float, default=180, help="wall time per run (Limits.max_seconds)")
    p.add_argument("--json", default=None, metavar="FILE", help="write every run's record here")
    p.add_argument("--transcripts", action="store_true", help="print the transcript of every run not answered right")
    args = p.parse_args()
    model = model_from(args)
    cases = select(args)
    kinds = [k for k in KINDS if any(c.kind == k for _, c in cases)]
    temperature = args.temperature if args.temperature is not None else 0.3 if args.runs > 1 else None
    print(f"model: {model.name}   {len(cases)} tasks x {args.runs} run(s)   "
          f"mode: {'constrained' if args.constrained or model.name.startswith('local:') else 'native'}   "
          f"temperature: {'default' if temperature is None else temperature}\n", flush=True)
    runs: list[list[Record]] = []
    started = time.monotonic()
    for seed in range(args.first_seed, args.first_seed + args.runs):
        settings = None if temperature is None else ModelSettings(temperature=temperature, seed=seed)
        setup = Setup(model, args.max_steps, args.supervisor_steps, args.max_seconds, settings)
        records: list[Record] = []
        run_started = time.monotonic()
        for number, case in cases:
            r = await run_one(number, case, setup)
            records.append(r)
            print(f"{r.number:>2} {r.kind:12} {'OK ' if r.ok else 'ERR'} {'right' if r.right else 'wrong'}  "
                  f"{r.question[:50]:50} -> {r.answer[:50]!r} ({r.stop[:100]}; {r.calls} calls, {r.seconds:.0f} s)",
                  flush=True)
            if args.transcripts and not r.right:
                print("    " + "\n    ".join(line[:300] for line in r.transcript), flush=True)
        runs.append(records)
        label = f"run {seed - args.first_seed + 1} of {args.runs}" + ("" if settings is None else f" (seed {seed})")
        print(f"\n{label}:\n{table(records, kinds)}\n{time.monotonic() - run_started:.0f} s\n", flush=True)
    total = time.monotonic() - started
    if args.runs > 1:
        print(f"over {args.runs} runs:\n{spread(runs, kinds)}\n")
    print(f"total time: {total:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": model.name, "constrained": args.constrained, "temperature": temperature,
                       "seconds": round(total, 1), "runs": [[asdict(r) for r in records] for records in runs]},
                      f, indent=1)
        print(f"records written to {args.json}")


if __name__ == "__main__":
    asyncio.run(main())
