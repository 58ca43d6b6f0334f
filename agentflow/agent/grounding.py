"""Whether a `finish` names things the agent never saw.

Small models fill a field they have no result for with a plausible invention: the 1.5B
supervisor of the quickstart, having heard only from its counter, finished with
`longest_file='example_file.py'` instead of asking its finder. A name (a string with no spaces
and a `.`, `_`, `/`, `-`, `@` or `:` in it: a file, an id, an address) that appears in neither the
task, the instructions nor any tool result cannot have come from them, so the first such
`finish` of a run goes back to the model once, saying which values and what to do.

Whole numbers of a typed output are held to the same rule: the same supervisor, having heard
only from its finder ("'shopify_worklist.py' with 253 lines"), finished with `files=1` instead of
asking its counter. A number computed in the model's head (a sum of two results) goes back once
too, and the second `finish` stands.

A word copied with two letters swapped is held to it as well: the 1.5B, told `wolftnega` by its
`reverse` tool, finished with `wolfntega`. A word of a `finish` that no message holds, but that a
tool result holds with the same letters in another order, differing in at most two places, is a
miscopy.

The other way round, a task's parts must be covered: a task agent asked for "the capital city of
France and Kenya" looked up France and finished with "Paris". When a task names several things
(capitalised words inside its sentences) and the `finish` and the tool calls cover some of them
but not all, the first such `finish` goes back once, naming what was left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from ..core.messages import Message
from .delegation import CONTEXT

_NAME = re.compile(r"^(?=.*[A-Za-z])(?=.*[._/\-@:])[^\s]{3,120}$")
_WORD = re.compile(r"\w{5,}")
_MARK = re.compile(r"-?\d+(?:\.\d+)?|[A-Za-z](?:[\w'-]*\w)?")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_ITEM = re.compile(r"^\s*\d+[.)]\s", re.MULTILINE)  # a list's numbering, not a number the request asks about
_QUOTED = re.compile(r"(?<!\w)'([^']{2,}?)'(?!\w)|\"([^\"]{2,}?)\"")
_CAPITAL = re.compile(r"\b[A-Z][a-z]{2,}\b")
_LEAD = re.compile(r"^\W*(\[[^\]]*\]\W*)?")  # what comes before a sentence's first word: "[lead] What is..."
_STARTERS = {"What", "Who", "Where", "When", "Which", "How", "Why", "Please", "The", "This", "That", "And", "But",
             "Then", "Now", "Also", "Does", "Are", "Can"}


def _leaves(value: Any, field: str) -> Iterator[tuple[str, Any]]:
    """Every value of an output that is not a mapping or a list, with the field it is under."""
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, dict):
        for k, v in value.items():  # pyright: ignore[reportUnknownVariableType]
            yield from _leaves(v, str(k))  # pyright: ignore[reportUnknownArgumentType]
    elif isinstance(value, list | tuple):
        for v in value:  # pyright: ignore[reportUnknownVariableType]
            yield from _leaves(v, field)
    else:
        yield field, value


def refusal(task: str, output: Any, messages: list[Message]) -> str | None:
    """What the model must mend before its `finish` stands (each check below), or None."""
    found: list[tuple[str, str]] = []  # (the problem, how to mend it)
    if unseen := ungrounded(output, messages):
        found.append((f"{', '.join(unseen)} appears in no tool result and not in the task",
                      "find out what is missing with a tool first (or correct it)"))
    found += [(f"{w!r} is not what the tool result says ({r!r})", f"write {r!r} exactly as the tool result has it")
              for w, r in miscopied(output, messages)]
    if left := uncovered(task, output, messages):
        found.append((f"your task also names {', '.join(left)}, which neither your answer nor your tool calls cover",
                      f"do for {', '.join(left)} what the task asks, with a tool, and answer every part of the task "
                      f"in one answer (yours so far: {_said(output)!r})"))
    if skipped := ignored(task, output, messages):
        found.append((f"your task is about {', '.join(map(repr, skipped))}, which neither your answer nor your tool "
                      "calls hold", "do the task on that, or say that your tools cannot do it"))
    if guessed := unsupported(output, messages):
        found.append((f"{', '.join(map(repr, guessed))} comes from no tool result and your answer shows none of your "
                      "tool results", "answer from your tool results, and say which part of the task your tools "
                                      "cannot answer"))
    if not found:
        return None
    return (f"Not done: {'; '.join(p for p, _ in found)}. Please {', and '.join(m for _, m in found)}, then call "
            "`finish` again.")


def ungrounded(output: Any, messages: list[Message]) -> list[str]:
    """`field=value` for each name in `output`, and each whole number of a typed output, found in no
    system, user or tool message."""
    seen = _seen(messages)
    leaves = list(_leaves(output, "answer"))
    names = [f"{field}={text!r}" for field, text in leaves if isinstance(text, str)
             and _NAME.match(text.strip("'\"`")) and text.strip("'\"`") not in seen]
    numbers = [(field, n) for field, n in leaves if isinstance(output, BaseModel)
               and isinstance(n, int) and not isinstance(n, bool)]
    return names + [f"{field}={n}" for field, n in numbers if not re.search(rf"(?<![\d.]){n}(?!\d)", seen)]


def miscopied(output: Any, messages: list[Message]) -> list[tuple[str, str]]:
    """(word, as the result has it) for each word of `output` that no message holds and that is a tool
    result's word with letters swapped: the same letters, in at most two other places."""
    seen, results = _seen(messages), {w for m in messages if m.role == "tool" for w in _WORD.findall(m.content or "")}
    words = {w for _, t in _leaves(output, "answer") if isinstance(t, str) for w in _WORD.findall(t)}
    found: list[tuple[str, str]] = []
    for word in sorted(w for w in words - results if w not in seen):
        near = next((r for r in sorted(results) if len(r) == len(word) and sorted(r) == sorted(word)
                     and sum(a != b for a, b in zip(r, word, strict=True)) <= 2), None)
        if near is not None:
            found.append((word, near))
    return found


