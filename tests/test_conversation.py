"""Conversations: a UserProxy steering an assistant, and group chats with a manager, driven offline
by FunctionModel / ScriptedModel scripts."""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel
from rich.console import Console

from agentflow import (
    Agent,
    ConfigError,
    Conversation,
    ConversationResult,
    GroupChat,
    Limits,
    Message,
    ModelStep,
    OutputValidationError,
    RunFinished,
    RunStarted,
    SpeakerChosen,
    TextChunk,
    ToolStep,
    Turn,
    Usage,
    UserProxy,
    Verdict,
    tool,
)
from agentflow.cli.display import ConversationDisplay
from agentflow.models import FunctionModel, RequestInfo, ScriptedModel, call
from agentflow.models.scripted import Reply
from agentflow.runtime.guards import stale_reason
from agentflow.teams.conversation.pair import BEGIN_PROXY
from agentflow.teams.conversation.records import short
from agentflow.teams.conversation.turns import JUDGE_MEMBER, JUDGE_PROXY

# -- helpers ------------------------------------------------------------------------------------

WRAP_UP_MARK = "going in circles"  # a phrase of the note a stale exchange adds for the concluding participant


def turn_of(info: RequestInfo) -> int:
    """Which of its own turns a participant is on (1-based): exactly one user message arrives per turn."""
    return sum(1 for m in info.messages if m.role == "user")


def by_turn(*replies: Reply | Callable[[RequestInfo], Reply], name: str = "function", delay: float = 0.0,
            ) -> FunctionModel:
    """A model whose reply on the participant's n-th turn is `replies[n-1]` (the last one repeats).
    A callable entry is called with the request (for a reply that depends on it, or a fresh tool call)."""
    def reply(info: RequestInfo) -> Reply:
        r = replies[min(turn_of(info), len(replies)) - 1]
        return r(info) if callable(r) else r
    return FunctionModel(reply, name=name, delay=delay)


def verdict(result: Any, summary: str = "done", goal_met: bool = True) -> Callable[[RequestInfo], Reply]:
    return lambda info: call("finish", summary=summary, goal_met=goal_met, result=result)


def said(result: ConversationResult[Any]) -> list[tuple[str, str]]:
    return [(t.speaker, t.text) for t in result.transcript]


def speakers(result: ConversationResult[Any]) -> list[str]:
    return [t.speaker for t in result.transcript]


def total(usages: list[Usage]) -> Usage:
    out = Usage()
    for u in usages:
        out = out + u
    return out


def all_text(info: RequestInfo) -> str:
    """Everything a request carried: message texts, tool-call arguments and the offered tools."""
    parts = [m.content or "" for m in info.messages]
    parts += [c.arguments for m in info.messages for c in m.tool_calls]
    parts += [f"{t.name} {t.description} {t.parameters}" for t in info.tools]
    return "\n".join(parts)


def fresh(speaker: str, n: int) -> str:
    """A message no other (speaker, n) says anything like, so it is never stale."""
    return f"{speaker} note {n}: {hashlib.md5(f'{speaker}/{n}'.encode()).hexdigest()}"


def chatty(prefix: str) -> FunctionModel:
    """A participant that always has something new to say (never stale)."""
    return FunctionModel(lambda info: fresh(prefix, turn_of(info)), name=prefix)


class Length(BaseModel):
    value: int
    unit: str


async def collect(stream: Any) -> list[Any]:
    return [e async for e in stream]


# -- a pair that ends with the proxy's verdict ----------------------------------------------------


def bridge_pair() -> tuple[Conversation[Length], FunctionModel, FunctionModel]:
    proxy_model = by_turn("How long is the Harbour Bridge? Answer in metres.",
                          "Are you sure? Check the number again.",
                          verdict({"value": 1149, "unit": "m"}, summary="The bridge is 1149 m long."), name="proxy")
    assistant_model = by_turn("It is 1149 metres long.", "Checked again: 1149 metres.", name="assistant")
    assistant = Agent("assistant", "You answer questions.", model=assistant_model)
    proxy = UserProxy("Learn the length of the Harbour Bridge in metres.", output=Length, model=proxy_model)
    return Conversation(assistant, proxy), proxy_model, assistant_model


async def test_pair_ends_with_the_proxys_typed_verdict() -> None:
    conversation, proxy_model, assistant_model = bridge_pair()
    result = await conversation.run()
    assert isinstance(result, ConversationResult)
    assert result.ok and result.stop_reason == "finish"
    assert result.detail == "user_proxy called finish"
    assert result.concluded_by == "user_proxy"
    assert isinstance(result.verdict, Verdict)
    assert result.verdict.summary == "The bridge is 1149 m long."
    assert result.verdict.goal_met is True and result.goal_met is True
    assert isinstance(result.output, Length) and result.output == Length(value=1149, unit="m")
    assert result.notes == []
    # The proxy speaks first and the two alternate; the last turn is the verdict (its summary as text).
    assert said(result) == [
        ("user_proxy", "How long is the Harbour Bridge? Answer in metres."),
        ("assistant", "It is 1149 metres long."),
        ("user_proxy", "Are you sure? Check the number again."),
        ("assistant", "Checked again: 1149 metres."),
        ("user_proxy", "The bridge is 1149 m long."),
    ]
    assert [t.index for t in result.transcript] == [1, 2, 3, 4, 5]
    assert [t.final for t in result.transcript] == [False, False, False, False, True]
    assert all(t.tool_calls == 0 for t in result.transcript)
    assert len(proxy_model.requests) == 3 and len(assistant_model.requests) == 2
    # Each participant's turn continues its own history: the proxy sees the assistant's replies as user messages.
    assert [m.role for m in proxy_model.requests[2].messages] == ["system", "user", "assistant", "user",
                                                                  "assistant", "user"]
    assert proxy_model.requests[0].last.content == BEGIN_PROXY
    # Each message the proxy reads reminds it of the goal it judges.
    judge = JUDGE_PROXY.format(goal="Learn the length of the Harbour Bridge in metres.")
    assert proxy_model.requests[2].last.content == "Checked again: 1149 metres." + judge
    assert assistant_model.requests[1].last.content == "Are you sure? Check the number again."


async def test_pair_usage_adds_up_per_agent_per_turn_and_in_total() -> None:
    conversation, proxy_model, assistant_model = bridge_pair()
    result = await conversation.run()
    assert set(result.per_agent) == {"user_proxy", "assistant"}
    assert result.per_agent["user_proxy"].requests == len(proxy_model.requests) == 3
    assert result.per_agent["assistant"].requests == len(assistant_model.requests) == 2
    assert result.usage.requests == 5
    assert result.usage.total_tokens > 0
    assert total(list(result.per_agent.values())) == result.usage
    assert total([t.usage for t in result.transcript]) == result.usage  # every run here was a turn
    assert [t.usage.requests for t in result.transcript] == [1, 1, 1, 1, 1]
    # One run per turn, each a child of the conversation.
    assert [r.agent for r in result.runs] == ["conversation/user_proxy", "conversation/assistant"] * 2 + [
        "conversation/user_proxy"]
    assert all(r.ok for r in result.runs)


async def test_the_proxy_is_offered_finish_taking_a_verdict_of_the_output_type() -> None:
    proxy_model = by_turn("What is 6 times 7?", verdict(42, summary="6*7 is 42."))
    assistant_model = by_turn("42")
    result = await Conversation(Agent("assistant", model=assistant_model),
                                UserProxy("Know 6*7.", output=int, model=proxy_model)).run()
    assert result.output == 42 and isinstance(result.output, int)
    assert proxy_model.requests[0].tool_names == []  # nothing to judge before the assistant has spoken
    assert proxy_model.requests[1].tool_names == ["finish"]
    params = proxy_model.requests[1].tools[0].parameters
    assert set(params["properties"]) == {"summary", "goal_met", "result"}
    assert params["properties"]["result"]["type"] == "integer"
    assert params["properties"]["goal_met"]["type"] == "boolean"
    # The assistant (a str agent) ends its turn with text: it is offered no tools at all.
    assert assistant_model.requests[0].tool_names == []


