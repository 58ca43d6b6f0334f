"""Group chats: several members, a manager (a model, a rule or a function) choosing who speaks."""

from __future__ import annotations

import inspect
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, Literal, TypeVar, cast

from pydantic import Field, create_model

from ...agent.loop import Agent, EventStream, run_sync
from ...core.errors import ConfigError, OutputValidationError
from ...core.events import Emit
from ...core.limits import Limits
from ...core.result import ToolStep
from ...models import Model
from ...runtime.scope import entered
from .records import USER, ConversationResult, Turn, Verdict, short
from .turns import JUDGE_MEMBER, SAY, Chat, Member, Speaker, check_bounds

T = TypeVar("T")
Rule = Literal["round_robin", "random", "llm"]
PickFunction = Callable[[list[Turn], list[str]], str | Awaitable[str]]
MANAGER = "manager"
MEMBER = """You are {name}, one member of a group conversation with {others}. Messages from the others start \
with their name in brackets. Speak only for yourself and keep to your role; your reply is your message to \
the group."""
MEMBER_FINISH = "When the group's goal is met, or clearly cannot be met, call `finish` with the verdict and the " \
                "result instead of replying. Do not thank or say goodbye."
MANAGE = """You manage a group conversation and choose who speaks next. The members:
{roster}

Choose the member whose role the conversation needs now. Do not choose the member who just spoke unless \
only they can go on. You are not a member and never speak yourself."""


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
        check_bounds(name, max_turns, max_stale)
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
        members: list[Member] = []
        for agent in self.members:
            others = ", ".join(a.name for a in self.members if a is not agent)
            note = MEMBER.format(name=agent.name, others=others)
            if agent.name in self.finishers:
                note += "\n" + MEMBER_FINISH
            finisher = agent.name in self.finishers
            judge = JUDGE_MEMBER.format(goal=task) if finisher else ""
            members.append(Member(Speaker(agent, note, verdict if finisher else None, "the group"), judge=judge))
        chat = Chat(self.name, members, Chooser(self).choose, max_turns=self.max_turns, limits=self.limits,
                     max_stale=self.max_stale, named=True, deltas=deltas)
        return cast(ConversationResult[T], await chat.run((USER, task), emit))


class Chooser:
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

    async def choose(self, chat: Chat) -> tuple[str, str, str]:
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

    async def ask(self, chat: Chat) -> tuple[str, str, str]:
        assert self.llm is not None and chat.scope is not None
        shown = chat.transcript[:1] + chat.transcript[1:][-12:]  # the task and the latest turns
        view = "\n\n".join(f"[{t.speaker}] {short(t.text, 600)}" for t in shown)
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
