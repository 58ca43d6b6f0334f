"""The Shopify plug-in marketing flow of the book's "LLM Workflows" chapter, run as a worklist.

For each storefront: read it and summarize the store -> invent a plug-in for it -> write the owner a
marketing email -> send it. The supervisor adds these tasks with their dependencies; a scheduler runs
each one as soon as the tasks it depends on are done, and results come back to the supervisor by
themselves. Sending is irreversible, so `send_email` needs approval (here the approver prints the
email and says yes; "sending" only prints), and the mailer's `finish` is validated: it must give the
receipt `send_email` returned, so it cannot claim a send that never happened. The storefronts are
canned HTML: no network.

    python examples/shopify_worklist.py                                                     # offline stand-in
    python examples/shopify_worklist.py --base-url http://127.0.0.1:8080/v1 --constrained   # llama-server
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from typing import Annotated, Any

from _setup import models_for, parser
from pydantic import BaseModel, Field

from agentflow import (
    Agent,
    Model,
    ModelSettings,
    RunFinished,
    RunStarted,
    Supervisor,
    Tool,
    ToolCall,
    ToolError,
    WorklistChanged,
    tool,
)
from agentflow.models import RequestInfo, call

SHOPS = [  # url, store, what it sells, owner, owner's email
    ("https://happy-feet.example", "Happy Feet Socks", "Taco Tuesday socks, Cat astronaut socks, Rainbow crew socks",
     "Dana Pierce", "dana@happy-feet.example"),
    ("https://leaf-and-kettle.example", "Leaf & Kettle", "Smoky Lapsang, Jasmine pearls, Monthly tea box",
     "Ravi Menon", "ravi@leaf-and-kettle.example"),
    ("https://wickworks.example", "Wickworks Candles", "Campfire candle, Sea salt candle, Candle of the month club",
     "Mia Hart", "mia@wickworks.example"),
]
STOREFRONTS = {url: f"<html><head><title>{store}</title></head><body><h1>{store}</h1><ul>"
                    + "".join(f"<li>{item}</li>" for item in sells.split(", "))
                    + f"</ul><footer>Owned and run by {owner} ({email})</footer></body></html>"
               for url, store, sells, owner, email in SHOPS}
SENT: dict[str, str] = {}  # receipt -> subject


class StoreSummary(BaseModel):
    store: str = Field(description="The store's name")
    owner: str = Field(description="The owner's name")
    owner_email: str = Field(description="The owner's email address")
    sells: str = Field(description="What the store sells, in one sentence")


class PluginIdea(BaseModel):
    """A Shopify plug-in concept for one store (after the book's Table 9-1)."""

    name: str = Field(description="A catchy name for the plug-in")
    description: str = Field(description="What the plug-in does, in two sentences")
    benefits: list[str] = Field(description="How it helps this store, two or three points")


class Email(BaseModel):
    to: str = Field(description="The owner's email address")
    subject: str
    body: str = Field(description="At most 100 words: greet the owner by name, pitch the plug-in, sign as "
                                  "The Plug-in Team")


@tool
def fetch_storefront(url: Annotated[str, "the storefront's URL"]) -> str:
    """Fetch a storefront's home page, as text."""
    host = url.strip().split("//")[-1].strip("/")  # with or without https://
    html = next((page for known, page in STOREFRONTS.items() if known.endswith("//" + host)), None)
    if html is None:
        raise ToolError(f"no storefront at {url}; the storefronts are: {', '.join(STOREFRONTS)}")
    return "\n".join(t.strip() for t in re.split(r"<[^>]+>", html) if t.strip())  # small models misread raw HTML


@tool(requires_approval=True)
async def send_email(to: Annotated[str, "the recipient's address"], subject: str, body: str) -> str:
    """Send an email and return its receipt. It cannot be taken back, so a person approves every one first."""
    receipt = f"receipt-{len(SENT) + 1}"
    SENT[receipt] = subject
    print(f"SENDING to {to}: {subject}  [{receipt}]")
    return receipt


class Receipt(BaseModel):
    receipt: str = Field(description="The receipt send_email returned, e.g. receipt-1")


def really_sent(done: Receipt) -> None:
    """The mailer's `finish` is checked: it may not claim an email went out that never did."""
    if done.receipt not in SENT:
        raise ValueError(f"{done.receipt!r} is not a receipt of send_email: call send_email, then finish with it")


def approve(request: ToolCall, _tool: Tool[Any]) -> bool:
    """The human in the loop: show the email, then approve it (a real one would ask)."""
    email = json.loads(request.arguments)
    print(f"\n  ---- approve send_email? ----\n  To: {email.get('to')}\n  Subject: {email.get('subject')}\n  "
          + str(email.get("body")).replace("\n", "\n  ") + "\n  ---- approved ----\n")
    return True


INSTRUCTIONS = """We sell Shopify plug-ins and market them to store owners. Storefront N (1, 2, ...) needs exactly
these four tasks, added in this order, each with context "" (its agent gets the results it depends on):
- read-N (agent reader): read the storefront at its URL and summarize the store. depends_on: []
- idea-N (agent ideator): invent a plug-in for that store. depends_on: ["read-N"]
- email-N (agent copywriter): write the store's owner an email pitching the plug-in. depends_on: ["read-N", "idea-N"]
- send-N (agent mailer): send that email. depends_on: ["email-N"]
Add no other tasks. The work is done only when send-N is done for every storefront; then call finish with one
line per store: its name, the plug-in and the email subject."""


def build(models: dict[str, Model]) -> Supervisor[str]:
    steady = ModelSettings(temperature=0, max_tokens=800)  # the likeliest reply, and no runaway ones
    reader = Agent("reader", "You read storefronts. First call fetch_storefront with the URL. Its observation is the "
                   "page text: take the store's name, owner, owner email and products from it and call finish with "
                   "them. Never fetch the same page twice.", tools=[fetch_storefront], output=StoreSummary,
                   model=models["reader"], settings=steady, max_steps=4)
    ideator = Agent("ideator", "You invent Shopify plug-ins. From the store summary in the context, invent one "
                    "plug-in that would help that store sell more, and finish with it.",
                    output=PluginIdea, model=models["ideator"], settings=steady)
    copywriter = Agent("copywriter", "You write short, friendly marketing emails. From the store summary and the "
                       "plug-in idea in the context, write the owner an email and finish with it.",
                       output=Email, model=models["copywriter"], settings=steady)
    mailer = Agent("mailer", "You send emails. An email is sent only when you call send_email: call it with the to, "
                   "subject and body of the email in the context, exactly as written, then finish with its receipt.",
                   tools=[send_email], approve=approve, output=Receipt, validator=really_sent,
                   model=models["mailer"], settings=steady, max_steps=5)
    return Supervisor([reader, ideator, copywriter, mailer], mode="worklist", instructions=INSTRUCTIONS,
                      name="marketing", model=models["supervisor"], settings=steady, max_steps=40)


# -- the offline stand-in: one small function per agent plays its part of the protocol ---------------


def observations(info: RequestInfo) -> list[str]:
    return [m.content or "" for m in info.messages if m.role == "tool"]


def context(info: RequestInfo) -> dict[str, Any]:
    """The results of the tasks this one depends on, as the worklist passed them on."""
    task = next(m.content or "" for m in info.messages if m.role == "user")
    return json.loads(task.split("\n\nContext:\n", 1)[1])


def supervisor_stand_in(info: RequestInfo) -> Any:
    news = info.last.content or ""
    if not observations(info):  # the first turn: read every storefront
        return [call("add_task", id=f"read-{n}", description=f"Read the storefront at {url} and summarize it.",
                     agent="reader", priority=0, depends_on=[]) for n, url in enumerate(STOREFRONTS, 1)]
    if ready := re.findall(r"^Task read-(\d+) \(reader\) done", news, re.M):  # a store is known: go on
        return [add for n in ready for add in (
            call("add_task", id=f"idea-{n}", description="Invent a plug-in for this store.", agent="ideator",
                 priority=1, depends_on=[f"read-{n}"]),
            call("add_task", id=f"email-{n}", description="Write the owner an email pitching the plug-in.",
                 agent="copywriter", priority=2, depends_on=[f"read-{n}", f"idea-{n}"]),
            call("add_task", id=f"send-{n}", description="Send this email.", agent="mailer", priority=3,
                 depends_on=[f"email-{n}"]))]
    if "[pending]" in news or "[running]" in news:
        return "Waiting for the open tasks."
    emails = [json.loads(e) for m in info.messages
              for e in re.findall(r"^Task email-\d+ \(copywriter\) done: (.*)$", m.content or "", re.M)]
    return "\n".join(f"Emailed {e['to']}: {e['subject']}" for e in emails)


def reader_stand_in(info: RequestInfo) -> Any:
    if not (fetched := observations(info)):
        return call("fetch_storefront", url=re.findall(r"https://[\w.-]+", info.messages[1].content or "")[0])
    store, _, *products, footer = fetched[-1].splitlines()  # title, heading, products..., footer
    owner, email = re.findall(r"by (.*) \((.*)\)", footer)[0]
    return call("finish", store=store, owner=owner, owner_email=email, sells=", ".join(products))


IDEAS = {"Happy Feet Socks": ("Sock-cess Stories", "Customers share photos and stories of their favourite socks."),
         "Leaf & Kettle": ("Steep Streak", "A brewing timer that rewards a daily cup with badges."),
         "Wickworks Candles": ("Glow Notes", "Buyers add a personal note and a scent pairing to a gifted candle.")}


def ideator_stand_in(info: RequestInfo) -> Any:
    store = next(iter(context(info).values()))
    name, description = IDEAS.get(store["store"], ("Story Shelf", "Customers share stories about what they bought."))
    return call("finish", name=name, description=description,
                benefits=["Happy customers become the store's marketing", "Shoppers come back more often"])


def copywriter_stand_in(info: RequestInfo) -> Any:
    results = context(info)
    store = next(v for k, v in results.items() if k.startswith("read"))
    idea = next(v for k, v in results.items() if k.startswith("idea"))
    return call("finish", to=store["owner_email"], subject=f"{idea['name']} for {store['store']}",
                body=f"Hi {store['owner'].split()[0]},\n\n{idea['description']}\n\nCheers,\nThe Plug-in Team")


def mailer_stand_in(info: RequestInfo) -> Any:
    if not (receipts := observations(info)):
        return call("send_email", **next(iter(context(info).values())))
    return call("finish", receipt=receipts[-1])


STAND_INS = {"supervisor": supervisor_stand_in, "reader": reader_stand_in, "ideator": ideator_stand_in,
             "copywriter": copywriter_stand_in, "mailer": mailer_stand_in}


def short(text: object, width: int = 70) -> str:
    line = " ".join(str(text or "").split())
    return line if len(line) <= width else line[:width - 3] + "..."


async def run(supervisor: Supervisor[str], task: str) -> int:
    stream = supervisor.stream(task)
    async for event in stream:
        if isinstance(event, WorklistChanged):
            item = event.item
            extra = f" after {', '.join(item.depends_on)}" if event.change == "added" and item.depends_on else ""
            extra += f": {item.error}" if event.change in ("failed", "blocked") else ""
            print(f"  worklist {event.change:<9} {item.id:<8} ({item.agent}){extra}")
        elif isinstance(event, RunStarted):
            print(f"  run      started   {event.agent}: {short(event.task)}")
        elif isinstance(event, RunFinished):
            print(f"  run      ended     {event.agent} ({event.stop_reason}) {short(event.detail or event.output)}")
    result = stream.result
    print(f"\nanswer:\n{result.output}\n\nstop: {result.stop_reason}   emails sent: {len(SENT)}   model calls: "
          f"{result.usage.requests}   tokens: {result.usage.total_tokens}")
    return 0 if result.ok and len(SENT) == len(STOREFRONTS) else 1


def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--stores", type=int, default=len(STOREFRONTS), help="how many storefronts to market to")
    args = p.parse_args()
    models = models_for(args, STAND_INS)
    for url in list(STOREFRONTS)[args.stores:]:
        del STOREFRONTS[url]
    urls = "\n".join(f"{n}. {url}" for n, url in enumerate(STOREFRONTS, 1))
    task = f"Market our plug-ins to these storefronts:\n{urls}\nFollow the four-task recipe for each storefront, " \
           "starting with task read-1."
    return asyncio.run(run(build(models), task))


if __name__ == "__main__":
    sys.exit(main())