async def test_summary_names_each_speaker_their_turns_and_why_it_ended() -> None:
    conversation, _, _ = bridge_pair()
    result = await conversation.run()
    text = result.summary()
    lines = text.splitlines()
    assert "How long is the Harbour Bridge? Answer in metres." in text
    assert "finish: The bridge is 1149 m long." in text
    proxy_row = next(line for line in lines if line.startswith("user_proxy ") and line.split()[1].isdigit())
    assistant_row = next(line for line in lines if line.startswith("assistant ") and line.split()[1].isdigit())
    total_row = next(line for line in lines if line.startswith("total "))
    assert proxy_row.split()[1:3] == ["3", "0"]  # turns, tool calls
    assert assistant_row.split()[1:3] == ["2", "0"]
    assert total_row.split()[1:4] == ["5", "0", str(result.usage.total_tokens)]
    assert "ended: finish by user_proxy (goal met): The bridge is 1149 m long." in text


async def test_a_verdict_that_the_goal_is_not_met_ends_the_conversation_the_second_time() -> None:
    proxy_model = by_turn("Book me a flight to the Moon.",
                          verdict("no booking", summary="No airline flies there.", goal_met=False))
    result = await Conversation(Agent("assistant", model=by_turn("I cannot book that.")),
                                UserProxy("Fly to the Moon.", model=proxy_model)).run()
    assert result.ok and result.stop_reason == "finish"
    assert result.goal_met is False and result.output == "no booking"
    assert "ended: finish by user_proxy (goal NOT met): No airline flies there." in result.summary()
    # The first "not met", with turns left, went to the assistant as a message: one more chance.
    assert said(result) == [("user_proxy", "Book me a flight to the Moon."), ("assistant", "I cannot book that."),
                            ("user_proxy", "No airline flies there."), ("assistant", "I cannot book that."),
                            ("user_proxy", "No airline flies there.")]
    assert [t.final for t in result.transcript] == [False] * 4 + [True]
    assert result.notes == ["turn 3: user_proxy judged the goal not met with turns left; its verdict went to the "
                            "others as a message"]


async def test_a_first_not_met_verdict_asks_for_what_is_missing_and_the_conversation_goes_on() -> None:
    proxy_model = by_turn("What is the weather in Lima?",
                          verdict("", summary="The temperature is missing.", goal_met=False),
                          verdict("19C and cloudy"))
    assistant_model = by_turn("Cloudy.", "19C and cloudy.")
    result = await Conversation(Agent("assistant", model=assistant_model),
                                UserProxy("Lima's weather, with the temperature.", model=proxy_model)).run()
    assert result.goal_met is True and result.output == "19C and cloudy"
    assert said(result)[2:4] == [("user_proxy", "The temperature is missing."), ("assistant", "19C and cloudy.")]
    assert assistant_model.requests[1].last == Message.user("The temperature is missing.")
    # The proxy's history shows its verdict as the plain message it became.
    assert proxy_model.requests[2].messages[4] == Message.assistant("The temperature is missing.")


async def test_a_not_met_verdict_on_the_last_turn_stands() -> None:
    proxy_model = by_turn("Book me a flight to the Moon.",
                          verdict("no booking", summary="No airline flies there.", goal_met=False))
    result = await Conversation(Agent("assistant", model=by_turn("I cannot book that.")),
                                UserProxy("Fly to the Moon.", model=proxy_model), max_turns=3).run()
    assert result.stop_reason == "finish" and result.goal_met is False and len(result.transcript) == 3
    assert result.notes == []


def test_run_sync_runs_the_conversation() -> None:
    conversation, _, _ = bridge_pair()
    result = conversation.run_sync()
    assert result.output == Length(value=1149, unit="m")
    assert len(result.transcript) == 5


# -- the assistant's tools ----------------------------------------------------------------------


async def test_assistant_tool_calls_count_run_and_stay_in_its_own_history() -> None:
    looked_up: list[str] = []

    @tool
    def weather(city: str) -> str:
        """The weather in a city."""
        looked_up.append(city)
        return {"Paris": "21C and sunny", "Oslo": "4C and raining"}[city]

    def assistant_reply(info: RequestInfo) -> Reply:
        city = "Paris" if turn_of(info) == 1 else "Oslo"
        if info.last.role == "user":
            return call("weather", city=city)
        return f"It is {info.last.content} in {city}."

    assistant_model = FunctionModel(assistant_reply)
    proxy_model = by_turn("What is the weather in Paris?", "And in Oslo?", verdict("Paris sunny, Oslo rainy"))
    result = await Conversation(Agent("assistant", "You report the weather.", tools=[weather], model=assistant_model),
                                UserProxy("Know the weather in Paris and Oslo.", model=proxy_model)).run()
    assert result.ok
    assert looked_up == ["Paris", "Oslo"]
    assert said(result)[1] == ("assistant", "It is 21C and sunny in Paris.")
    assert said(result)[3] == ("assistant", "It is 4C and raining in Oslo.")
    assert [t.tool_calls for t in result.transcript] == [0, 1, 0, 1, 0]
    assert [t.usage.requests for t in result.transcript] == [1, 2, 1, 2, 1]
    assert result.per_agent["assistant"].requests == 4
    # The proxy receives only the assistant's final text, never its tool chatter.
    for info in proxy_model.requests:
        assert not any(m.role == "tool" or m.tool_calls for m in info.messages)
        assert "city" not in all_text(info)
        assert info.tool_names == ([] if info is proxy_model.requests[0] else ["finish"])
    judge = JUDGE_PROXY.format(goal="Know the weather in Paris and Oslo.")
    assert proxy_model.requests[1].last == Message.user("It is 21C and sunny in Paris." + judge)
    # The assistant's second turn continues its history, its earlier tool call and result included.
    second = assistant_model.requests[2]
    assert [m.role for m in second.messages] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert second.messages[2].tool_calls[0].name == "weather"
    assert second.messages[3].content == "21C and sunny"
    assert second.messages[4].content == "It is 21C and sunny in Paris."
    assert second.last.content == "And in Oslo?"
    assert second.tool_names == ["weather"]


async def test_a_typed_assistant_may_end_its_turn_with_finish_or_text() -> None:
    proxy_model = by_turn("What is 6 times 7?", "Say it in words.", verdict(42))
    assistant_model = by_turn(lambda info: call("finish", answer=42), "forty-two")
    result = await Conversation(Agent("assistant", output=int, model=assistant_model),
                                UserProxy("Know 6*7.", output=int, model=proxy_model)).run()
    assert said(result)[1] == ("assistant", "42")
    assert said(result)[3] == ("assistant", "forty-two")
    assert result.transcript[1].tool_calls == 0  # its own `finish` is not counted as a tool call
    assert assistant_model.requests[0].tool_names == ["finish"]


# -- the assistant knows nothing of the goal ------------------------------------------------------


async def test_the_goal_reaches_only_the_proxy() -> None:
    goal = "Get the ZEBRA-42 migration plan reviewed by Friday."
    proxy_model = by_turn("Can you review a database migration plan for me?", "It moves the users table.",
                          verdict("reviewed"))
    assistant_model = by_turn("Sure, what does it change?", "Moving the users table looks safe.")
    result = await Conversation(Agent("assistant", "You review plans.", model=assistant_model),
                                UserProxy(goal, model=proxy_model, instructions="Be terse.")).run()
    assert result.ok
    assert len(assistant_model.requests) == 2
    for info in assistant_model.requests:
        assert "ZEBRA" not in all_text(info)
        assert "Friday" not in all_text(info)
    assert assistant_model.requests[0].messages[0] == Message.system("You review plans.")
    proxy_system = proxy_model.requests[0].messages[0]
    assert proxy_system.role == "system"
    assert goal in (proxy_system.content or "")
    assert (proxy_system.content or "").endswith("Be terse.")


async def test_the_assistant_hears_the_goal_only_when_the_proxy_says_it() -> None:
    goal = "Rename the ZEBRA-42 service."
    proxy_model = by_turn("Please rename the ZEBRA-42 service to zebra.", verdict("renamed"))
    assistant_model = by_turn("Renamed ZEBRA-42 to zebra.")
    await Conversation(Agent("assistant", model=assistant_model), UserProxy(goal, model=proxy_model)).run()
    assert assistant_model.requests[0].last.content == "Please rename the ZEBRA-42 service to zebra."
    assert goal not in all_text(assistant_model.requests[0])


# -- stale exchanges ------------------------------------------------------------------------------


