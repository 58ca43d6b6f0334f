"""The targets tests/test_server.py serves with `agentflow serve tests/server_app.py --model tests/server_model.py`.

Every tool and workflow step appends `start X` and `end X` to $SERVER_LOG, so a test can count
side effects across a killed and restarted server; an effect named in $SERVER_SLOW sleeps after
its start, so the test can kill the server there. A task containing "gated" waits (in its first
model call, see server_model.py) until the file $SERVER_GATE exists.
"""

from __future__ import annotations

import asyncio
import os

from pydantic import BaseModel

from agentflow import Agent, Supervisor, tool
from agentflow.runtime.human import ask_human
from agentflow.workflow import Workflow, step


def mark(what: str) -> None:
    with open(os.environ["SERVER_LOG"], "a") as f:
        f.write(what + "\n")


async def effect(label: str) -> None:
    mark(f"start {label}")
    if label == os.environ.get("SERVER_SLOW"):
        await asyncio.sleep(60)
    mark(f"end {label}")


class Trip(BaseModel):
    city: str
    flights: list[str]


@tool
async def search_flights(city: str) -> list[str]:
    """Flights to a city."""
    await effect(f"search:{city}")
    return [f"LH{100 + len(city)} to {city}", f"AF{200 + len(city)} to {city}"]


@tool(requires_approval=True)
async def book(flight: str) -> str:
    """Book a flight (needs a person's approval)."""
    await effect(f"book:{flight}")
    return f"booked {flight}"


@tool
async def explode(what: str) -> str:
    """Fails, naming a secret and a path (the server must not show either)."""
    raise RuntimeError(f"cannot reach {what} with key {os.environ.get('OPENAI_API_KEY')} at /etc/agentflow/secret.conf")


planner = Agent(name="planner", instructions="Plan a trip.", tools=[search_flights], output=Trip)
booker = Agent(name="booker", instructions="Book what is asked.", tools=[search_flights, book])
asker = Agent(name="asker", instructions="Ask the person, then finish with the answer.", tools=[ask_human])
chat = Agent(name="chat", instructions="A travel assistant that remembers the user.", ends_with="text")
worker = Agent(name="worker", instructions="Search flights.", tools=[search_flights])
boss = Supervisor([worker], name="boss")
failing = Agent(name="failing", tools=[explode])
tidier = Agent(name="tidier", instructions="Tidy up.", description="tidies", ends_with="text")
reviewer = Supervisor([tidier], name="reviewer", mode="plan", on_plan="human")


@step
async def double(x: int) -> int:
    await effect(f"double:{x}")
    return 2 * x


@step
async def plus(double: int, y: int = 1) -> int:
    await effect(f"plus:{double}+{y}")
    return double + y


calc = Workflow(double >> plus, name="calc")
