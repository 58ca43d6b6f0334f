"""One event stream for every part: runs, steps, plans and worklists report what happens here.

Every event names the path of agents that produced it (`supervisor/researcher`), so a reader
of a supervisor's `stream()` sees sub-agent work while it happens and knows whose it is.
Modules define their own events as subclasses of `Event`; readers match them with isinstance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from .messages import Usage
from .record import Record


class Event(Record):
    """Something that happened in a run of the agent at path `agent`."""

    agent: str


Emit = Callable[[Event], None]


class RunStarted(Event):
    """An agent began a task (a top-level run, or a delegation from a parent)."""

    kind: Literal["run_start"] = "run_start"
    id: str = ""  # unique in the run tree (the step-name prefix), to tell apart runs of one agent
    task: str


class RunFinished(Event):
    """An agent's run ended; `output` is its result as the parent sees it (None if it did not finish)."""

    kind: Literal["run_end"] = "run_end"
    id: str = ""
    stop_reason: str
    detail: str = ""
    usage: Usage
    output: Any = None


class TextChunk(Event):
    """A piece of an agent's reply text as the model generates it (runs streamed with `deltas=True`)."""

    kind: Literal["text"] = "text"
    text: str