def uncovered(task: str, output: Any, messages: list[Message]) -> list[str]:
    """The task's named things that neither `output` nor a tool call covers, when others are covered."""
    asked = task.split(CONTEXT)[0]  # what was asked, not the context a supervisor added
    things = _named(asked)
    if len(things) < 2:
        return []
    said = " ".join([*(str(v) for _, v in _leaves(output, "answer")),
                     *(c.arguments for m in messages for c in m.tool_calls if c.name != "finish")]).lower()
    missing = [t for t in things if t.lower() not in said]
    return [] if len(missing) == len(things) else missing


def ignored(task: str, output: Any, messages: list[Message]) -> list[str]:
    """The quoted text of a task (what it is to work on) when neither `output` nor a tool call holds any of it,
    though the agent called tools: it worked on something else. Given "Count the words in 'one two three four'"
    with a capital's lookup as context, the 1.5B lookup agent called capital("Japan") and finished with "Tokyo"."""
    quoted = [a or b for a, b in _QUOTED.findall(task.split(CONTEXT)[0])]
    calls = [c.arguments for m in messages for c in m.tool_calls if c.name != "finish"]
    said = words(" ".join([_said(output), *calls]))
    return quoted if calls and quoted and not any(words(q) <= said for q in quoted) else []


def unsupported(output: Any, messages: list[Message]) -> list[str]:
    """The names of a `finish` that no message holds (and its numbers, if the tools gave numbers), when it
    shows nothing of any tool result: an answer from the model's own head. Given "Calculate 25*4 and find
    the capital of Italy", the 1.5B math agent got 100 from its calculator and finished with "Rome", and the
    100 was lost to its supervisor; given "Reverse the string 'worklist' and compute 99 + 1", the text agent
    got "tsilkrow" and 1 (a word count) and finished with "100"."""
    results = set[str]().union(*(marks(m.content or "") for m in messages if m.role == "tool" and m.name != "finish"))
    said = _said(output)
    if not results or results & words(said):
        return []
    lowered = _seen(messages).lower()
    seen = words(lowered)
    counted = any(_NUMBER.fullmatch(r) for r in results)  # a number is held to it only where the tools gave numbers
    numbers = [n for n in _MARK.findall(said) if counted and _NUMBER.fullmatch(n) and n not in seen]
    return list(dict.fromkeys([*(w for w in _named(said, alone=True) if w.lower() not in lowered), *numbers]))


def specifics(text: str) -> list[str]:
    """What a request names that a task for it must carry: names inside its sentences, numbers, quoted text."""
    text = _ITEM.sub("", text)
    quoted = [a or b for a, b in _QUOTED.findall(text)]
    numbers = [n for n in _MARK.findall(text) if _NUMBER.fullmatch(n)]
    return list(dict.fromkeys([*_named(text), *numbers, *quoted]))


def words(text: str) -> set[str]:
    """The numbers and words of a text, lower-cased: whole tokens, so that "19C" is not found in "-3C"."""
    return {t.lower() for t in _MARK.findall(text)}


def shows(answer: str, marks: set[str]) -> bool:
    """Whether `answer` holds one of `marks` (lower-cased): as a whole word, or inside a word when it is three
    characters or more (the 1.5B glued two results into "tsilkrow100")."""
    said, text = words(answer), answer.lower()
    return any(m in said or (len(m) >= 3 and m in text) for m in marks)


def marks(text: str) -> set[str]:
    """The words of a text that show it was read: numbers, names and longer words (lower-cased)."""
    return {t.lower() for t in _MARK.findall(text)
            if any(c.isdigit() for c in t) or (t[0].isupper() and len(t) > 1) or len(t) >= 5}


def _named(text: str, alone: bool = False) -> list[str]:
    """The capitalised words inside a text's sentences (a sentence's first word is a name only when it stands
    alone and `alone` is set: an answer "Rome")."""
    named: list[str] = []
    for sentence in (_LEAD.sub("", s) for s in re.split(r"[.?!:;]\s+|\n", text)):
        found = _CAPITAL.findall(sentence)
        named += found if alone and len(sentence.split()) == 1 else found[1 if _CAPITAL.match(sentence) else 0:]
    return list(dict.fromkeys(w for w in named if w not in _STARTERS))


def _said(output: Any) -> str:
    return " ".join(str(v) for _, v in _leaves(output, "answer"))


def _seen(messages: list[Message]) -> str:
    return "\n".join(m.content or "" for m in messages if m.role != "assistant")
