"""Conversations between agents: a UserProxy steering an Assistant, and group chats with a manager.

Every participant is an ordinary `Agent` taking turns. A turn is one run of it on what the
others said since it last spoke, continuing its own history (its tool calls stay its own): a
text reply is its message, and a participant allowed to conclude may call `finish` with a
`Verdict` instead, which ends the conversation. Limits bound the whole conversation. An
exchange that goes stale (farewells, near-repeats, empty replies: the book's endless "Goodbye!
Thanks again." / "You bet!") is stopped: a participant that may conclude is asked once to give
its verdict, and if it does not, the conversation ends with `stop_reason="repetition"`.
"""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar, cast, overload

from pydantic import BaseModel, Field, create_model

from ..agent.loop import Agent, EventStream, Run, run_sync
from ..core.errors import ConfigError, OutputValidationError, keep_partial, partial_of
from ..core.events import Emit, Event, RunFinished, RunStarted
from ..core.limits import LimitReason, Limits
from ..core.messages import Message, ToolCall, Usage, close_open_calls
from ..core.output import FINISH
from ..core.result import RunResult, StopReason, ToolStep
from ..core.tool import to_observation
from ..models import Model, ModelSettings
from ..models.base import ToolSpec
from ..runtime.guards import stale_reason
from ..runtime.scope import Scope, entered, open_scope

T = TypeVar("T")
Stop = Literal["finish", "max_turns", "repetition"] | StopReason | LimitReason
Rule = Literal["round_robin", "random", "llm"]
PickFunction = Callable[[list["Turn"], list[str]], str | Awaitable[str]]

USER, MANAGER, SAY = "user", "manager", "say"
BEGIN = "(The conversation starts now. Write your first message.)"
BEGIN_PROXY = "(The conversation starts now. Write your first message to the assistant: ask it for the first " \
              "piece of work towards your goal.)"
WRAP_UP = ("\n\n(The conversation is going in circles: {why}. Do not reply with text: call `finish` now with "
           "your verdict, whether or not the goal is met.)")
PROXY = """You stand in for a user in a conversation with an assistant. You want this goal met:

{goal}

The assistant does the work, not you, and it knows only what you tell it. In each message, ask it for one \
clear piece of work ("Please write ...", "Now change ...") or tell it what is wrong with what it reported. \
You have no tools: your reply is your message to the assistant.
When something fails, say what went wrong and ask for a fix: do not give up after one failure. When the goal \
is met, or still cannot be met after several attempts, call `finish` with your verdict and the result. Never \
thank or say goodbye: calling `finish` is how the conversation ends."""
MEMBER = """You are {name}, one member of a group conversation with {others}. Messages from the others start \
with their name in brackets. Speak only for yourself and keep to your role; your reply is your message to \
the group."""
MEMBER_FINISH = "When the group's goal is met, or clearly cannot be met, call `finish` with the verdict and the " \
                "result instead of replying. Do not thank or say goodbye."
MANAGE = """You manage a group conversation and choose who speaks next. The members:
{roster}

Choose the member whose role the conversation needs now. Do not choose the member who just spoke unless \
only they can go on. You are not a member and never speak yourself."""
SAY_PARAMETERS = {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"],
                  "additionalProperties": False}
VERDICT = "End the conversation with your verdict: when the goal is met, or clearly cannot be met."


class Verdict(BaseModel, Generic[T]):
    """How a conversation ended, as judged by the participant who called `finish`."""

    summary: str = Field(description="a sentence or two: what was achieved, or what is missing")
    goal_met: bool = Field(description="true when the goal is achieved")
    result: T = Field(description="the outcome the goal asked for")


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
            lines.append(f"{t.index:>3}  {t.speaker:<14} {'finish: ' * t.final}{_short(t.text, width)}{tools}")
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