def farewell_proxy(after_wrap_up: Reply | Callable[[RequestInfo], Reply]) -> FunctionModel:
    def reply(info: RequestInfo) -> Reply:
        if WRAP_UP_MARK in (info.last.content or ""):
            return after_wrap_up(info) if callable(after_wrap_up) else after_wrap_up
        return "Please convert 10 km to miles." if turn_of(info) == 1 else "Goodbye! Thanks again."
    return FunctionModel(reply, name="proxy")


def farewell_assistant() -> FunctionModel:
    return by_turn("10 km is 6.21 miles.", "You bet, thank you too!", name="assistant")


async def test_farewell_loop_ends_with_finish_when_the_proxy_answers_the_wrap_up_note() -> None:
    proxy_model = farewell_proxy(verdict("6.21 miles", summary="Converted."))
    conversation = Conversation(Agent("assistant", model=farewell_assistant()),
                                UserProxy("Convert 10 km to miles.", model=proxy_model), max_turns=20)
    stream = conversation.stream()
    events = await collect(stream)
    result = stream.result
    assert result.stop_reason == "finish" and result.output == "6.21 miles"
    assert said(result) == [
        ("user_proxy", "Please convert 10 km to miles."),
        ("assistant", "10 km is 6.21 miles."),
        ("user_proxy", "Goodbye! Thanks again."),
        ("assistant", "You bet, thank you too!"),
        ("user_proxy", "Converted."),
    ]
    # The proxy's last request carried the assistant's message and then the wrap-up note.
    last = proxy_model.requests[-1].last
    assert last.role == "user"
    assert (last.content or "").startswith("You bet, thank you too!\n\n(The conversation is going in circles")
    assert "call `finish` now" in (last.content or "")
    assert "a farewell ('Goodbye! Thanks again.')" in (last.content or "")
    # Only that last request had the note, and only it left the proxy no choice but `finish`.
    assert all(WRAP_UP_MARK not in all_text(info) for info in proxy_model.requests[:-1])
    assert [info.settings.tool_choice for info in proxy_model.requests] == [None, None, "finish"]
    assert "after being asked to" in result.detail and "farewell" in result.detail
    assert "why: user_proxy called finish after being asked to" in result.summary()
    chosen = [e for e in events if isinstance(e, SpeakerChosen)]
    assert [c.by for c in chosen] == ["round_robin"] * 4 + ["wrap_up"]
    assert chosen[-1].speaker == "user_proxy" and "farewell" in chosen[-1].note


async def test_farewell_loop_stops_as_repetition_when_the_proxy_keeps_saying_goodbye() -> None:
    proxy_model = farewell_proxy("Goodbye! Thanks again.")
    result = await Conversation(Agent("assistant", model=farewell_assistant()),
                                UserProxy("Convert 10 km to miles.", model=proxy_model), max_turns=20).run()
    assert result.stop_reason == "repetition"
    assert not result.ok and result.verdict is None and result.output is None
    assert len(result.transcript) == 5  # far from max_turns=20
    assert speakers(result) == ["user_proxy", "assistant"] * 2 + ["user_proxy"]
    assert result.detail == ("the last 2 messages were a farewell ('Goodbye! Thanks again.') then a farewell "
                             "('You bet, thank you too!'); user_proxy was asked for a verdict and replied instead")
    assert WRAP_UP_MARK in (proxy_model.requests[-1].last.content or "")
    assert "ended: repetition:" in result.summary()


async def test_a_proxy_that_repeats_the_answer_back_is_asked_for_its_verdict_at_once() -> None:
    """The 1.5B proxy, given 'The weather in Lima today is 19C and cloudy.', sent it back to the assistant,
    which sent it back again, until max_turns ended the pair with no verdict."""
    answer = "The weather in Lima today is 19C and cloudy."

    def proxy_reply(info: RequestInfo) -> Reply:
        if info.settings.tool_choice == "finish":
            return call("finish", summary="Met.", goal_met=True, result=answer)
        return "What is the weather in the capital of Peru?" if turn_of(info) == 1 else answer

    proxy_model = FunctionModel(proxy_reply)
    stream = Conversation(Agent("assistant", model=by_turn(answer)),
                          UserProxy("Today's weather in the capital of Peru.", model=proxy_model), max_turns=8).stream()
    events = await collect(stream)
    result = stream.result
    assert result.ok and result.output == answer
    assert speakers(result) == ["user_proxy", "assistant", "user_proxy", "user_proxy"]
    assert result.detail == (f"user_proxy called finish after being asked to (user_proxy's last message repeated "
                             f"assistant's ({short(answer, 40)!r}))")
    assert [e.by for e in events if isinstance(e, SpeakerChosen)][-1] == "wrap_up"
    # The assistant repeating the proxy is no echo of a verdict: only a participant who may conclude is asked.
    plain = await Conversation(Agent("assistant", model=by_turn("Please say more.")),
                               UserProxy("Talk.", model=FunctionModel(lambda info: "Please say more.")),
                               max_turns=3).run()
    assert plain.stop_reason == "max_turns"


async def test_a_verdict_whose_result_is_nothing_the_others_said_goes_back_once() -> None:
    """The 1.5B proxy, given 'noitasrevnoc', judged 'conversation' "already written backwards" and gave that
    remark as the verdict's result."""
    def proxy_reply(info: RequestInfo) -> Reply:
        if turn_of(info) == 1:
            return "Please write 'conversation' backwards."
        if info.last.role == "tool":
            return call("finish", summary="Reversed.", goal_met=True, result="noitasrevnoc")
        return call("finish", summary="Not met.", goal_met=True, result="It is already written backwards.")

    proxy_model = FunctionModel(proxy_reply)
    result = await Conversation(Agent("assistant", model=by_turn("noitasrevnoc")),
                                UserProxy("'conversation' backwards.", model=proxy_model)).run()
    assert result.ok and result.output == "noitasrevnoc"
    feedback = proxy_model.requests[-1].last.content or ""
    assert feedback == ("Not done: your result 'It is already written backwards.' is nothing the others said. The "
                        "result is what they gave, as they gave it; the last message was assistant's: "
                        "'noitasrevnoc'. Judge that against the goal, then call `finish` again.")
    # The second finish stands; a result the others gave stands at once (and a typed one, 8 for "Eight.": above).
    steps = [s for s in result.runs[-1].steps if isinstance(s, ToolStep)]
    assert [s.error for s in steps] == ["ungrounded", None]


async def test_near_duplicate_long_messages_are_stale() -> None:
    asks = ["Could you please expand the section on quarterly revenue with a little more detail for the board?",
            "Could you please expand the section on the quarterly revenue with a bit more detail for the board?"]
    answers = ["I have expanded the section on quarterly revenue with more detail for the board, as you asked.",
               "I have expanded the section on the quarterly revenue with more details for the board, as asked."]
    assert asks[0] != asks[1] and answers[0] != answers[1]
    proxy_model = FunctionModel(lambda info: asks[turn_of(info) % 2])
    assistant_model = FunctionModel(lambda info: answers[turn_of(info) % 2])
    result = await Conversation(Agent("assistant", model=assistant_model),
                                UserProxy("A detailed revenue section.", model=proxy_model), max_turns=30).run()
    assert result.stop_reason == "repetition"
    assert len(result.transcript) == 5
    assert result.detail.startswith("the last 2 messages were a repeat (")
    assert " then a repeat (" in result.detail


async def test_ordinary_short_replies_keep_the_conversation_going() -> None:
    proxy_model = by_turn("Write a function divide(a, b).", "Thanks! Now add a test for division by zero.",
                          "Does the test expect ZeroDivisionError?", "What is 2+2, for the next test?")
    assistant_model = by_turn("Done: def divide(a, b): return a / b", "Added test_divide_by_zero; it passes.",
                              "Yes.", "2+2 is 4.")
    result = await Conversation(Agent("assistant", model=assistant_model),
                                UserProxy("A tested divide function.", model=proxy_model), max_turns=8).run()
    assert result.stop_reason == "max_turns"
    assert len(result.transcript) == 8
    assert all(WRAP_UP_MARK not in all_text(info) for info in proxy_model.requests)


