"""Three personas plan a trip in a group chat; a manager model chooses who speaks next.

The personas are Markdown files in examples/trip_personas/ (a navigator who owns the route, a
local guide, a budget keeper with a calculator). The manager reads the conversation and the
members' roles and picks each next speaker; only the navigator may end the chat, with its verdict
and a typed `TripPlan`. The chat is printed as it happens, then a summary and the plan.

    python examples/trip_group_chat.py                                                     # offline stand-in
    python examples/trip_group_chat.py --model openai:gpt-4o-mini
    python examples/trip_group_chat.py --base-url http://127.0.0.1:8080/v1 --constrained   # llama-server
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path
from typing import Any

from _setup import models_for, parser
from pydantic import BaseModel, Field
from rich.console import Console

from agentflow import GroupChat, Limits, Model
from agentflow.agent.persona import personas
from agentflow.cli.display import ConversationDisplay
from agentflow.models import RequestInfo, call

TASK = "Plan a 3-day trip to Lisbon for two people in May. Budget: 900 euros for everything except the flights."
MEMBERS = ("navigator", "local_guide", "budgeter")


class TripPlan(BaseModel):
    days: list[str] = Field(description="one line per day: where, what, and where to eat")
    total_eur: int = Field(description="the estimated cost of the whole trip in euros, flights excluded")


def build(models: dict[str, Model]) -> GroupChat[TripPlan]:
    found = personas([Path(__file__).parent / "trip_personas"])
    members = [found[name].agent(model=models[name], max_steps=6) for name in MEMBERS]
    return GroupChat(members, manager="llm", manager_model=models["manager"], finishers=["navigator"],
                     output=TripPlan, max_turns=10, limits=Limits(max_seconds=900))


async def main() -> int:
    args = parser(__doc__ or "").parse_args()
    models = models_for(args, {"navigator": navigator_stand_in, "local_guide": guide_stand_in,
                               "budgeter": budgeter_stand_in, "manager": manager_stand_in})
    display = ConversationDisplay(Console(highlight=False))
    stream = build(models).stream(TASK, deltas=True)
    async for event in stream:
        display.event(event)
    result = stream.result
    print("\n" + result.summary())
    if result.output is not None:
        print("\nthe plan:")
        for day in result.output.days:
            print(f"  - {day}")
        print(f"  total: {result.output.total_eur} EUR")
    return 0 if result.goal_met else 1


# -- the offline stand-in ------------------------------------------------------------------------------

NEXT = {"user": "navigator", "navigator": "local_guide", "local_guide": "budgeter", "budgeter": "navigator"}


def manager_stand_in(info: RequestInfo) -> Any:
    last = re.search(r"The last to speak was (\w+)", info.messages[-1].content or "")
    return call("finish", speaker=NEXT[last[1] if last else "user"])


def navigator_stand_in(info: RequestInfo) -> Any:
    if not any(m.role == "assistant" for m in info.messages[:-1]):
        return ("Route: day 1 Baixa and Alfama (walkable, the old town), day 2 Belém by tram 15, day 3 a day trip "
                "to Sintra by train. local_guide, what should we see and eat in each?")
    return call("finish", summary="three walkable days with food and costs agreed, under budget", goal_met=True,
                result={"days": ["Day 1: Alfama and Baixa - Castelo de São Jorge, lunch at a tasca, fado at night",
                                 "Day 2: Belém - Jerónimos Monastery, pastéis de Belém, LX Factory for dinner",
                                 "Day 3: Sintra by train - Pena Palace (book ahead), Quinta da Regaleira"],
                        "total_eur": 670})


def guide_stand_in(info: RequestInfo) -> Any:
    return ("Day 1: Castelo de São Jorge, then lunch at a tasca in Alfama and fado in the evening. Day 2: Jerónimos "
            "Monastery and pastéis de Belém, dinner at LX Factory. Day 3: Pena Palace (book tickets ahead) and "
            "Quinta da Regaleira in Sintra.")


def budgeter_stand_in(info: RequestInfo) -> Any:
    if info.last.role != "tool":
        return call("calculator", expression="3*110 + 3*2*35 + 90 + 40")
    return (f"Hotel 3 x 110, food 2 x 35 a day, tickets 90, transport 40: {info.last.content} euros in all, "
            "well under the 900 budget.")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
