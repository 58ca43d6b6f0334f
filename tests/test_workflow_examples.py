"""The workflow examples run offline (their stand-in models) and print what the workflow did."""

from __future__ import annotations

import re

from tests.llm_server import LLMServer, openai_reply
from tests.test_examples import STAND_IN, run_example


def mermaid_edges(out: str) -> set[tuple[str, str]]:
    """The edges of the printed Mermaid flowchart, by node label."""
    labels = dict(re.findall(r'^\s*(n\d+)[\[(]"([^"]+)"[\])]$', out, re.M))
    return {(labels[a], labels[b]) for a, b in re.findall(r"^\s*(n\d+) --> (n\d+)$", out, re.M)}


def test_lotr_chain_feeds_the_character_into_the_line() -> None:
    out = run_example("lotr_chain.py")
    assert STAND_IN in out
    assert 'character: Gandalf\nline: "You shall not pass!"' in out
    assert "calls: 2" in out


def test_lotr_chain_on_an_openai_compatible_server(llm_server: LLMServer) -> None:
    llm_server.add(openai_reply("Samwise Gamgee"), openai_reply('"I can\'t carry it for you, but I can carry you!"'))
    out = run_example("lotr_chain.py", "--base-url", llm_server.url + "/v1")
    assert STAND_IN not in out
    assert "character: Samwise Gamgee\nline: \"I can't carry it for you, but I can carry you!\"" in out
    first, second = (r.body["messages"] for r in llm_server.requests)
    assert first[-1]["content"].startswith("Pick a random character from The Lord of the Rings")
    assert second[-1]["content"].startswith("What is a famous line by Samwise Gamgee in The Lord of the Rings?")


def test_home_towns_levels_1_and_2() -> None:
    out = run_example("home_towns.py")
    assert STAND_IN in out
    level_1 = out.split("== Level 2")[0]
    assert "HomeTownInfo(person_name='Tony Blair', home_town='Edinburgh, Scotland'), " \
           "HomeTownInfo(person_name='Elon Musk', home_town='Pretoria, South Africa')" in level_1
    assert "The distance between Edinburgh, Scotland and Pretoria, South Africa is about 8,600 km." in level_1
    assert mermaid_edges(out) == {("home_town", "distance"), ("home_town~2", "distance")}
    assert "rounds: [['home_town', 'home_town~2'], ['distance']]" in out
    assert "distance: The distance between Edinburgh, Scotland and Pretoria, South Africa" in out


def test_home_towns_level_3_reruns_only_what_follows_the_edit() -> None:
    level_3 = run_example("home_towns.py").split("== Level 3")[1]
    assert re.search(r"^  home_town +reused +person_name='Tony Blair' home_town='Edinburgh, Scotland'$", level_3, re.M)
    assert re.search(r"^  home_town~2 +edited +person_name='Elon Musk' home_town='New York'$", level_3, re.M)
    assert re.search(r"^  distance +done +The distance between Edinburgh, Scotland and New York is about 5,200 km",
                     level_3, re.M)
    assert "model calls: first run 3, re-run 1" in level_3  # only distance asked the model again


def test_shopify_dag_draws_the_dag_of_figure_9_6() -> None:
    out = run_example("shopify_dag.py")
    assert STAND_IN in out
    assert mermaid_edges(out) == {("storefronts", "summary"), ("summary", "concept"), ("summary", "email"),
                                  ("concept", "email"), ("email", "send")}
    assert 'subgraph n6["each promote: for every item of storefronts"]' in out


def test_shopify_dag_emails_every_store_with_its_own_concept() -> None:
    out = run_example("shopify_dag.py")
    for to, subject, greeting in [
        ("dana@happy-feet.example", "Introducing Sock-cess Stories for Happy Feet Socks", "Hi Dana,"),
        ("ravi@leaf-and-kettle.example", "Introducing Steep Streak for Leaf & Kettle", "Hi Ravi,"),
        ("mia@wickworks.example", "Introducing Glow Notes for Wickworks Candles", "Hi Mia,"),
    ]:
        assert f"SENDING to {to}\nSubject: {subject}\n\n{greeting}\n\nWe love your warm community of customers!" in out
    assert out.count("SENDING to ") == 3
    for n in range(3):
        for name in ("summary", "concept", "email", "send"):
            assert re.search(rf"^  promote\[{n}\]/{name} +\w+ +done", out, re.M), f"promote[{n}]/{name} did not finish"
    assert "emails sent: 3 (dana@happy-feet.example, ravi@leaf-and-kettle.example, mia@wickworks.example)" in out
    assert "model calls: 9 (summary 3, concept 3, email 3)" in out