async def test_max_stale_counts_consecutive_stale_messages_only() -> None:
    # Stale messages interleaved with content never add up.
    proxy_model = by_turn("Convert 10 km to miles.", "Thanks!", "Now convert 5 km.", "Thanks!", "And 42 km?")
    assistant_model = by_turn("6.21 miles.", "Sure: 5 km is 3.11 miles.", "Happy to help: 42 km is 26.1 miles.")
    result = await Conversation(Agent("assistant", model=assistant_model),
                                UserProxy("Conversions.", model=proxy_model), max_turns=8, max_stale=2).run()
    assert result.stop_reason == "max_turns"
    # With max_stale=3, two farewells in a row are not enough; the third triggers the wrap-up.
    proxy_model = farewell_proxy("Goodbye! Thanks again.")
    result = await Conversation(Agent("assistant", model=farewell_assistant()),
                                UserProxy("Convert.", model=proxy_model), max_turns=20, max_stale=3).run()
    assert result.stop_reason == "repetition"
    assert len(result.transcript) == 6
    assert result.detail.startswith("the last 3 messages were a farewell")
    assert speakers(result)[-1] == "user_proxy"


async def test_wrap_up_right_after_the_proxys_own_message_does_not_say_the_conversation_starts() -> None:
    def proxy_reply(info: RequestInfo) -> Reply:
        if WRAP_UP_MARK in (info.last.content or ""):
            return call("finish", summary="Summarised.", goal_met=True, result="Done")
        return "Please summarise the report." if turn_of(info) == 1 else "Great, bye!"

    proxy_model = FunctionModel(proxy_reply)
    result = await Conversation(Agent("assistant", model=by_turn("Done, thanks!")),
                                UserProxy("A summary.", model=proxy_model)).run()
    assert result.stop_reason == "finish"
    # The stale pair was the assistant's "Done, thanks!" then the proxy's own "Great, bye!": the proxy speaks again.
    assert speakers(result) == ["user_proxy", "assistant", "user_proxy", "user_proxy"]
    wrap_up_request = proxy_model.requests[-1].last.content or ""
    assert WRAP_UP_MARK in wrap_up_request
    assert "starts now" not in wrap_up_request


async def test_short_step_by_step_questions_are_not_repetition() -> None:
    proxy_model = FunctionModel(lambda info: f"Is {turn_of(info) + 1} prime?")
    assistant_model = FunctionModel(lambda info: "Yes." if turn_of(info) < 3 else "No.")
    result = await Conversation(Agent("assistant", model=assistant_model),
                                UserProxy("Know which of 2, 3, 4, 5 are prime.", model=proxy_model),
                                max_turns=8).run()
    assert result.stop_reason == "max_turns", result.detail


# -- stale_reason -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "Goodbye! Thanks again.",
    "You bet, thank you too!",
    "Thanks!",
    "Thank you so much for your help!",
    "You're welcome! Have a great day!",
    "Cheers, take care.",
    "Anytime! Good luck.",
])
def test_stale_reason_sees_farewells(text: str) -> None:
    assert stale_reason(text, []) == "a farewell"


@pytest.mark.parametrize("text", [
    "Yes.",
    "No.",
    "2+2 is 4.",
    "Thanks! Now add a test for division by zero.",
    "Thanks, but the total is wrong: it should be 42.",
    "Good. Next, rename the file to report.md.",
    "ok",
    "Done.",
])
def test_stale_reason_leaves_short_content_alone(text: str) -> None:
    assert stale_reason(text, []) is None
    assert stale_reason(text, ["Please write the report.", "Here is the report: revenue grew by five percent."]) \
        is None


@pytest.mark.parametrize("text", ["", "   ", "!!! ...", "\n\n"])
def test_stale_reason_sees_empty_messages(text: str) -> None:
    assert stale_reason(text, []) == "an empty message"


def test_stale_reason_sees_repeats_and_near_repeats_of_recent_messages() -> None:
    before = "I have updated the report with the new quarterly revenue figures and fixed the chart labels."
    assert stale_reason(before, [before]) == "a repeat"
    assert stale_reason(before.upper().replace(".", "!"), ["Something else entirely.", before]) == "a repeat"
    near = "I have updated the report with the new quarterly revenue figure and fixed the chart label."
    assert stale_reason(near, [before]) == "a repeat"
    different = "I have added a new section on hiring plans and removed the outdated appendix from the report."
    assert stale_reason(different, [before]) is None
    assert stale_reason(before, []) is None


def test_stale_reason_a_long_message_of_pleasantries_is_not_a_farewell() -> None:
    long = " ".join(["thanks"] * 31)
    assert stale_reason(long, []) is None  # over 30 words is not a farewell (only a repeat can make it stale)
    assert stale_reason(long, [long]) == "a repeat"


def test_stale_reason_a_new_numbered_request_is_not_a_repeat() -> None:
    assert stale_reason("Now run test 2.", ["Passed.", "Now run test 1."]) is None


@pytest.mark.parametrize("text", ["Glad I could help! Let me know if you need anything else.",
                                  "Thanks, that's all I need!", "You're all set! Have a great day.",
                                  "If you have any other questions, feel free to ask!"])
def test_stale_reason_common_sign_offs_are_farewells(text: str) -> None:
    assert stale_reason(text, []) == "a farewell"


# -- limits ---------------------------------------------------------------------------------------


async def test_max_turns_ends_without_a_verdict() -> None:
    proxy_model, assistant_model = chatty("proxy"), chatty("assistant")
    result = await Conversation(Agent("assistant", model=assistant_model),
                                UserProxy("Talk.", model=proxy_model), max_turns=5).run()
    assert result.stop_reason == "max_turns"
    assert result.detail == "reached max_turns=5 without a verdict"
    assert len(result.transcript) == 5
    assert speakers(result) == ["user_proxy", "assistant", "user_proxy", "assistant", "user_proxy"]
    assert result.output is None and result.verdict is None and not result.ok and not result.goal_met
    assert result.concluded_by is None
    assert len(proxy_model.requests) == 3 and len(assistant_model.requests) == 2
    assert "ended: max_turns: reached max_turns=5 without a verdict" in result.summary()


async def test_max_tokens_bounds_the_whole_conversation() -> None:
    proxy_model, assistant_model = chatty("proxy"), chatty("assistant")
    result = await Conversation(Agent("assistant", model=assistant_model), UserProxy("Talk.", model=proxy_model),
                                max_turns=50, limits=Limits(max_tokens=600)).run()
    assert result.stop_reason == "max_tokens"
    assert "max_tokens=600" in result.detail
    assert result.usage.total_tokens >= 600
    last = result.runs[-1].usage.total_tokens
    assert result.usage.total_tokens - last < 600  # it stopped at the first check after the limit
    assert len(result.transcript) < 10
    assert total(list(result.per_agent.values())) == result.usage


async def test_max_seconds_ends_a_conversation_with_slow_models() -> None:
    def slow(prefix: str) -> FunctionModel:
        model = chatty(prefix)
        model.delay = 0.05
        return model

    start = time.monotonic()
    result = await Conversation(Agent("assistant", model=slow("assistant")), UserProxy("Talk.", model=slow("proxy")),
                                max_turns=100, limits=Limits(max_seconds=0.3)).run()
    elapsed = time.monotonic() - start
    assert result.stop_reason == "max_time"
    assert elapsed < 1.5
    assert 1 <= len(result.transcript) <= 8


async def test_conversation_step_limit_counts_every_participants_model_calls() -> None:
    proxy_model, assistant_model = chatty("proxy"), chatty("assistant")
    result = await Conversation(Agent("assistant", model=assistant_model), UserProxy("Talk.", model=proxy_model),
                                limits=Limits(max_steps=3)).run()
    assert result.stop_reason == "max_steps"
    assert len(proxy_model.requests) + len(assistant_model.requests) == 3
    assert len(result.transcript) == 3


async def test_a_participant_whose_turns_run_out_twice_in_a_row_ends_the_conversation_naming_it() -> None:
    ran: list[int] = []

    @tool
    def poll() -> str:
        """Poll the job."""
        ran.append(1)
        return "still running"

    assistant_model = FunctionModel(lambda info: call("poll"))
    proxy_model = by_turn("Wait for the job to finish.")
    result = await Conversation(Agent("assistant", tools=[poll], model=assistant_model, max_steps=3),
                                UserProxy("The job's result.", model=proxy_model)).run()
    assert result.stop_reason == "max_steps"
    assert result.detail == "assistant's turn ended early: agent 'assistant' reached max_steps=3"
    # The first time, the proxy hears that the assistant sent nothing, and the conversation goes on.
    assert said(result) == [("user_proxy", "Wait for the job to finish."),
                            ("assistant", "(assistant sent no message: its turn ran out of steps)"),
                            ("user_proxy", "Wait for the job to finish.")]
    assert proxy_model.requests[1].last.content == "(assistant sent no message: its turn ran out of steps)" + \
        JUDGE_PROXY.format(goal="The job's result.")
    assert result.notes == ["turn 2: assistant's turn ended early: agent 'assistant' reached max_steps=3"]
    assert len(ran) == 6 and len(assistant_model.requests) == 6
    assert result.per_agent["assistant"].requests == 6  # what it spent is still counted
    assert [r.stop_reason for r in result.runs] == ["finish", "max_steps", "finish", "max_steps"]
    assert result.output is None


