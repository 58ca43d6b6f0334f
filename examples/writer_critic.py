"""A writer and a critic improve a short text: a two-agent conversation with the critic as UserProxy.

The writer only writes; it never sees the brief's criteria. The critic knows them, reviews each
draft, asks for changes, and ends the conversation with its verdict and the final text (a typed
`Blurb`). The conversation is printed as it happens, then a summary and the final text.

    python examples/writer_critic.py                                                     # offline stand-in
    python examples/writer_critic.py --model openai:gpt-4o-mini
    python examples/writer_critic.py --base-url http://127.0.0.1:8080/v1 --constrained   # llama-server
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from _setup import models_for, parser
from pydantic import BaseModel, Field
from rich.console import Console

from agentflow import Agent, Conversation, Limits, Model, UserProxy
from agentflow.cli.display import ConversationDisplay
from agentflow.models import RequestInfo, call

BRIEF = """A product blurb of 40 to 80 words for Happy Feet Socks' new merino hiking socks. It must name the \
product, mention warmth and blister protection, use concrete, vivid words (no "high quality" or "best ever") \
and end with a call to action. At most three rounds of feedback; then take the best draft."""


class Blurb(BaseModel):
    text: str = Field(description="the final blurb, exactly as the writer wrote it")
    words: int = Field(description="how many words it has")


def build(models: dict[str, Model]) -> Conversation[Blurb]:
    writer = Agent("writer", "You are a copywriter. Write or revise the text you are asked for; reply with the "
                             "text only, no commentary.", model=models["writer"], max_steps=3)
    critic = UserProxy(BRIEF, output=Blurb, name="critic", model=models["critic"],
                       instructions="You are a demanding editor. Ask for a first draft, then give specific "
                                    "feedback on each draft until it meets the brief.")
    return Conversation(writer, critic, max_turns=10, limits=Limits(max_seconds=600))


async def main() -> int:
    args = parser(__doc__ or "").parse_args()
    models = models_for(args, {"writer": writer_stand_in, "critic": critic_stand_in})
    display = ConversationDisplay(Console(highlight=False))
    stream = build(models).stream(deltas=True)
    async for event in stream:
        display.event(event)
    result = stream.result
    print("\n" + result.summary())
    if result.output is not None:
        print(f"\nfinal text ({len(result.output.text.split())} words):\n{result.output.text}")
    return 0 if result.goal_met else 1


# -- the offline stand-in ------------------------------------------------------------------------------

DRAFTS = [
    "Our new hiking socks are high quality and the best ever. Buy them now.",
    "Meet Trailblaze Merino, the hiking sock from Happy Feet Socks. Soft merino wool keeps your toes warm on "
    "frosty switchbacks and dry on sweaty climbs, while a seamless toe and padded heel stop blisters before "
    "they start. Mile ten feels like mile one. Lace up, head out, and order your pair today at "
    "happyfeet.example.",
]


def writer_stand_in(info: RequestInfo) -> Any:
    drafts = sum(1 for m in info.messages if m.role == "assistant")
    return DRAFTS[min(drafts, len(DRAFTS) - 1)]


def critic_stand_in(info: RequestInfo) -> Any:
    said = sum(1 for m in info.messages if m.role == "assistant")
    if said == 0:
        return "Please write a 40-80 word blurb for Happy Feet Socks' new merino hiking socks."
    if said == 1:
        return ("Too vague and too short. Name the product, say how it keeps feet warm and prevents blisters, "
                "use concrete images instead of 'high quality', and end with a call to action.")
    final = DRAFTS[-1]  # the draft it read last, copied as the brief's result
    return call("finish", summary="the second draft names the product, covers warmth and blisters, is vivid "
                                  "and ends with a call to action", goal_met=True,
                result={"text": final, "words": len(final.split())})


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
