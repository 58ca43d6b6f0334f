"""The stateful travel assistant (the Dapr "Stateful LLM" pattern), served over HTTP by `agentflow serve`.

It remembers its user across restarts (a durable session: every turn is a durable run that
continues the conversation), searches flights with a tool, and books one only after a person
approves it over the REST API.

    agentflow serve examples/travel_assistant.py          # then the curl session of the README
    python examples/travel_assistant.py                   # that session driven from here, and checked

Run as a program, it starts `agentflow serve` on this file, talks to the assistant over HTTP
("I live in Berlin"), kills the server as a crash would, starts it again, asks for flights to
Paris (the assistant must still know where the user lives), asks it to book the cheapest, and
approves the booking. It exits 1 if the assistant forgot Berlin or booked anything but the
cheapest flight. The model: --model/--base-url, else the default chain (a key, or a pulled local
model), else an offline stand-in that plays the same protocol.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel

from agentflow import Agent, ConfigError, FunctionModel, Model, tool
from agentflow.models import RequestInfo, call


class Flight(BaseModel):
    number: str
    origin: str
    destination: str
    departs: str
    price_eur: int


class Flights(BaseModel):
    cheapest: Flight
    all: list[Flight]  # cheapest first


@tool
def search_flights(origin: Annotated[str, "the city the user flies from (where they live, if they said)"],
                   destination: Annotated[str, "the city the user wants to go to"]) -> Flights:
    """Search the flights from one city to another: the cheapest, and all of them cheapest first."""
    seed = zlib.crc32(f"{origin.lower()}>{destination.lower()}".encode())
    flights = sorted((Flight(number=f"{carrier}{100 + (seed >> (8 * i)) % 900}", origin=origin,
                             destination=destination, departs=f"{6 + 5 * i:02d}:{(seed >> i) % 6}0",
                             price_eur=60 + (seed >> (4 * i)) % 240)
                      for i, carrier in enumerate(("LH", "AF", "EW"))), key=lambda f: f.price_eur)
    return Flights(cheapest=flights[0], all=flights)


@tool(requires_approval=True)
def book_flight(number: Annotated[str, "the flight number, e.g. LH123"]) -> str:
    """Book a seat on a flight (irreversible: a person approves it first)."""
    return f"Booked {number}: confirmation {zlib.crc32(number.encode()) % 1_000_000:06d}."


travel = Agent(
    name="travel",
    instructions="You are TravelBuddy, a travel assistant. Remember what the user told you about themselves (where "
                 "they live is where they fly from). To find flights, call search_flights. To book, call book_flight "
                 "with the flight number. Answer in one or two short sentences.",
    tools=[search_flights, book_flight],
    ends_with="text",
    max_steps=6,
)


# -- the offline stand-in: it plays the assistant's part of the protocol ---------------------------------


def stand_in(info: RequestInfo) -> Any:
    said = [m.content or "" for m in info.messages if m.role == "user"]
    home = next((s.split("live in ", 1)[1].split(".")[0].strip() for s in said if "live in " in s), "somewhere")
    last = info.last
    if last.role == "tool":
        if last.content and last.content.startswith("{"):
            cheapest = json.loads(last.content)["cheapest"]
            return f"The cheapest is {cheapest['number']} at {cheapest['departs']} for {cheapest['price_eur']} EUR."
        return last.content or ""
    if "flights to " in said[-1]:
        return call("search_flights", origin=home, destination=said[-1].split("flights to ", 1)[1].split()[0]
                    .strip(".?!"))
    if "book" in said[-1].lower():
        found = [m.content for m in info.messages if m.role == "tool" and (m.content or "").startswith("{")]
        return call("book_flight", number=json.loads(found[-1] or "{}")["cheapest"]["number"])
    return f"Nice to meet you! I'll remember that you live in {home}." if home != "somewhere" else "How can I help?"


def demo_model() -> Model:
    """The served process's model (`--model examples/travel_assistant.py:demo_model`): as the demo was told."""
    if os.environ.get("TRAVEL_DEMO_STAND_IN"):
        return FunctionModel(stand_in, name="stand-in")
    from _setup import model_from, parser

    return model_from(parser("").parse_args(shlex.split(os.environ.get("TRAVEL_DEMO_ARGS", ""))))


# -- the demo: the README's curl session, driven over HTTP -----------------------------------------------