# -- errors ---------------------------------------------------------------------------------------


async def test_a_model_error_propagates_with_the_turns_so_far() -> None:
    def assistant_reply(info: RequestInfo) -> Reply:
        if turn_of(info) == 2:
            raise RuntimeError("provider exploded")
        return "The answer is 7."

    proxy_model = by_turn("What is 3+4?", "Are you sure?", verdict("7"))
    with pytest.raises(RuntimeError, match="provider exploded") as info:
        await Conversation(Agent("assistant", model=FunctionModel(assistant_reply)),
                           UserProxy("Know 3+4.", model=proxy_model)).run()
    result = info.value.result  # type: ignore[attr-defined]
    assert isinstance(result, ConversationResult)
    assert result.stop_reason == "error"
    assert result.detail == "RuntimeError: provider exploded"
    assert said(result) == [("user_proxy", "What is 3+4?"), ("assistant", "The answer is 7."),
                            ("user_proxy", "Are you sure?")]
    assert result.output is None and not result.ok
    assert result.usage.requests == 3  # the failed request cost nothing
    assert result.per_agent["user_proxy"].requests == 2 and result.per_agent["assistant"].requests == 1
    assert total([t.usage for t in result.transcript]) == result.usage
    assert [r.stop_reason for r in result.runs] == ["finish", "finish", "finish", "error"]


def test_a_model_error_propagates_from_run_sync_too() -> None:
    def boom(info: RequestInfo) -> Reply:
        raise ValueError("bad key")

    with pytest.raises(ValueError, match="bad key") as info:
        Conversation(Agent("assistant", model=by_turn("hi")), UserProxy("Goal.", model=FunctionModel(boom))).run_sync()
    result = info.value.result  # type: ignore[attr-defined]
    assert isinstance(result, ConversationResult)
    assert result.transcript == [] and result.usage.requests == 0


async def test_an_invalid_verdict_goes_back_to_the_proxy_which_can_retry() -> None:
    def proxy_reply(info: RequestInfo) -> Reply:
        if turn_of(info) == 1:
            return "How many legs does a spider have?"
        if info.last.role == "tool":
            return call("finish", summary="Spiders have 8 legs.", goal_met=True, result=8)
        return call("finish", summary="eight", goal_met="maybe", result="eight")

    proxy_model = FunctionModel(proxy_reply)
    result = await Conversation(Agent("assistant", model=by_turn("Eight.")),
                                UserProxy("Know how many legs a spider has.", output=int, model=proxy_model)).run()
    assert result.ok and result.output == 8
    assert len(proxy_model.requests) == 3
    feedback = proxy_model.requests[2].last
    assert feedback.role == "tool" and feedback.name == "finish"
    assert (feedback.content or "").startswith("Invalid `finish` arguments")
    assert "goal_met" in (feedback.content or "") and "result" in (feedback.content or "")
    final = result.transcript[-1]
    assert final.final and final.text == "Spiders have 8 legs." and final.usage.requests == 2
    steps = [s for s in result.runs[-1].steps if isinstance(s, ToolStep)]
    assert [s.error for s in steps] == ["invalid_output", None]


async def test_a_verdict_that_keeps_failing_validation_is_an_error_with_the_conversation() -> None:
    proxy_model = by_turn("Count the legs.", lambda info: call("finish", summary="x", goal_met=True, result="many"))
    with pytest.raises(OutputValidationError) as info:
        await Conversation(Agent("assistant", model=by_turn("Eight.")),
                           UserProxy("Legs.", output=int, model=proxy_model)).run()
    result = info.value.result
    assert isinstance(result, ConversationResult)
    assert result.stop_reason == "error"
    assert said(result) == [("user_proxy", "Count the legs."), ("assistant", "Eight.")]
    assert result.per_agent["user_proxy"].requests == 4  # 1 message + 3 invalid verdicts


# -- models that only call tools (constrained decoding) -------------------------------------------


async def test_a_constrained_proxy_speaks_with_say_and_ends_with_finish() -> None:
    proxy_model = by_turn(lambda info: call("say", message="Please add 2 and 3."), verdict(5))
    proxy_model.replies_in_text = False
    assistant_model = by_turn("5")
    result = await Conversation(Agent("assistant", model=assistant_model),
                                UserProxy("Know 2+3.", output=int, model=proxy_model)).run()
    assert result.ok and result.output == 5
    assert proxy_model.requests[0].tool_names == ["say"]  # too early for a verdict: `say` is the only action
    assert proxy_model.requests[1].tool_names == ["finish", "say"]
    assert said(result)[0] == ("user_proxy", "Please add 2 and 3.")
    assert result.transcript[0].tool_calls == 0  # `say` is how it speaks, not a tool call
    assert assistant_model.requests[0].last == Message.user("Please add 2 and 3.")
    # The proxy's own history shows what it said as a plain message: the next turn reads as a conversation.
    second = proxy_model.requests[1].messages
    assert second[2] == Message.assistant("Please add 2 and 3.")
    assert second[3] == Message.user("5" + JUDGE_PROXY.format(goal="Know 2+3."))


async def test_a_constrained_assistant_with_tools_answers_through_finish() -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    def assistant_reply(info: RequestInfo) -> Reply:
        return call("add", a=2, b=3) if info.last.role == "user" else call("finish", answer="2+3 = 5")

    assistant_model = FunctionModel(assistant_reply)
    assistant_model.replies_in_text = False
    proxy_model = by_turn("Add 2 and 3.", verdict("5"))
    result = await Conversation(Agent("assistant", tools=[add], model=assistant_model),
                                UserProxy("Know 2+3.", model=proxy_model)).run()
    assert assistant_model.requests[0].tool_names == ["add", "finish"]  # no `say`: it does not conclude
    assert said(result)[1] == ("assistant", "2+3 = 5")
    assert result.transcript[1].tool_calls == 1


async def test_say_without_a_message_goes_back_to_the_model() -> None:
    def proxy_reply(info: RequestInfo) -> Reply:
        if turn_of(info) == 1 and info.last.role != "tool":
            return call("say")
        if turn_of(info) == 1:
            return call("say", message="Please add 2 and 3.")
        return call("finish", summary="5", goal_met=True, result="5")

    proxy_model = FunctionModel(proxy_reply)
    proxy_model.replies_in_text = False
    assistant_model = by_turn("5")
    result = await Conversation(Agent("assistant", model=assistant_model),
                                UserProxy("Know 2+3.", model=proxy_model)).run()
    assert said(result)[0] == ("user_proxy", "Please add 2 and 3.")
    assert assistant_model.requests[0].last == Message.user("Please add 2 and 3.")


async def test_a_valid_finish_is_not_lost_to_a_say_in_the_same_reply() -> None:
    proxy_model = by_turn("Add 2 and 3.", lambda info: [call("finish", summary="It is 5.", goal_met=True, result="5"),
                                                        call("say", message="Thanks!")])
    proxy_model.replies_in_text = False
    result = await Conversation(Agent("assistant", model=by_turn("5")), UserProxy("Know 2+3.", model=proxy_model),
                                max_turns=4).run()
    assert result.stop_reason == "finish" and result.output == "5"


def test_a_concluding_participant_may_not_have_a_tool_named_say() -> None:
    @tool
    def say(message: str) -> str:
        """Speak aloud."""
        return message

    members = [Agent("speaker", tools=[say], model=by_turn("hi")), Agent("listener", model=by_turn("ok"))]
    with pytest.raises(ConfigError, match="'speaker' may end the chat, so it cannot have a tool named 'say'"):
        GroupChat(members, manager="round_robin")
    # A member who may not conclude keeps its `say` tool.
    result = GroupChat(members, manager="round_robin", finishers=["listener"], max_turns=2).run_sync("Talk.")
    assert result.stop_reason == "max_turns"


# -- a given opening --------------------------------------------------------------------------------


