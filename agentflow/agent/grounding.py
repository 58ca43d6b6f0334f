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
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from ..core.messages import Message

_NAME = re.compile(r"^(?=.*[A-Za-z])(?=.*[._/\-@:])[^\s]{3,120}$")


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


def ungrounded(output: Any, messages: list[Message]) -> list[str]:
    """`field=value` for each name in `output`, and each whole number of a typed output, found in no
    system, user or tool message."""
    seen = "\n".join(m.content or "" for m in messages if m.role != "assistant")
    leaves = list(_leaves(output, "answer"))
    names = [f"{field}={text!r}" for field, text in leaves if isinstance(text, str)
             and _NAME.match(text.strip("'\"`")) and text.strip("'\"`") not in seen]
    numbers = [(field, n) for field, n in leaves if isinstance(output, BaseModel)
               and isinstance(n, int) and not isinstance(n, bool)]
    return names + [f"{field}={n}" for field, n in numbers if not re.search(rf"(?<![\d.]){n}(?!\d)", seen)]


def refusal(names: list[str]) -> str:
    return (f"Not done: {', '.join(names)} appears in no tool result and not in the task, so it cannot be right. "
            "Find it out with a tool first (or correct it), then call `finish` again.")