def _short(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _cost(usage: Usage) -> str:
    return "?" if usage.cost is None else f"${usage.cost:.4f}"


# -- participants -------------------------------------------------------------------------------


class _Speaker(Agent[Any]):
    """A participant as a conversation runs it: a copy of its agent whose text reply is its message
    and whose `finish`, when it may conclude, takes a `Verdict`."""

    def __init__(self, agent: Agent[Any], note: str, verdict: type[BaseModel] | None, to: str = "the others") -> None:
        output = verdict or agent.output.type
        super().__init__(
            agent.name, "\n\n".join(p for p in (agent.instructions, note) if p), tools=list(agent.tools.values()),
            output=output, model=agent._model, max_steps=agent.max_steps, limits=agent.limits,
            settings=agent.settings, approve=agent.approve, validator=None if verdict else agent.validator,
            max_output_retries=agent.max_output_retries, description=agent.description,
            ends_with="text" if output is str else "finish")
        self.concludes = verdict is not None
        self.too_early: str | None = None  # during a turn (see turn()): why a verdict would judge nothing yet
        if self.concludes:
            self._specs = [self.output.finish_spec(VERDICT) if t.name == FINISH else t for t in self._specs]
        self.say = ToolSpec(name=SAY, description=f"Send your next message to {to}: a request, a question, an "
                                                  "answer or a correction. This ends your turn.",
                            parameters=SAY_PARAMETERS)

    def specs_for(self, model: Model) -> list[ToolSpec]:
        specs = super().specs_for(model)
        if self.concludes and self.too_early:  # small models do call `finish` at once when it is offered
            specs = [s for s in specs if s.name != FINISH]
        return [*specs, self.say] if self.concludes and not model.replies_in_text else specs

    async def turn(self, text: str, history: list[Message], too_early: str | None, deltas: bool) -> RunResult[Any]:
        """One turn of this participant; `too_early` (why a verdict would judge nothing yet) holds for it."""
        self.too_early = too_early
        try:
            return await self.start(text, history=history, deltas=deltas).run()
        finally:
            self.too_early = None

    def refuse_finish(self, run: Run[Any]) -> str | None:
        if self.concludes and self.too_early:
            return self.too_early
        if not any(spec.name == FINISH for spec in run.specs):
            return "You may not end this conversation (others decide when it is over): reply with your message " \
                   "instead."
        return None

    def on_text(self, run: Run[Any], text: str) -> None:
        """A turn ends with its text: the message to the others."""
        run.output, run.finished = text, True

    def on_call(self, run: Run[Any], call: ToolCall) -> Awaitable[ToolStep] | None:
        return self._say(run, call) if call.name == SAY and self.concludes else None

    async def _say(self, run: Run[Any], call: ToolCall) -> ToolStep:
        """`say` (for models that can only call tools): the message ends the turn."""
        def step(observation: str, error: str | None = None) -> ToolStep:
            return ToolStep(agent=run.path, index=0, call=call, observation=observation, error=error)

        if isinstance(run.output, Verdict):  # `finish` in the same reply: the verdict ends the conversation
            return step("Not sent: your `finish` ended the conversation.", "rejected")
        try:
            message = call.parsed_arguments().get("message")
        except ValueError as e:
            message = e
        if not isinstance(message, str):
            why = message if isinstance(message, ValueError) else "`message` (a string) is required"
            return step(f"Invalid arguments for say: {why}. Call it again with your message.", "invalid_arguments")
        self.on_text(run, message)
        return step("Sent.")


class UserProxy(Generic[T]):
    """Stands in for the user: it knows the goal, has no tools, steers the assistant, and ends the
    conversation by calling `finish` with a `Verdict[T]` (`output` is the type of its `result`).
    `opening` is its first message verbatim (otherwise its model writes one)."""

    @overload
    def __init__(self: UserProxy[str], goal: str, *, output: None = ..., model: str | Model | None = ...,
                 name: str = ..., instructions: str = ..., opening: str | None = ..., max_steps: int = ...,
                 settings: ModelSettings | None = ...) -> None: ...
    @overload
    def __init__(self, goal: str, *, output: type[T], model: str | Model | None = ..., name: str = ...,
                 instructions: str = ..., opening: str | None = ..., max_steps: int = ...,
                 settings: ModelSettings | None = ...) -> None: ...
    def __init__(self, goal: str, *, output: type[Any] | None = None, model: str | Model | None = None,
                 name: str = "user_proxy", instructions: str = "", opening: str | None = None, max_steps: int = 4,
                 settings: ModelSettings | None = None) -> None:
        if not goal.strip():
            raise ConfigError("UserProxy needs a goal: the user's goal is what it steers the assistant towards")
        self.goal, self.output, self.name, self.opening = goal, output or str, name, opening
        self.agent: Agent[str] = Agent(name, "\n\n".join(p for p in (PROXY.format(goal=goal), instructions) if p),
                                       model=model, max_steps=max_steps, settings=settings)


# -- the conversation loop ------------------------------------------------------------------------


@dataclass(eq=False)
class _Member:
    agent: _Speaker
    history: list[Message] = field(default_factory=list[Message])
    seen: int = 0  # how much of the transcript it has been shown
    begin: str = BEGIN  # what it reads when it speaks first
    failures: int = 0  # its turns in a row that ended without a message

    @property
    def name(self) -> str:
        return self.agent.name


class _Chat:
    """The turn-taking loop shared by pairs and group chats; one instance per run."""

    def __init__(self, name: str, members: list[_Member], choose: Callable[[_Chat], Awaitable[tuple[str, str, str]]],
                 *, max_turns: int, limits: Limits, max_stale: int, named: bool, deltas: bool) -> None:
        self.name, self.members, self.choose = name, {m.name: m for m in members}, choose
        self.max_turns, self.limits, self.max_stale = max_turns, limits, max_stale
        self.named, self.deltas = named, deltas
        self.transcript: list[Turn] = []
        self.notes: list[str] = []
        self.scope: Scope | None = None

    @property
    def turns(self) -> int:
        return sum(1 for t in self.transcript if t.speaker != USER)

    @property
    def last_speaker(self) -> str | None:
        return self.transcript[-1].speaker if self.transcript else None

    async def run(self, first: tuple[str, str] | None, emit: Emit | None) -> ConversationResult[Any]:
        """Run to a verdict or a limit; `first` is a given opening message (speaker, text)."""
        self.scope = scope = open_scope(self.name, self.limits, budget=None, runner=None, path=None, emit=emit)[0]
        scope.publish(RunStarted(agent=scope.path, id=scope.key, task=first[1] if first else ""))
        if first is not None:
            self.say(*first)
            if first[0] in self.members:
                self.members[first[0]].seen = len(self.transcript)
        try:
            result = await self.loop()
        except (Exception, asyncio.CancelledError) as exc:  # what was said and paid for rides on the error
            reason = "cancelled" if isinstance(exc, asyncio.CancelledError) else "error"
            keep_partial(exc, self.result(reason, f"{type(exc).__name__}: {exc}"))
            self.finished(partial_of(exc))
            raise
        self.finished(result)
        return result

    async def loop(self) -> ConversationResult[Any]:
        assert self.scope is not None
        stale: list[str] = []
        wrap_up: str | None = None
        while True:
            if hit := self.scope.budget.exceeded():
                return self.result(*hit)
            if self.turns >= self.max_turns:
                return self.result("max_turns", f"reached max_turns={self.max_turns} without a verdict")
            if wrap_up is not None:
                member = self.members[next(n for n, m in self.members.items() if m.agent.concludes)]
                self.scope.publish(SpeakerChosen(agent=self.scope.path, speaker=member.name, by="wrap_up",
                                                 note=wrap_up))
            else:
                name, by, note = await self.choose(self)
                member = self.members[name]
                self.scope.publish(SpeakerChosen(agent=self.scope.path, speaker=name, by=by, note=note))
            run = await self.take_turn(member, wrap_up)
            tool_calls = sum(1 for s in run.steps if isinstance(s, ToolStep) and s.call.name not in (FINISH, SAY))
            if not run.ok:  # its own step limit or loop guard: the others hear of it, once; a limit of all ends it
                detail = f"{member.name}'s turn ended early: {run.detail}"
                member.failures += 1
                if run.stop_reason not in ("max_steps", "loop") or member.failures > 1 or self.scope.budget.exceeded():
                    return self.result(cast(Stop, run.stop_reason), detail)
                self.notes.append(f"turn {self.turns + 1}: {detail}")
                self.say(member.name, f"({member.name} sent no message: its turn ran out of steps)", run.usage,
                         tool_calls)
                continue
            member.failures = 0
            if isinstance(run.output, Verdict):
                verdict = cast(Verdict[Any], run.output)
                self.say(member.name, verdict.summary, run.usage, tool_calls, final=True)
                detail = f"{member.name} called finish" + (f" after being asked to ({wrap_up})" if wrap_up else "")
                return self.result("finish", detail, verdict, member.name)
            text = to_observation(run.output)
            recent = [t.text for t in self.transcript[-4:] if t.speaker != USER]
            self.say(member.name, text, run.usage, tool_calls)
            if wrap_up is not None:
                return self.result("repetition", f"{wrap_up}; {member.name} was asked for a verdict and "
                                                 "replied instead")
            why = stale_reason(text, recent)
            stale = [*stale, f"{why} ({_short(text, 40)!r})"] if why else []
            if len(stale) >= self.max_stale:
                wrap_up = f"the last {len(stale)} messages were " + " then ".join(stale)
                if not any(m.agent.concludes for m in self.members.values()):
                    return self.result("repetition", wrap_up)

    async def take_turn(self, member: _Member, wrap_up: str | None) -> RunResult[Any]:
        assert self.scope is not None
        news = [t for t in self.transcript[member.seen:] if t.speaker != member.name]
        text = "\n\n".join(f"[{t.speaker}] {t.text}" if self.named else t.text for t in news)
        if wrap_up is not None:
            text = (text + WRAP_UP.format(why=wrap_up)).strip()
        member.seen = len(self.transcript)
        alone = not any(t.speaker not in (USER, member.name) for t in self.transcript)
        too_early = "Too early for a verdict: no one else has said anything yet. Send your first message " \
                    "instead." if alone else None
        with entered(self.scope.within(f"turn/{self.turns + 1}")):
            run = await member.agent.turn(text or member.begin, member.history, too_early, self.deltas)
        member.history = close_open_calls(run.messages)
        if run.ok and isinstance(run.output, str):
            member.history = _as_said(member.history, run.output)
        return run

    def say(self, speaker: str, text: str, usage: Usage | None = None, tool_calls: int = 0,
            final: bool = False) -> None:
        assert self.scope is not None
        turn = Turn(agent=self.scope.path, index=0 if speaker == USER else self.turns + 1, speaker=speaker, text=text,
                    usage=usage or Usage(), tool_calls=tool_calls, final=final)
        self.transcript.append(turn)
        self.scope.publish(turn)

    def result(self, reason: Stop, detail: str, verdict: Verdict[Any] | None = None,
               by: str | None = None) -> ConversationResult[Any]:
        assert self.scope is not None
        return ConversationResult(verdict=verdict, stop_reason=reason, detail=detail, transcript=list(self.transcript),
                                  usage=self.scope.budget.usage, runs=list(self.scope.children), concluded_by=by,
                                  notes=list(self.notes))

    def finished(self, result: ConversationResult[Any]) -> None:
        assert self.scope is not None
        output = None if result.verdict is None else to_observation(result.verdict.result)
        self.scope.publish(RunFinished(agent=self.scope.path, id=self.scope.key, stop_reason=result.stop_reason,
                                       detail=result.detail, usage=result.usage, output=output))


def _as_said(messages: list[Message], text: str) -> list[Message]:
    """The history with a message sent through a tool (`say`, or `finish` with text for models that only
    call tools) written as the plain reply it stands for: the next turn reads as a conversation."""
    last = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=None)
    if last is None or [c.name for c in messages[last].tool_calls] not in ([SAY], [FINISH]):
        return messages
    return [*messages[:last], Message.assistant(text)]