async def test_opening_is_the_first_turn_verbatim_without_a_model_call() -> None:
    proxy_model = by_turn(verdict("sorted", summary="The list is sorted."))
    assistant_model = by_turn("Sorted: [1, 2, 3].")
    opening = "Hi! Please sort [3, 1, 2] for me."
    stream = Conversation(Agent("assistant", model=assistant_model),
                          UserProxy("A sorted list.", model=proxy_model, opening=opening)).stream()
    events = await collect(stream)
    result = stream.result
    assert said(result) == [("user_proxy", opening), ("assistant", "Sorted: [1, 2, 3]."),
                            ("user_proxy", "The list is sorted.")]
    assert result.transcript[0].usage == Usage() and result.transcript[0].index == 1
    assert len(proxy_model.requests) == 1  # only for the verdict
    assert assistant_model.requests[0].last == Message.user(opening)
    # The proxy's history shows the opening as its own first message.
    roles = [(m.role, m.content) for m in proxy_model.requests[0].messages[1:]]
    assert roles == [("user", BEGIN_PROXY), ("assistant", opening),
                     ("user", "Sorted: [1, 2, 3]." + JUDGE_PROXY.format(goal="A sorted list."))]
    assert isinstance(events[0], RunStarted) and events[0].task == opening
    chosen = [e.speaker for e in events if isinstance(e, SpeakerChosen)]
    assert chosen == ["assistant", "user_proxy"]  # no one is chosen for the opening


# -- group chats -----------------------------------------------------------------------------------

ROLES = {"writer": "You write drafts.", "critic": "You criticise drafts.", "editor": "You fix grammar."}


def group_member(name: str, *, finish_on: int | None = None, result: Any = "the final text") -> Agent[str]:
    """A member who says something new each turn, and calls `finish` on its `finish_on`-th turn."""
    def reply(info: RequestInfo) -> Reply:
        n = turn_of(info)
        if finish_on is not None and n >= finish_on:
            return call("finish", summary=f"{name} approves.", goal_met=True, result=result)
        return fresh(name, n)
    return Agent(name, ROLES[name], model=FunctionModel(reply, name=name))


def trio(**finish_on: int) -> list[Agent[str]]:
    return [group_member(n, finish_on=finish_on.get(n)) for n in ("writer", "critic", "editor")]


def requests_of(agent: Agent[Any]) -> list[RequestInfo]:
    model = agent._model
    assert isinstance(model, FunctionModel)
    return model.requests


async def test_round_robin_group_chat_order_and_named_messages() -> None:
    members = trio()
    stream = GroupChat(members, manager="round_robin", max_turns=5).stream("Write a haiku about rain.")
    events = await collect(stream)
    result = stream.result
    assert result.stop_reason == "max_turns" and len(result.transcript) == 6
    assert speakers(result) == ["user", "writer", "critic", "editor", "writer", "critic"]
    assert [t.index for t in result.transcript] == [0, 1, 2, 3, 4, 5]
    assert result.transcript[0].text == "Write a haiku about rain." and result.transcript[0].usage == Usage()
    writer, critic, editor = (requests_of(m) for m in members)
    assert writer[0].last.content == "[user] Write a haiku about rain."
    assert critic[0].last.content == f"[user] Write a haiku about rain.\n\n[writer] {fresh('writer', 1)}" + \
        JUDGE_MEMBER.format(goal="Write a haiku about rain.")  # the critic may end the chat: it judges the goal
    # The writer's second turn gets what the others said since, each under their name; not its own message.
    assert writer[1].last.content == f"[critic] {fresh('critic', 1)}\n\n[editor] {fresh('editor', 1)}" + \
        JUDGE_MEMBER.format(goal="Write a haiku about rain.")
    assert [m.role for m in writer[1].messages] == ["system", "user", "assistant", "user"]
    system = writer[0].messages[0].content or ""
    assert system.startswith("You write drafts.\n\nYou are writer, one member of a group conversation with "
                             "critic, editor.")
    assert "call `finish`" in system  # everyone may conclude by default
    assert [t.tool_names for t in (writer[0], critic[0], editor[0])] == [[], ["finish"], ["finish"]]
    assert writer[1].tool_names == ["finish"]  # the first speaker may conclude once someone has answered
    chosen = [e for e in events if isinstance(e, SpeakerChosen)]
    assert [(c.speaker, c.by) for c in chosen] == [("writer", "round_robin"), ("critic", "round_robin"),
                                                   ("editor", "round_robin"), ("writer", "round_robin"),
                                                   ("critic", "round_robin")]
    assert set(result.per_agent) == {"writer", "critic", "editor"}
    assert total(list(result.per_agent.values())) == result.usage


async def test_a_verdict_before_anyone_else_has_spoken_is_refused() -> None:
    def proxy_reply(info: RequestInfo) -> Reply:
        if info.last.role == "tool" or len(info.messages) > 2:
            return "Please count to three." if turn_of(info) == 1 else call(
                "finish", summary="counted", goal_met=True, result="1 2 3")
        return call("finish", summary="done already", goal_met=True, result="nothing")  # at once, unasked

    proxy_model = FunctionModel(proxy_reply)
    result = await Conversation(Agent("assistant", model=by_turn("1 2 3")),
                                UserProxy("Hear a count to three.", model=proxy_model)).run()
    assert result.ok and result.output == "1 2 3"
    assert said(result)[:2] == [("user_proxy", "Please count to three."), ("assistant", "1 2 3")]
    refused = [s for s in result.runs[0].steps if isinstance(s, ToolStep)]
    assert [s.error for s in refused] == ["rejected"] and refused[0].observation.startswith("Too early for a verdict")


async def test_any_member_may_finish_a_group_chat_with_a_typed_verdict() -> None:
    members = [group_member("writer"), group_member("critic"), group_member("editor", finish_on=1, result=3)]
    result = await GroupChat(members, manager="round_robin", output=int).run("How many lines does a haiku have?")
    assert result.ok and result.stop_reason == "finish"
    assert result.concluded_by == "editor" and result.detail == "editor called finish"
    assert result.output == 3 and result.verdict is not None and result.verdict.summary == "editor approves."
    assert speakers(result) == ["user", "writer", "critic", "editor"]
    assert result.transcript[-1].final
    finish = requests_of(members[2])[0].tools[0]
    assert finish.name == "finish" and finish.parameters["properties"]["result"]["type"] == "integer"


async def test_finishers_restricts_who_is_offered_finish() -> None:
    members = trio(critic=2)
    result = await GroupChat(members, manager="round_robin", finishers=["critic"], max_turns=10).run("Write.")
    assert result.concluded_by == "critic"
    writer, critic, editor = (requests_of(m) for m in members)
    assert writer[0].tool_names == [] and editor[0].tool_names == []
    assert critic[0].tool_names == ["finish"]
    assert "finish" not in (writer[0].messages[0].content or "")
    assert "call `finish`" in (critic[0].messages[0].content or "")
    assert speakers(result) == ["user", "writer", "critic", "editor", "writer", "critic"]


async def test_a_member_not_offered_finish_cannot_end_the_chat_with_it() -> None:
    def writer_reply(info: RequestInfo) -> Reply:
        if info.last.role == "tool":
            return "Fine: here is my draft."
        return call("finish", answer="I declare the haiku done.")

    writer_model = FunctionModel(writer_reply)
    members = [Agent("writer", model=writer_model), group_member("critic", finish_on=1)]
    result = await GroupChat(members, manager="round_robin", finishers=["critic"]).run("Write a haiku.")
    assert result.concluded_by == "critic"
    assert said(result)[1] == ("writer", "Fine: here is my draft.")
    refused = writer_model.requests[1].last
    assert refused.role == "tool" and "You may not end this conversation" in (refused.content or "")
    assert [s.error for s in result.runs[0].steps if isinstance(s, ToolStep)] == ["rejected"]


async def test_random_manager_never_repeats_a_speaker_and_a_seed_makes_it_repeatable() -> None:
    async def order(seed: int) -> list[str]:
        result = await GroupChat(trio(), manager="random", seed=seed, max_turns=12).run("Talk.")
        assert result.stop_reason == "max_turns"
        return speakers(result)[1:]

    first, again = await order(7), await order(7)
    assert first == again and len(first) == 12
    assert all(a != b for a, b in zip(first, first[1:], strict=False))
    assert set(first) == {"writer", "critic", "editor"}
    stream = GroupChat(trio(), manager="random", seed=7, max_turns=3).stream("Talk.")
    events = await collect(stream)
    assert [e.by for e in events if isinstance(e, SpeakerChosen)] == ["random"] * 3


