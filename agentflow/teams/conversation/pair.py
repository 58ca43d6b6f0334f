"""A UserProxy steering an Assistant: the book's two-agent conversation."""

from __future__ import annotations

from typing import Any, Generic, TypeVar, cast, overload

from ...agent.loop import Agent, EventStream, run_sync
from ...core.errors import ConfigError
from ...core.events import Emit
from ...core.limits import Limits
from ...core.messages import Message
from ...models import Model, ModelSettings
from .records import USER, ConversationResult, Verdict
from .turns import JUDGE_PROXY, Chat, Member, Speaker, check_bounds

T = TypeVar("T")
BEGIN_PROXY = "(The conversation starts now. Write your first message to the assistant: ask it for the first " \
              "piece of work towards your goal.)"
PROXY = """You stand in for a user in a conversation with an assistant. You want this goal met:

{goal}

The assistant does the work, not you, and it knows only what you tell it. In each message, ask it for one \
clear piece of work ("Please write ...", "Now change ...") or tell it what is wrong with what it reported. \
You have no tools: your reply is your message to the assistant.
When something fails, say what went wrong and ask for a fix: do not give up after one failure. When the goal \
is met, or still cannot be met after several attempts, call `finish` with your verdict and the result. Never \
thank or say goodbye: calling `finish` is how the conversation ends."""


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


class Conversation(Generic[T]):
    """An Assistant (any agent, with tools, told nothing of the goal) and a `UserProxy` (the goal,
    no tools) taking turns, the proxy first, until the proxy calls `finish` or a limit is reached.

    `max_turns` counts messages; `limits` bound the tokens, cost and time of the whole
    conversation; `max_stale` stale messages in a row (farewells, repeats) make the proxy give
    its verdict or end the conversation (see the module doc)."""

    def __init__(self, assistant: Agent[Any], proxy: UserProxy[T], *, max_turns: int = 20,
                 limits: Limits | None = None, max_stale: int = 2, name: str = "conversation") -> None:
        check_bounds(name, max_turns, max_stale)
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
        proxy = Member(Speaker(self.proxy.agent, "", Verdict[self.proxy.output], "the assistant"),  # type: ignore
                        begin=BEGIN_PROXY, judge=JUDGE_PROXY.format(goal=self.proxy.goal))
        opening = self.proxy.opening
        if opening is not None:  # given, not generated: the proxy's history shows it as its own first message
            proxy.history = [Message.system(proxy.agent.instructions), Message.user(BEGIN_PROXY),
                             Message.assistant(opening)]
        names = (proxy.name, self.assistant.name)

        async def alternate(chat: Chat) -> tuple[str, str, str]:
            return names[1] if chat.last_speaker == names[0] else names[0], "round_robin", ""

        chat = Chat(self.name, [proxy, Member(Speaker(self.assistant, "", None))], alternate,
                     max_turns=self.max_turns, limits=self.limits, max_stale=self.max_stale, named=False, deltas=deltas)
        result = await chat.run(None if opening is None else (proxy.name, opening), emit)
        return cast(ConversationResult[T], result)