def _check(name: str, max_turns: int, max_stale: int) -> None:
    if max_turns < 1 or max_stale < 1:
        raise ConfigError(f"{name}: max_turns and max_stale must be at least 1 (got {max_turns} and {max_stale})")


class Conversation(Generic[T]):
    """An Assistant (any agent, with tools, told nothing of the goal) and a `UserProxy` (the goal,
    no tools) taking turns, the proxy first, until the proxy calls `finish` or a limit is reached.

    `max_turns` counts messages; `limits` bound the tokens, cost and time of the whole
    conversation; `max_stale` stale messages in a row (farewells, repeats) make the proxy give
    its verdict or end the conversation (see the module doc)."""

    def __init__(self, assistant: Agent[Any], proxy: UserProxy[T], *, max_turns: int = 20,
                 limits: Limits | None = None, max_stale: int = 2, name: str = "conversation") -> None:
        _check(name, max_turns, max_stale)
        if assistant.name == proxy.name:
            raise ConfigError(f"the assistant and the proxy are both called {proxy.name!r}; give one another name")
        if USER in (assistant.name, proxy.name):
            raise ConfigError(f"a participant may not be called {USER!r}: the name is reserved for the one who "
                              "gives a group chat its task; rename it")
        self.assistant, self.proxy, self.name = assistant, proxy, name
        self.max_turns, self.limits, self.max_stale = max_turns, limits or Limits(), max_stale

    async def run(self) -> ConversationResult[T]:
        """Talk until a verdict or a limit. Exceptions carry the partial result as `.result`."""
        return await self._run(None, False)

    def run_sync(self) -> ConversationResult[T]:
        return run_sync(self.run, "conversation.run")

    def stream(self, *, deltas: bool = False) -> EventStream[ConversationResult[T]]:
        """Every event (turns, tool calls, the participants' runs) as it happens; `.result` at the end.
        `deltas=True` adds each message's text as it is generated (`TextChunk` events)."""
        return EventStream(lambda emit: self._run(emit, deltas))

    async def _run(self, emit: Emit | None, deltas: bool) -> ConversationResult[T]:
        proxy = _Member(_Speaker(self.proxy.agent, "", Verdict[self.proxy.output], "the assistant"),  # type: ignore
                        begin=BEGIN_PROXY)
        opening = self.proxy.opening
        if opening is not None:  # given, not generated: the proxy's history shows it as its own first message
            proxy.history = [Message.system(proxy.agent.instructions), Message.user(BEGIN_PROXY),
                             Message.assistant(opening)]
        names = (proxy.name, self.assistant.name)

        async def alternate(chat: _Chat) -> tuple[str, str, str]:
            return names[1] if chat.last_speaker == names[0] else names[0], "round_robin", ""

        chat = _Chat(self.name, [proxy, _Member(_Speaker(self.assistant, "", None))], alternate,
                     max_turns=self.max_turns, limits=self.limits, max_stale=self.max_stale, named=False, deltas=deltas)
        result = await chat.run(None if opening is None else (proxy.name, opening), emit)
        return cast(ConversationResult[T], result)