async def test_a_function_manager_chooses_from_the_transcript() -> None:
    seen: list[tuple[list[str], list[str]]] = []

    def pick(transcript: list[Turn], names: list[str]) -> str:
        seen.append(([t.speaker for t in transcript], names))
        return "editor" if transcript[-1].speaker != "editor" else "writer"

    stream = GroupChat(trio(), manager=pick, max_turns=4).stream("Fix this.")
    events = await collect(stream)
    result = stream.result
    assert speakers(result) == ["user", "editor", "writer", "editor", "writer"]
    assert seen[0] == (["user"], ["writer", "critic", "editor"])
    assert seen[2] == (["user", "editor", "writer"], ["writer", "critic", "editor"])
    assert [e.by for e in events if isinstance(e, SpeakerChosen)] == ["function"] * 4


async def test_an_async_function_manager_is_awaited() -> None:
    async def pick(transcript: list[Turn], names: list[str]) -> str:
        await asyncio.sleep(0)
        return names[-1] if transcript[-1].speaker != names[-1] else names[0]

    result = await GroupChat(trio(), manager=pick, max_turns=3).run("Fix this.")
    assert speakers(result) == ["user", "editor", "writer", "editor"]


async def test_a_function_manager_naming_a_non_member_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"returned 'bob'.*writer, critic, editor") as info:
        await GroupChat(trio(), manager=lambda transcript, names: "bob").run("Talk.")
    result = info.value.result  # type: ignore[attr-defined]
    assert isinstance(result, ConversationResult) and result.stop_reason == "error"
    assert speakers(result) == ["user"]


async def test_llm_manager_is_told_its_error_and_the_chat_goes_on_with_its_next_choice() -> None:
    manager = ScriptedModel([call("finish", speaker="bob"), call("finish", speaker="critic"),
                             call("finish", speaker="manager"), call("finish", speaker="[Writer]")])
    stream = GroupChat(trio(), manager="llm", manager_model=manager, max_turns=2).stream("Write a haiku.")
    events = await collect(stream)
    result = stream.result
    assert speakers(result) == ["user", "critic", "writer"]
    assert [(e.speaker, e.by) for e in events if isinstance(e, SpeakerChosen)] == [("critic", "manager"),
                                                                                 ("writer", "manager")]
    assert result.notes == []
    assert manager.remaining == 0
    first_error = manager.requests[1].last
    assert first_error.role == "tool"
    assert "'bob' is not a member; choose one of: writer, critic, editor" in (first_error.content or "")
    second_error = manager.requests[3].last.content or ""
    assert "'manager' is you, the manager, who never speaks" in second_error
    # The manager reads the conversation so far; its runs are counted as its own.
    assert "[user] Write a haiku." in (manager.requests[2].messages[1].content or "")
    assert f"[critic] {fresh('critic', 1)}" in (manager.requests[2].messages[1].content or "")
    assert result.per_agent["manager"].requests == 4
    assert total(list(result.per_agent.values())) == result.usage


async def test_llm_manager_sees_the_roster_and_an_enum_of_members() -> None:
    manager = ScriptedModel([call("finish", speaker="editor")])
    members = trio()
    members[1].description = "Finds what is wrong."
    await GroupChat(members, manager="llm", manager_model=manager, max_turns=1).run("Write.")
    system = manager.requests[0].messages[0].content or ""
    assert "- writer: You write drafts.\n- critic: Finds what is wrong.\n- editor: You fix grammar." in system
    speaker = manager.requests[0].tools[0].parameters["properties"]["speaker"]
    assert speaker["enum"] == ["writer", "critic", "editor"]
    assert manager.requests[0].tool_names == ["finish"]


async def test_llm_manager_answering_bob_then_itself_falls_back_to_round_robin() -> None:
    # An unusable choice goes back to the manager once; a second unusable one falls back to round-robin.
    manager = ScriptedModel([call("finish", speaker="bob"), call("finish", speaker="manager"),
                             call("finish", speaker="critic")])
    stream = GroupChat(trio(), manager="llm", manager_model=manager, max_turns=2).stream("Write.")
    events = await collect(stream)
    result = stream.result
    assert speakers(result) == ["user", "writer", "critic"]
    chosen = [e for e in events if isinstance(e, SpeakerChosen)]
    assert [(c.speaker, c.by) for c in chosen] == [("writer", "fallback"), ("critic", "manager")]
    assert len(result.notes) == 1
    note = result.notes[0]
    assert note.startswith("turn 1: the manager gave no usable speaker")
    assert '{"speaker": "bob"}' in note and '{"speaker": "manager"}' in note
    assert note.endswith("round-robin chose instead")
    assert chosen[0].note == note
    assert "note: turn 1: the manager gave no usable speaker" in result.summary()


async def test_llm_manager_that_never_names_a_member_falls_back_every_turn() -> None:
    manager = FunctionModel(lambda info: "I think the writer should go.")  # text, never a `finish` choice
    stream = GroupChat(trio(), manager="llm", manager_model=manager, max_turns=4).stream("Write.")
    events = await collect(stream)
    result = stream.result
    assert result.stop_reason == "max_turns"
    assert speakers(result) == ["user", "writer", "critic", "editor", "writer"]
    assert [e.by for e in events if isinstance(e, SpeakerChosen)] == ["fallback"] * 4
    assert len(result.notes) == 4
    assert all("max_steps=3" in n for n in result.notes)
    assert len(manager.requests) == 12  # three tries a turn
    assert result.per_agent["manager"].requests == 12


async def test_llm_manager_uses_the_first_members_model_by_default() -> None:
    def writer_reply(info: RequestInfo) -> Reply:
        if any("choose who speaks next" in (m.content or "") for m in info.messages):
            return call("finish", speaker="critic")
        return "a draft"

    writer = Agent("writer", "You write.", model=FunctionModel(writer_reply))
    critic = Agent("critic", "You criticise.", model=by_turn("too long"))
    result = await GroupChat([writer, critic], max_turns=2).run("Write.")
    assert speakers(result) == ["user", "critic", "critic"]
    assert result.per_agent["manager"].requests == 2


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"members": ["writer"]}, "at least two members"),
    ({"members": ["writer", "writer"]}, "distinct names"),
    ({"members": ["writer", "user"]}, "may not be called 'user'"),
    ({"members": ["writer", "manager"]}, "may not be called 'manager'"),
    ({"manager": "democracy"}, "manager='democracy' is not known"),
    ({"finishers": ["bob"]}, r"finishers must name members \(writer, critic\)"),
    ({"finishers": []}, "finishers must name members"),
    ({"max_turns": 0}, "max_turns and max_stale must be at least 1"),
    ({"max_stale": 0}, "max_turns and max_stale must be at least 1"),
])
def test_group_chat_config_errors(kwargs: dict[str, Any], match: str) -> None:
    names = kwargs.pop("members", ["writer", "critic"])
    members = [Agent(n, model=by_turn("hi")) for n in names]
    with pytest.raises(ConfigError, match=match):
        GroupChat(members, **kwargs)


def test_conversation_config_errors() -> None:
    model = by_turn("hi")
    with pytest.raises(ConfigError, match="needs a goal"):
        UserProxy("   ", model=model)
    with pytest.raises(ConfigError, match="both called 'helper'"):
        Conversation(Agent("helper", model=model), UserProxy("Goal.", name="helper", model=model))
    with pytest.raises(ConfigError, match="at least 1"):
        Conversation(Agent("assistant", model=model), UserProxy("Goal.", model=model), max_turns=0)
    with pytest.raises(ConfigError, match="at least 1"):
        Conversation(Agent("assistant", model=model), UserProxy("Goal.", model=model), max_stale=0)


async def test_a_proxy_named_user_is_refused_or_counted_like_any_participant() -> None:
    try:
        conversation = Conversation(Agent("assistant", model=chatty("assistant")),
                                    UserProxy("Talk.", name="user", model=chatty("proxy")), max_turns=4)
    except ConfigError:
        return
    result = await conversation.run()
    assert [t.index for t in result.transcript] == [1, 2, 3, 4]


