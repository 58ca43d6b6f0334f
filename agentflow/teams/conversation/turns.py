"""The turn-taking loop that pairs and group chats share, and a participant as it takes a turn.

Staleness (farewells, near-repeats) is judged by `runtime.guards.stale_reason`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from pydantic import BaseModel

from ...agent.grounding import marks, words
from ...agent.loop import Agent, Run
from ...core.errors import ConfigError, keep_partial, partial_of
from ...core.events import Emit, RunFinished, RunStarted
from ...core.limits import Limits
from ...core.messages import Message, ToolCall, Usage, close_open_calls
from ...core.output import FINISH
from ...core.result import RunResult, ToolStep
from ...core.tool import to_observation
from ...models import Model, ModelSettings
from ...models.base import ToolSpec
from ...runtime.guards import stale_reason
from ...runtime.scope import Scope, entered, open_scope
from .records import USER, ConversationResult, SpeakerChosen, Stop, Turn, Verdict, short

SAY = "say"
BEGIN = "(The conversation starts now. Write your first message.)"
WRAP_UP = ("\n\n(The conversation is going in circles: {why}. Do not reply with text: call `finish` now with "
           "your verdict, whether or not the goal is met. Its `result` is the result itself as it was given here "
           "(the number, name or text), not a description of the conversation.)")
JUDGE = ("\n\n(The goal: {goal}\nDoes what you have been told meet it? If it does, call `finish` now with the "
         "result as it was given. If not, ")
JUDGE_PROXY = JUDGE + "ask the assistant for the next piece of work towards it.)"
JUDGE_MEMBER = JUDGE + "reply with what is still needed.)"
SAY_PARAMETERS = {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"],
                  "additionalProperties": False}
VERDICT = "End the conversation with your verdict: when the goal is met, or clearly cannot be met."


class Speaker(Agent[Any]):
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
        self.heard: list[Turn] = []  # during a turn: what the others have said so far
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

    async def turn(self, text: str, history: list[Message], heard: list[Turn], too_early: str | None, deltas: bool,
                   conclude: bool = False) -> RunResult[Any]:
        """One turn of this participant, who has heard `heard` from the others; `too_early` (why a verdict
        would judge nothing yet) holds for it. `conclude` makes `finish` its only choice (the wrap-up of a
        stale exchange: asked for a verdict in words, the 1.5B proxy repeated the answer back instead, and the
        conversation ended with none)."""
        own = self.settings
        self.too_early, self.heard = too_early, heard
        if conclude:
            self.settings = (own or ModelSettings()).merged(ModelSettings(tool_choice=FINISH))
        try:
            return await self.start(text, history=history, deltas=deltas).run()
        finally:
            self.too_early, self.heard, self.settings = None, [], own

    def review(self, run: Run[Any], output: Any) -> str | None:
        """A verdict's `result` must be something the others said: the 1.5B proxy, given 'noitasrevnoc',
        judged that 'conversation' was "already written backwards" and gave that remark as the result."""
        result = output.result if isinstance(output, Verdict) else None
        shown = marks(result) if isinstance(result, str) else set[str]()  # a typed result may be written otherwise
        if not shown or not self.heard or shown & words(" ".join(t.text for t in self.heard)):  # (8, "Eight.")
            return super().review(run, output)  # the grounding checks, for a participant with tools
        last = self.heard[-1]
        return (f"Not done: your result {short(str(result), 200)!r} is nothing the others said. The result is what "
                f"they gave, as they gave it; the last message was {last.speaker}'s: {short(last.text, 300)!r}. Judge "
                "that against the goal, then call `finish` again.")

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


@dataclass(eq=False)
class Member:
    agent: Speaker
    history: list[Message] = field(default_factory=list[Message])
    seen: int = 0  # how much of the transcript it has been shown
    begin: str = BEGIN  # what it reads when it speaks first
    failures: int = 0  # its turns in a row that ended without a message
    gave_up: bool = False  # it has had a "not met" verdict taken as a message (see Chat.too_soon)
    judge: str = ""  # added to what it reads, when it may conclude: small models forget the goal is theirs to judge

    @property
    def name(self) -> str:
        return self.agent.name


class Chat:
    """The turn-taking loop shared by pairs and group chats; one instance per run."""

    def __init__(self, name: str, members: list[Member], choose: Callable[[Chat], Awaitable[tuple[str, str, str]]],
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
        closer: Member | None = None  # who is asked for the verdict (by default the first who may conclude)
        while True:
            if hit := self.scope.budget.exceeded():
                return self.result(*hit)
            if self.turns >= self.max_turns:
                return self.result("max_turns", f"reached max_turns={self.max_turns} without a verdict")
            if wrap_up is not None:
                member = closer or self.members[next(n for n, m in self.members.items() if m.agent.concludes)]
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
            if isinstance(run.output, Verdict) and self.too_soon(member, run.output, wrap_up):
                member.history = as_said(member.history, run.output.summary)
                self.notes.append(f"turn {self.turns + 1}: {member.name} judged the goal not met with turns left; "
                                  "its verdict went to the others as a message")
                self.say(member.name, run.output.summary, run.usage, tool_calls)
                continue
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
            stale = [*stale, f"{why} ({short(text, 40)!r})"] if why else []
            if member.agent.concludes and (echo := self.echoed(member.name, text)):
                # the 1.5B proxy repeated the answer back to the assistant instead of concluding, to max_turns
                wrap_up, closer = f"{member.name}'s last message repeated {echo}'s ({short(text, 40)!r})", member
            elif len(stale) >= self.max_stale:
                wrap_up = f"the last {len(stale)} messages were " + " then ".join(stale)
                if not any(m.agent.concludes for m in self.members.values()):
                    return self.result("repetition", wrap_up)

    def echoed(self, name: str, text: str) -> str | None:
        """Who said `text` (just said by `name`) in the message before it, if someone else did."""
        before = self.transcript[-2] if len(self.transcript) > 1 else None
        if before is None or before.speaker in (USER, name) or stale_reason(text, [before.text]) != "a repeat":
            return None
        return before.speaker

    def too_soon(self, member: Member, verdict: Verdict[Any], wrap_up: str | None) -> bool:
        """A first "not met" with turns left is taken as a request for what is missing: small models give up
        after one gap ("the weather is not provided") instead of asking for it. Once per participant."""
        if verdict.goal_met or wrap_up is not None or member.gave_up or self.turns + 1 >= self.max_turns:
            return False
        member.gave_up = True
        return True

    async def take_turn(self, member: Member, wrap_up: str | None) -> RunResult[Any]:
        assert self.scope is not None
        news = [t for t in self.transcript[member.seen:] if t.speaker != member.name]
        text = "\n\n".join(f"[{t.speaker}] {t.text}" if self.named else t.text for t in news)
        heard = [t for t in self.transcript if t.speaker not in (USER, member.name)]
        alone = not heard
        if wrap_up is not None:
            text = (text + WRAP_UP.format(why=wrap_up)).strip()
        elif member.judge and not alone and text:
            text += member.judge
        member.seen = len(self.transcript)
        too_early = "Too early for a verdict: no one else has said anything yet. Send your first message " \
                    "instead." if alone else None
        with entered(self.scope.within(f"turn/{self.turns + 1}")):
            run = await member.agent.turn(text or member.begin, member.history, heard, too_early, self.deltas,
                                          conclude=wrap_up is not None and not alone)
        member.history = close_open_calls(run.messages)
        if run.ok and isinstance(run.output, str):
            member.history = as_said(member.history, run.output)
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


def as_said(messages: list[Message], text: str) -> list[Message]:
    """The history with a message sent through a tool (`say`, or `finish` with text for models that only
    call tools) written as the plain reply it stands for: the next turn reads as a conversation."""
    last = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=None)
    if last is None or [c.name for c in messages[last].tool_calls] not in ([SAY], [FINISH]):
        return messages
    return [*messages[:last], Message.assistant(text)]


def check_bounds(name: str, max_turns: int, max_stale: int) -> None:
    if max_turns < 1 or max_stale < 1:
        raise ConfigError(f"{name}: max_turns and max_stale must be at least 1 (got {max_turns} and {max_stale})")