class Demo:
    def __init__(self, db: str, stand_in: bool, argv: list[str]) -> None:
        self.db, self.argv = db, argv
        self.env = {**os.environ, "TRAVEL_DEMO_ARGS": shlex.join(argv)}
        if stand_in:
            self.env["TRAVEL_DEMO_STAND_IN"] = "1"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        here = str(Path(__file__).resolve())
        self.proc = subprocess.Popen([sys.executable, "-m", "agentflow.cli", "serve", here, "--port", str(port),
                                      "--db", self.db, "--model", f"{here}:demo_model", "--log-level", "warning"],
                                     env=self.env)
        self.url = f"http://127.0.0.1:{port}"
        import httpx

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                if self.proc.poll() is not None:
                    raise SystemExit(f"agentflow serve exited with {self.proc.returncode}") from None
                time.sleep(0.2)
        raise SystemExit("agentflow serve did not answer in 120 s")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def http(self, method: str, path: str, body: Any = None) -> Any:
        import httpx

        shown = f" -d '{json.dumps(body)}'" if body is not None else ""
        print(f"$ curl -X {method} localhost:8000{path}{shown}")
        r = httpx.request(method, self.url + path, json=body, timeout=700)
        print(f"  {r.status_code} {r.text[:300]}")
        r.raise_for_status()
        return r.json()

    def settled(self, run_id: str) -> dict[str, Any]:
        """The run once it has ended or waits for a person (a local model may take minutes)."""
        while (view := self.http("GET", f"/runs/{run_id}?wait=60"))["status"] in ("pending", "running"):
            pass
        return view

    def say(self, session: str, text: str) -> dict[str, Any]:
        return self.settled(self.http("POST", f"/sessions/{session}/messages", {"text": text})["run"])


def tool_calls(events: list[dict[str, Any]], name: str) -> list[tuple[dict[str, Any], str]]:
    """The run's calls of tool `name`: (arguments, what came back)."""
    return [(json.loads(e["call"]["arguments"]), e["observation"]) for e in events
            if e.get("kind") == "tool" and e["call"]["name"] == name]


def events_of(url: str, run_id: str) -> list[dict[str, Any]]:
    import httpx

    out = []
    with httpx.stream("GET", f"{url}/runs/{run_id}/events", timeout=700) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                out.append(json.loads(line[6:]))
    return out


def main() -> int:
    from _setup import model_from, parser

    p = parser(__doc__ or "")
    p.add_argument("--db", default=None, help="the runs' database (default: a new file in a temporary directory)")
    args, _ = p.parse_known_args()
    argv = [a for a in sys.argv[1:] if not a.startswith("--db")]
    try:
        stand = False
        print(f"model: {model_from(args).name}")
    except ConfigError as e:
        stand = True
        print(f"(using an offline stand-in model, because {str(e).split('. Fix', 1)[0]}; see README to use a real "
              "model)\n")
    db = args.db or f"sqlite:///{tempfile.mkdtemp(prefix='travel-')}/travel.db"
    demo = Demo(db, stand, argv)
    demo.start()
    try:
        first = demo.http("POST", "/runs", {"target": "travel", "input": "I want to find flights to Paris"})
        demo.settled(first["id"])
        session = demo.http("POST", "/sessions", {"target": "travel"})["id"]
        demo.say(session, "Hi! I live in Berlin.")
        print("\n(the server dies; a new one starts on the same database)\n")
        demo.kill()
        demo.start()
        found = demo.say(session, "Find me flights to Paris.")
        searches = tool_calls(events_of(demo.url, found["id"]), "search_flights")
        booking = demo.http("POST", f"/sessions/{session}/messages", {"text": "Book the cheapest one, please."})
        while (view := demo.settled(booking["run"]))["status"] == "waiting":  # approve what it asks to book
            for request in view["requests"]:
                demo.http("POST", f"/runs/{booking['run']}/replies/{request['id']}", {"approve": True})
        done = view
        booked = tool_calls(events_of(demo.url, booking["run"]), "book_flight")
    finally:
        if demo.proc is not None and demo.proc.poll() is None:
            demo.proc.terminate()
            demo.proc.wait(30)
    from_berlin = [found for arguments, found in searches if "berlin" in str(arguments.get("origin", "")).lower()]
    cheapest = json.loads(from_berlin[-1])["cheapest"]["number"] if from_berlin and from_berlin[-1].startswith("{") \
        else None
    numbers = [arguments.get("number") for arguments, _ in booked]
    right = cheapest is not None and numbers == [cheapest] and "confirmation" in booked[0][1] \
        and done["status"] == "succeeded"
    print(f"\nremembered Berlin after the restart: {'yes' if from_berlin else 'no'} (searches: "
          f"{[arguments for arguments, _ in searches]})")
    print(f"booked after approval: {numbers} (the cheapest found: {cheapest}); reply: {done['output']!r}")
    print(f"checked: {'right' if right else 'wrong'}")
    return 0 if right else 1


if __name__ == "__main__":
    sys.exit(main())