async def test_group_chat_stale_exchange_asks_the_first_finisher_for_a_verdict() -> None:
    def polite(name: str, ideas: int) -> Agent[str]:
        def reply(info: RequestInfo) -> Reply:
            if WRAP_UP_MARK in (info.last.content or ""):
                return call("finish", summary="We are done.", goal_met=True, result=fresh("writer", 1))
            return fresh(name, turn_of(info)) if turn_of(info) <= ideas else "Thanks, great work!"
        return Agent(name, model=FunctionModel(reply, name=name))

    members = [polite("writer", 1), polite("critic", 5), polite("editor", 0)]
    stream = GroupChat(members, manager="round_robin", finishers=["critic"], max_turns=20).stream("Write a haiku.")
    events = await collect(stream)
    result = stream.result
    assert result.stop_reason == "finish" and result.concluded_by == "critic"
    assert speakers(result) == ["user", "writer", "critic", "editor", "writer", "critic"]
    assert [e.by for e in events if isinstance(e, SpeakerChosen)] == ["round_robin"] * 4 + ["wrap_up"]
    wrap_up = requests_of(members[1])[-1].last.content or ""
    assert wrap_up.startswith("[editor] Thanks, great work!\n\n[writer] Thanks, great work!\n\n"
                              "(The conversation is going in circles: the last 2 messages were a farewell")


async def test_group_wrap_up_right_after_the_finishers_own_message_does_not_say_the_conversation_starts() -> None:
    def critic_reply(info: RequestInfo) -> Reply:
        if WRAP_UP_MARK in (info.last.content or ""):
            return call("finish", summary="Done.", goal_met=True, result="haiku")
        return "Thanks, great work!"

    critic_model = FunctionModel(critic_reply)
    members = [Agent("writer", model=by_turn("Thanks, great work!")), Agent("critic", model=critic_model)]
    result = await GroupChat(members, manager="round_robin", finishers=["critic"]).run("Write a haiku.")
    assert speakers(result) == ["user", "writer", "critic", "critic"]
    assert "starts now" not in (critic_model.requests[-1].last.content or "")


async def test_group_chat_stale_exchange_without_a_verdict_is_repetition() -> None:
    members = [Agent(n, model=by_turn("Thanks, great work!")) for n in ("writer", "critic", "editor")]
    result = await GroupChat(members, manager="round_robin", finishers=["editor"], max_turns=20).run("Write.")
    assert result.stop_reason == "repetition"
    assert speakers(result) == ["user", "writer", "critic", "editor"]
    assert result.detail.endswith("editor was asked for a verdict and replied instead")


# -- streaming ---------------------------------------------------------------------------------------


def weather_pair() -> Conversation[int]:
    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    def assistant_reply(info: RequestInfo) -> Reply:
        return call("add", a=2, b=3) if info.last.role == "user" else "2+3 is 5."

    proxy_model = by_turn("What is 2+3? Use your tool.", verdict(5, summary="The sum is 5."))
    return Conversation(Agent("assistant", "You add.", tools=[add], model=FunctionModel(assistant_reply)),
                        UserProxy("Know 2+3.", output=int, model=proxy_model))


async def test_stream_with_deltas_yields_text_chunks_then_each_turn() -> None:
    stream = weather_pair().stream(deltas=True)
    with pytest.raises(RuntimeError, match="has not finished"):
        _ = stream.result
    events = await collect(stream)
    result = stream.result
    assert result.output == 5
    assert isinstance(events[0], RunStarted) and events[0].agent == "conversation"
    assert isinstance(events[-1], RunFinished) and events[-1].agent == "conversation"
    assert events[-1].stop_reason == "finish" and events[-1].output == "5"
    assert events[-1].usage == result.usage
    turns = [e for e in events if isinstance(e, Turn)]
    assert turns == result.transcript
    assert [(t.index, t.speaker) for t in turns] == [(1, "user_proxy"), (2, "assistant"), (3, "user_proxy")]
    chunks = [e for e in events if isinstance(e, TextChunk)]
    assert {c.agent for c in chunks} == {"conversation/user_proxy", "conversation/assistant"}
    assert len(chunks) > 2  # in pieces
    proxy_text = "".join(c.text for c in chunks if c.agent == "conversation/user_proxy")
    assistant_text = "".join(c.text for c in chunks if c.agent == "conversation/assistant")
    assert proxy_text == "What is 2+3? Use your tool." and assistant_text == "2+3 is 5."
    # Each message's chunks come before its Turn, after the previous one.
    position = {id(e): i for i, e in enumerate(events)}
    for turn, before in zip(turns[:2], [None, turns[0]], strict=True):
        own = [c for c in chunks if c.agent == f"conversation/{turn.speaker}"
               and position[id(c)] < position[id(turn)] and (before is None or position[id(c)] > position[id(before)])]
        assert "".join(c.text for c in own) == turn.text
    # The participants' own run events are there under their paths.
    kinds = [(type(e).__name__, e.agent) for e in events if not isinstance(e, (TextChunk, Turn, SpeakerChosen))]
    assert ("ToolStep", "conversation/assistant") in kinds
    assert kinds.count(("RunStarted", "conversation/assistant")) == 1
    assert kinds.count(("RunFinished", "conversation/user_proxy")) == 2
    assert sum(1 for e in events if isinstance(e, ModelStep)) == result.usage.requests == 4


async def test_stream_without_deltas_has_no_text_chunks() -> None:
    stream = weather_pair().stream()
    events = await collect(stream)
    assert not any(isinstance(e, TextChunk) for e in events)
    assert [e.speaker for e in events if isinstance(e, Turn)] == ["user_proxy", "assistant", "user_proxy"]
    assert stream.result.ok


async def test_group_chat_stream_with_deltas() -> None:
    stream = GroupChat(trio(critic=1), manager="round_robin").stream("Write.", deltas=True)
    events = await collect(stream)
    chunks = [e for e in events if isinstance(e, TextChunk)]
    assert "".join(c.text for c in chunks if c.agent == "group_chat/writer") == fresh("writer", 1)
    assert not any(c.agent == "group_chat/critic" for c in chunks)  # it only called finish
    assert stream.result.concluded_by == "critic"


# -- the display ------------------------------------------------------------------------------------


async def show(stream: Any) -> str:
    out = io.StringIO()
    display = ConversationDisplay(Console(file=out, width=120, color_system=None))
    async for event in stream:
        display.event(event)
    return out.getvalue()


@pytest.mark.parametrize("deltas", [False, True])
async def test_conversation_display_shows_messages_tool_calls_and_the_end(deltas: bool) -> None:
    text = await show(weather_pair().stream(deltas=deltas))
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    assert lines[0] == "user_proxy: What is 2+3? Use your tool."
    assert lines[1].strip().startswith("· add(") and '"a": 2' in lines[1] and lines[1].endswith("→ 5")
    assert lines[2] == "assistant: 2+3 is 5."
    assert lines[3] == "✓ user_proxy called finish: The sum is 5."
    assert "ended" in lines[4] and "finish" in lines[4] and "user_proxy called finish" in lines[4]
    assert len(lines) == 5  # each message once, streamed or not


async def test_conversation_display_shows_manager_fallbacks_and_the_reason_it_ended() -> None:
    manager = FunctionModel(lambda info: "whoever")
    text = await show(GroupChat(trio(), manager="llm", manager_model=manager, max_turns=1).stream("Write."))
    assert "→ writer speaks (fallback)" in text
    assert "the manager gave no usable speaker" in text
    assert f"writer: {fresh('writer', 1)}" in text
    assert "user: Write." in text  # the task, as its opening message
    assert "✗ manager" not in text  # the fallback note says it once
    last = [line for line in text.splitlines() if line.strip()][-1]
    assert "ended" in last and "max_turns" in last


async def test_every_kind_of_run_returns_an_outcome() -> None:
    from agentflow import Outcome
    from agentflow.workflow import Workflow, step

    @step
    def one() -> int:
        return 1

    agent_result = await Agent("a", model=ScriptedModel([call("finish", answer="x")])).run("go")
    flow_result = await Workflow(one, name="w").run()
    talk = await bridge_pair()[0].run()
    for result in (agent_result, flow_result, talk):
        assert isinstance(result, Outcome)
        assert (result.ok, result.stop_reason) == (True, "finish"), result
    assert (agent_result.output, flow_result.output, talk.output) == ("x", 1, Length(value=1149, unit="m"))
    assert (agent_result.usage.requests, flow_result.usage.requests, talk.usage.requests) == (1, 0, 5)
