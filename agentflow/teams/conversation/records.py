"""What a conversation returns and publishes: the verdict, each turn, each choice of speaker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from ...core.events import Event
from ...core.limits import LimitReason
from ...core.messages import Usage
from ...core.result import RunResult, StopReason

T = TypeVar("T")
Stop = Literal["finish", "max_turns", "repetition"] | StopReason | LimitReason
USER = "user"  # who gives a group chat its task


class Verdict(BaseModel, Generic[T]):
    """How a conversation ended, as judged by the participant who called `finish`."""

    summary: str = Field(description="a sentence or two: what was achieved, or what is missing")
    goal_met: bool = Field(description="true when the goal is achieved")
    result: T = Field(description="the result the goal asks for, itself (the number, name or text as it was "
                                  "given), not a description of the conversation")


class Turn(Event):
    """One message of a conversation, published when its turn ends. `index` 0 is a group chat's
    opening task (said by "user"); `final` marks the turn that called `finish` (its text is the
    verdict's summary)."""

    kind: Literal["turn"] = "turn"
    index: int
    speaker: str
    text: str
    usage: Usage = Field(default_factory=Usage)
    tool_calls: int = 0
    final: bool = False


class SpeakerChosen(Event):
    """Who speaks next, and how it was decided: `round_robin`, `random`, `function`, `manager`,
    `fallback` (the manager's choice was unusable; `note` says why) or `wrap_up`."""

    kind: Literal["speaker"] = "speaker"
    speaker: str
    by: str
    note: str = ""


@dataclass
class ConversationResult(Generic[T]):
    """The outcome of a conversation. `verdict` is set when a participant called `finish`; the
    transcript, the usage (per agent too) and every turn's run are always there, however it ended."""

    verdict: Verdict[T] | None
    stop_reason: Stop
    detail: str
    transcript: list[Turn]
    usage: Usage
    runs: list[RunResult[Any]] = field(default_factory=list["RunResult[Any]"])
    concluded_by: str | None = None
    notes: list[str] = field(default_factory=list[str])

    @property
    def output(self) -> T | None:
        return None if self.verdict is None else self.verdict.result

    @property
    def ok(self) -> bool:
        return self.stop_reason == "finish"

    @property
    def goal_met(self) -> bool:
        return self.verdict is not None and self.verdict.goal_met

    @property
    def per_agent(self) -> dict[str, Usage]:
        """Usage by participant (and manager), sub-agents included in their caller's."""
        out: dict[str, Usage] = {}
        for run in self.runs:
            name = run.agent.rsplit("/", 1)[-1]
            out[name] = out.get(name, Usage()) + run.usage
        return out

    def summary(self, width: int = 72) -> str:
        """Who said what, what each participant cost, and why the conversation ended: for printing."""
        lines = [f"{'#':>3}  {'speaker':<14} message"]
        for t in self.transcript:
            tools = f" [{t.tool_calls} tool call{'s' * (t.tool_calls != 1)}]" if t.tool_calls else ""
            lines.append(f"{t.index:>3}  {t.speaker:<14} {'finish: ' * t.final}{short(t.text, width)}{tools}")
        said = {t.speaker: 0 for t in self.transcript if t.speaker != USER}
        for t in self.transcript:
            if t.speaker in said:
                said[t.speaker] += 1
        lines += ["", f"{'who':<14} {'turns':>5} {'tool calls':>10} {'tokens':>8} {'cost':>9}"]
        for name, usage in [*self.per_agent.items(), ("total", self.usage)]:
            calls = sum(t.tool_calls for t in self.transcript if t.speaker == name) if name != "total" else \
                sum(t.tool_calls for t in self.transcript)
            turns = said.get(name, 0) if name != "total" else sum(said.values())
            lines.append(f"{name:<14} {turns:>5} {calls:>10} {usage.total_tokens:>8} {_cost(usage):>9}")
        if self.verdict is not None:
            met = "goal met" if self.verdict.goal_met else "goal NOT met"
            lines += ["", f"ended: finish by {self.concluded_by} ({met}): {self.verdict.summary}"]
            if self.detail != f"{self.concluded_by} called finish":
                lines.append(f"why: {self.detail}")
        else:
            lines += ["", f"ended: {self.stop_reason}: {self.detail}"]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def short(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _cost(usage: Usage) -> str:
    return "?" if usage.cost is None else f"${usage.cost:.4f}"