class GroupChat(Generic[T]):
    """Several agents (personas too: `persona.agent()`) talking about a task, a manager choosing
    each next speaker, until a member calls `finish` with a `Verdict[output]` or a limit is reached.

    `manager`: "llm" (a model reads the conversation and the members' descriptions and chooses;
    `manager_model`, by default the first member's model), "round_robin", "random" (never the same
    member twice in a row; `seed` makes it repeatable), or a function `(transcript, names) -> name`.
    An LLM choice that names no member (or the manager itself) goes back to it once with the
    error, then falls back to round-robin, noted in the result. `finishers` names the members who
    may call `finish` (default: all)."""

    def __init__(self, members: Sequence[Agent[Any]], *, manager: Rule | PickFunction = "llm",
                 manager_model: str | Model | None = None, output: type[T] = str,
                 finishers: Sequence[str] | None = None,
                 max_turns: int = 20, limits: Limits | None = None, max_stale: int = 2, name: str = "group_chat",
                 seed: int | None = None) -> None:
        _check(name, max_turns, max_stale)
        names = [m.name for m in members]
        if len(members) < 2 or len(set(names)) != len(names):
            raise ConfigError(f"group chat {name!r} needs at least two members with distinct names (got {names})")
        if reserved := {USER, MANAGER} & set(names):
            raise ConfigError(f"a member may not be called {sorted(reserved)[0]!r}: the name is reserved for the "
                              "one who gives the task and the one who chooses speakers; rename the agent")
        if not callable(manager) and manager not in ("round_robin", "random", "llm"):
            raise ConfigError(f"manager={manager!r} is not known; use 'llm', 'round_robin', 'random' or a function "
                              "(transcript, names) -> name")
        unknown = [f for f in finishers or () if f not in names]
        if unknown or (finishers is not None and not finishers):
            raise ConfigError(f"finishers must name members ({', '.join(names)}); got {list(finishers or ())}")
        self.members, self.manager, self.manager_model, self.output = list(members), manager, manager_model, output
        self.finishers = set(finishers if finishers is not None else names)
        if clash := [m.name for m in members if m.name in self.finishers and SAY in m.tools]:
            raise ConfigError(f"{clash[0]!r} may end the chat, so it cannot have a tool named {SAY!r} (models that "
                              "only call tools send their messages with it); rename the tool")
        self.max_turns, self.limits, self.max_stale, self.name, self.seed = \
            max_turns, limits or Limits(), max_stale, name, seed

    async def run(self, task: str) -> ConversationResult[T]:
        """Talk about `task` (said by "user") until a verdict or a limit; errors carry `.result`."""
        return await self._run(task, None, False)

    def run_sync(self, task: str) -> ConversationResult[T]:
        return run_sync(lambda: self.run(task), "group_chat.run")

    def stream(self, task: str, *, deltas: bool = False) -> EventStream[ConversationResult[T]]:
        """Every event as it happens (see `Conversation.stream`); `.result` at the end."""
        return EventStream(lambda emit: self._run(task, emit, deltas))

    async def _run(self, task: str, emit: Emit | None, deltas: bool) -> ConversationResult[T]:
        verdict = Verdict[self.output]  # type: ignore[name-defined]
        members: list[_Member] = []
        for agent in self.members:
            others = ", ".join(a.name for a in self.members if a is not agent)
            note = MEMBER.format(name=agent.name, others=others)
            if agent.name in self.finishers:
                note += "\n" + MEMBER_FINISH
            members.append(_Member(_Speaker(agent, note, verdict if agent.name in self.finishers else None,
                                            "the group")))
        chat = _Chat(self.name, members, _Chooser(self).choose, max_turns=self.max_turns, limits=self.limits,
                     max_stale=self.max_stale, named=True, deltas=deltas)
        return cast(ConversationResult[T], await chat.run((USER, task), emit))


