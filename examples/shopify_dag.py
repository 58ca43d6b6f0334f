"""The Shopify plug-in marketing workflow of the book's "LLM Workflows" chapter, as a DAG (Figures 9-6, 9-8).

storefronts -> for each store: summarize it -> invent a plug-in concept -> write the owner an email
-> send it. The email task takes both the summary and the concept, by name: the DAG edge that a
plain pipeline (Figure 9-5) lacks. The per-store chain is a workflow of its own, mapped over the
storefronts with `each`, all stores at once. The storefronts are canned HTML and "sending" only
prints: no network.

    python examples/shopify_dag.py                                                     # offline stand-in
    python examples/shopify_dag.py --base-url http://127.0.0.1:8080/v1 --constrained   # llama-server
"""

from __future__ import annotations

import re
import sys
from typing import Any

from _setup import model_or_stand_in, parser
from pydantic import BaseModel, Field

from agentflow.models import RequestInfo, call
from agentflow.workflow import Workflow, each, step, task

PAGES = {  # store: (owner, email, home page)
    "Happy Feet Socks": ("Dana Pierce", "dana@happy-feet.example", """<html><body>
<h1>Happy Feet Socks</h1><p>Life is too short for boring socks!</p>
<ul><li>Taco Tuesday socks</li><li>Cat astronaut socks</li><li>Rainbow crew socks</li></ul>
<p>Every pair is knitted from organic cotton, and for every pair sold we give a pair to a homeless shelter.</p>
<p>Share your sock selfie with #HappyFeet!</p></body></html>"""),
    "Leaf & Kettle": ("Ravi Menon", "ravi@leaf-and-kettle.example", """<html><body>
<h1>Leaf &amp; Kettle</h1><p>Slow down. Brew something good.</p>
<ul><li>Smoky Lapsang</li><li>Jasmine pearls</li><li>Monthly tea box</li></ul>
<p>We buy directly from small family tea gardens and pay them fairly.</p>
<p>Our blog: brewing guides and the tea ceremonies of the world.</p></body></html>"""),
    "Wickworks Candles": ("Mia Hart", "mia@wickworks.example", """<html><body>
<h1>Wickworks Candles</h1><p>Hand-poured in small batches in Vermont.</p>
<ul><li>Campfire candle</li><li>Sea salt candle</li><li>Candle of the month club</li></ul>
<p>Soy wax, cotton wicks, refill jars: bring your jar back for 20% off.</p>
<p>Scents inspired by hiking trails and weekends at the coast.</p></body></html>"""),
}


class Storefront(BaseModel):
    name: str
    owner: str
    email: str
    html: str


class Summary(BaseModel):
    sells: str = Field(description="What the store sells")
    tone: str = Field(description="The overall tone of the website: fun, serious, relaxing...")
    values: str = Field(description="The values the store holds most dear: sustainability, social causes...")
    themes: str = Field(description="Themes present on the website: travel, productivity, exercise...")
    praiseworthy: str = Field(description="Something on the website worth praising")


class PluginConcept(BaseModel):
    name: str = Field(description="The name of the plug-in")
    concept: str = Field(description="The basic idea")
    rationale: str = Field(description="The reason this is a good idea for this store")


class Email(BaseModel):
    subject_line: str = Field(description="A short subject line that names the plug-in")
    body: str = Field(description="At most 120 words: greet the owner, praise the store, pitch the plug-in")


@step
def storefronts() -> list[Storefront]:
    """Emit the storefronts' home pages (a crawler would fetch them)."""
    return [Storefront(name=name, owner=owner, email=email, html=html) for name, (owner, email, html) in PAGES.items()]


@task(output=Summary)  # the body returns the request; the model must return a Summary
async def summary(storefront: Storefront) -> str:
    """You research Shopify stores. Read the text of a store's website and summarize it."""
    text = " ".join(t.strip() for t in re.split(r"<[^>]+>", storefront.html) if t.strip())  # small models misread HTML
    return f"The website of {storefront.name}:\n\n{text.replace('&amp;', '&')}"


@task("We build Shopify plug-ins. Invent one plug-in that would help {storefront.name} sell more, "
      "fitting the store's summary below.")
async def concept(storefront: Storefront, summary: Summary) -> PluginConcept: ...


@task("We are JivePlug-ins, a company that builds Shopify plug-ins. Write a short, upbeat email from us to "
      "{storefront.owner}, the owner of {storefront.name}, offering to build them the plug-in concept below. "
      "Compliment their store on something praiseworthy from its summary, and match its tone. Sign it: JivePlug-ins.")
async def email(storefront: Storefront, summary: Summary, concept: PluginConcept) -> Email: ...


@step
def send(storefront: Storefront, email: Email) -> str:
    """A mock mailer: prints the email."""
    print(f"\nSENDING to {storefront.email}\nSubject: {email.subject_line}\n\n{email.body.strip()}\n")
    return storefront.email


promote = Workflow(summary >> concept >> email >> send, name="promote")
shopify = storefronts >> each(promote, over="storefronts")


# -- the offline stand-in: one function plays every prompt task ---------------------------------

CONCEPTS = {"Happy Feet Socks": "Sock-cess Stories", "Leaf & Kettle": "Steep Streak", "Wickworks Candles": "Glow Notes"}


def stand_in(info: RequestInfo) -> Any:
    asked = info.tools[0].parameters["properties"]  # each task's `finish` takes its output's fields
    request = info.last.content or ""
    store = next(s for s in PAGES if s in request)
    if "sells" in asked:
        items = ", ".join(re.findall(r"<li>(.*?)</li>", PAGES[store][2]))
        return call("finish", sells=items, tone="fun", values="organic materials, giving back",
                    themes="everyday joy", praiseworthy="your warm community of customers")
    if "rationale" in asked:
        return call("finish", name=CONCEPTS[store], concept="A wall of customers' stories and photos with the "
                    "store's products.", rationale="It drives engagement and shows off a warm brand.")
    owner = PAGES[store][0].split()[0]
    praise = re.findall(r'"praiseworthy":"(.*?)"', request)[0]  # the summary and the concept, shown as JSON
    name = re.findall(r'"name":"(.*?)"', request)[0]
    return call("finish", subject_line=f"Introducing {name} for {store}",
                body=f"Hi {owner},\n\nWe love {praise}! {name} would let them share their stories.\n\n"
                     "Cheers,\nJivePlug-ins")


def main() -> int:
    args = parser(__doc__ or "").parse_args()
    model = model_or_stand_in(args, stand_in)
    flow = Workflow(shopify, name="shopify", model=model)
    print(flow.to_mermaid())
    result = flow.run_sync()
    for record in result.records:
        print(f"  {record.id:<20} {record.unit:<8} {record.status:<5} {record.seconds:5.1f}s")
    calls = ", ".join(f"{name} {result.usage_by_task[name].requests}" for name in ("summary", "concept", "email"))
    print(f"\nemails sent: {len(result.output)} ({', '.join(result.output)})\nmodel calls: {result.usage.requests} "
          f"({calls})   tokens: {result.usage.total_tokens}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