class _Chooser:
    """A group chat's rule for the next speaker."""

    def __init__(self, group: GroupChat[Any]) -> None:
        self.group = group
        self.names = [m.name for m in group.members]
        self.rng = random.Random(group.seed)
        self.llm: Agent[Any] | None = None
        if group.manager == "llm":
            roster = "\n".join(f"- {m.name}: {m.description or m.instructions.split(chr(10), 1)[0]}"
                               for m in group.members)
            choice = create_model("NextSpeaker", speaker=(str, Field(description="the member who speaks next",
                                                                    json_schema_extra={"enum": list[Any](self.names)})))
            self.llm = Agent(MANAGER, MANAGE.format(roster=roster), output=choice, max_steps=3, max_output_retries=2,
                             model=group.manager_model or group.members[0]._model, validator=self.check)

    def after(self, last: str | None) -> str:
        return self.names[(self.names.index(last) + 1) % len(self.names)] if last in self.names else self.names[0]

    async def choose(self, chat: _Chat) -> tuple[str, str, str]:
        manager, last = self.group.manager, chat.last_speaker
        if manager == "round_robin":
            return self.after(last), "round_robin", ""
        if manager == "random":
            return self.rng.choice([n for n in self.names if n != last]), "random", ""
        if callable(manager):
            picked = manager(list(chat.transcript), list(self.names))
            name = await picked if inspect.isawaitable(picked) else picked
            if name not in self.names:
                raise ConfigError(f"the manager function returned {name!r}, which is not a member of "
                                  f"{self.group.name!r}; return one of: {', '.join(self.names)}")
            return name, "function", ""
        return await self.ask(chat)

    def check(self, value: Any) -> None:
        name = self.member(str(getattr(value, "speaker", "")))
        if name is None:
            said = getattr(value, "speaker", "")
            who = "you, the manager, who never speaks" if said.strip().lower() == MANAGER else "not a member"
            raise ValueError(f"{said!r} is {who}; choose one of: {', '.join(self.names)}")

    def member(self, said: str) -> str | None:
        """The member a manager's answer names (forgiving case, brackets and spaces), or None."""
        key = said.strip().strip("[]@ ").lower()
        return next((n for n in self.names if n.lower() == key), None)

    async def ask(self, chat: _Chat) -> tuple[str, str, str]:
        assert self.llm is not None and chat.scope is not None
        shown = chat.transcript[:1] + chat.transcript[1:][-12:]  # the task and the latest turns
        view = "\n\n".join(f"[{t.speaker}] {_short(t.text, 600)}" for t in shown)
        task = f"The conversation so far:\n\n{view}\n\nWho speaks next? (The last to speak was {chat.last_speaker}.)"
        try:
            with entered(chat.scope.within(f"pick/{chat.turns + 1}")):
                run = await self.llm.start(task).run()
        except OutputValidationError as e:
            run = e.result
        if run.ok and (name := self.member(str(getattr(run.output, "speaker", "")))) is not None:
            return name, "manager", ""
        said = [s.call.arguments for s in run.steps if isinstance(s, ToolStep) and s.error]
        note = f"turn {chat.turns + 1}: the manager gave no usable speaker ({run.detail or 'invalid choices'}" + \
               (f"; it said {', '.join(said)}" if said else "") + "); round-robin chose instead"
        chat.notes.append(note)
        return self.after(chat.last_speaker), "fallback", note
