"""Showing a run as it happens, in a terminal: the top agent's text streamed, sub-agents nested,
tool calls folded to one line, plans as tables, a live worklist table.

`Display.event` takes every event of a run's stream; `pause()` holds the output while the
session asks the person something (events that arrive meanwhile are shown afterwards).
"""

from __future__ import annotations

import json
from collections.abc import Generator
from contextlib import contextmanager
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..core.events import Event, RunFinished, RunStarted, TextChunk
from ..core.messages import Usage
from ..core.result import ModelStep, ToolStep
from ..teams.conversation import SpeakerChosen, Turn
from ..teams.planning import Plan, PlanMade, PlanStepChanged
from ..teams.worklist import WorkItem, WorklistChanged
from ..workflow.result import TaskFinished, TaskStarted

STATUS_STYLE = {"pending": "dim", "running": "yellow", "done": "green", "failed": "red", "cancelled": "dim red",
                "started": "yellow"}


def short(value: Any, n: int = 100) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def tokens(usage: Usage) -> str:
    total = usage.input_tokens + usage.output_tokens
    text = f"{total / 1000:.1f}k tok" if total >= 1000 else f"{total} tok"
    return text + (f" · ${usage.cost:.4f}" if usage.cost else "")


def started_line(event: RunStarted, pad: str) -> str:
    return f"{pad}[bold cyan]▸ {escape(event.agent.rsplit('/', 1)[-1])}[/] [dim]←[/] {escape(short(event.task))}"


def stopped_line(event: RunFinished, pad: str) -> str:
    """A run that ended without its result: who, why, and the detail."""
    who = escape(event.agent.rsplit("/", 1)[-1])
    return f"{pad}[red]✗ {who} {event.stop_reason}[/] [dim]{escape(short(event.detail))}[/]"


def tool_line(event: ToolStep, pad: str) -> str:
    """One tool call folded to a line: the call, and what came back."""
    mark = "[red]✗[/]" if event.error else "[dim]·[/]"
    call = f"{event.call.name}({short(event.call.arguments, 60)})"
    return f"{pad}{mark} {escape(call)} [dim]→ {escape(short(event.observation, 80))}[/]"


class Display:
    """Renders one session's runs. `top` is the path of the agent the person talks to."""

    def __init__(self, console: Console, top: str, *, agents: set[str] | None = None) -> None:
        self.console, self.top, self.agents = console, top, agents or set()
        self.streaming = False
        self.streamed = False  # this turn's reply text has been shown as it came
        self.buffer = ""  # reply text streaming under the live task table
        self.live: Live | None = None
        self.tasks: dict[str, WorkItem] = {}
        self.plan: Plan | None = None
        self.plan_status: dict[str, str] = {}
        self.reviewed = False  # the person has just seen (and maybe edited) the plan PlanMade will announce
        self.per_agent: dict[str, Usage] = {}
        self.held: list[Event] | None = None

    def start_turn(self) -> None:
        self.streamed = False
        self.tasks = {}

    def event(self, event: Event) -> None:
        if self.held is not None:
            self.held.append(event)
            return
        if isinstance(event, ModelStep):
            self.per_agent[event.agent] = self.per_agent.get(event.agent, Usage()) + event.response.usage
        if isinstance(event, TextChunk):
            if event.agent == self.top:
                self.text(event.text)
            return
        if self.live is None or (isinstance(event, ModelStep) and event.agent == self.top):
            self.end_text()  # under a live table, text goes on streaming until its reply is complete
        if isinstance(event, WorklistChanged):
            self.tasks[event.item.id] = event.item
            self.show_tasks()
            return
        self.print(self.describe(event))

    def describe(self, event: Event) -> str | Table | None:
        pad = "  " * max(event.agent.count("/") - self.top.count("/"), 0)
        who = escape(event.agent.rsplit("/", 1)[-1])
        if isinstance(event, RunStarted) and event.agent != self.top:
            return started_line(event, pad)
        if isinstance(event, RunFinished) and event.agent != self.top:
            if event.stop_reason == "finish":
                return f"{pad}[green]✓ {who}[/] [dim]{tokens(event.usage)}[/] → {escape(short(event.output))}"
            return stopped_line(event, pad)
        if isinstance(event, ToolStep) and not (event.agent == self.top and event.call.name in self.agents):
            if event.call.name in ("finish", "add_task", "reprioritize", "cancel_task"):
                return None
            return tool_line(event, pad + "  ")
        if isinstance(event, TaskStarted):
            return f"[cyan]▸ {escape(event.id)}[/] [dim]{escape(short(event.inputs, 80)) if event.inputs else ''}[/]"
        if isinstance(event, TaskFinished):
            style = "green" if event.status in ("done", "reused", "edited") else "red"
            return f"[{style}]✓ {escape(event.id)} {event.status}[/] [dim]→ {escape(short(event.output))}[/]"
        if isinstance(event, PlanMade):
            self.plan, self.plan_status = event.plan, {}
            if self.reviewed:
                self.reviewed = False
                return f"[dim]plan of {len(event.plan.steps)} step(s) accepted[/]"
            title = "plan" if not event.revision else f"plan, revision {event.revision}: {event.reason}"
            return self.plan_table(title)
        if isinstance(event, PlanStepChanged):
            self.plan_status[event.step] = event.status
            style = STATUS_STYLE.get(event.status, "")
            what = f"→ {short(event.output)}" if event.output is not None else escape(short(event.error or ""))
            return f"[{style}]◦ {event.step} {escape(event.by)} {event.status}[/] [dim]{escape(what)}[/]"
        return None

    def plan_table(self, title: str = "plan") -> Table:
        table = Table(title=title, title_justify="left", show_lines=False)
        for column in ("step", "agent", "task", "needs", "status"):
            table.add_column(column)
        for s in (self.plan.steps if self.plan else ()):
            status = self.plan_status.get(s.id, "pending")
            table.add_row(s.id, s.agent, s.task, ", ".join(s.needs), f"[{STATUS_STYLE.get(status, '')}]{status}[/]")
        return table

    def task_table(self) -> Table:
        table = Table(title="tasks", title_justify="left")
        for column in ("id", "status", "priority", "agent", "task"):
            table.add_column(column)
        items = sorted(self.tasks.values(), key=lambda i: (i.status in ("done", "failed", "cancelled"), -i.priority))
        for i in items:
            status = f"[{STATUS_STYLE.get(i.status, '')}]{i.status}[/]"
            table.add_row(i.id, status, str(i.priority), i.agent, escape(short(i.description, 60)))
        return table

    def live_view(self) -> Table | Group:
        """The live region: the task table, and below it the reply text streaming now."""
        if not self.buffer:
            return self.task_table()
        return Group(self.task_table(), Text.assemble((f"{self.top}: ", "bold magenta"), self.buffer))

    def show_tasks(self) -> None:
        if self.live is None:
            self.live = Live(self.live_view(), console=self.console, auto_refresh=False, transient=False)
            self.live.start()
        self.live.update(self.live_view(), refresh=True)

    def stop_live(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def text(self, text: str) -> None:
        self.streamed = True
        if self.live is not None:  # under the task table, until the text is complete
            self.buffer += text
            self.streaming = True
            self.live.update(self.live_view(), refresh=True)
            return
        if not self.streaming:
            self.console.print(f"[bold magenta]{escape(self.top)}[/]: ", end="")
            self.streaming = True
        self.console.print(text, end="", markup=False, highlight=False, soft_wrap=True)
        self.console.file.flush()

    def end_text(self) -> None:
        if not self.streaming:
            return
        self.streaming = False
        if self.live is not None:  # the finished text goes above the table, for good
            text, self.buffer = self.buffer, ""
            self.live.console.print(Text.assemble((f"{self.top}: ", "bold magenta"), text))
            self.live.update(self.live_view(), refresh=True)
        else:
            self.console.print()

    def print(self, what: str | Table | None) -> None:
        if what is None:
            return
        if self.live is not None:
            self.live.console.print(what)
        else:
            self.console.print(what)

    def finish_turn(self, reply: str | None) -> None:
        """The turn is over: its reply (if it was not streamed), and the final state of any live table."""
        self.end_text()
        self.stop_live()
        if reply is not None and not self.streamed:
            self.console.print(f"[bold magenta]{escape(self.top)}[/]: {escape(reply)}")

    @contextmanager
    def pause(self) -> Generator[None]:
        """Hold events while the person is asked something; show them after."""
        self.end_text()
        self.stop_live()
        self.held = []
        try:
            yield
        finally:
            held, self.held = self.held, None
            for event in held:
                self.event(event)


COLORS = ("magenta", "cyan", "green", "yellow", "blue", "red")


class ConversationDisplay:
    """Prints a conversation (or group chat) as it happens: each message under its speaker's name,
    streamed when the run has deltas, the tool calls a speaker made folded to one line each, and
    the manager's choices when a model made them."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.top: str | None = None
        self.streaming: str | None = None  # the speaker whose text is being streamed now
        self.streamed: str | None = None  # the speaker whose message of this turn has been shown as it came
        self.colors: dict[str, str] = {}

    def name(self, speaker: str) -> str:
        color = self.colors.setdefault(speaker, COLORS[len(self.colors) % len(COLORS)])
        return f"[bold {color}]{escape(speaker)}[/]"

    def event(self, event: Event) -> None:
        if self.top is None:
            if isinstance(event, RunStarted):
                self.top = event.agent
            return
        depth = event.agent.count("/") - self.top.count("/")
        who = event.agent.rsplit("/", 1)[-1]
        if isinstance(event, TextChunk):
            if depth == 1:
                if self.streaming != who:
                    self.end_text()
                    self.console.print(f"{self.name(who)}: ", end="")
                    self.streaming = self.streamed = who
                self.console.print(event.text, end="", markup=False, highlight=False, soft_wrap=True)
                self.console.file.flush()
            return
        if isinstance(event, Turn):
            self.end_text()
            streamed, self.streamed = self.streamed, None
            if streamed == event.speaker and not event.final:
                return
            if event.final:
                self.console.print(f"[green]✓[/] {self.name(event.speaker)} [green]called finish[/]: "
                                   f"{escape(event.text)}")
            else:
                self.console.print(f"{self.name(event.speaker)}: {escape(event.text)}")
            return
        self.end_text()
        if isinstance(event, SpeakerChosen) and event.by in ("manager", "fallback", "wrap_up"):
            note = f" [dim]({escape(event.note)})[/]" if event.note else ""
            self.console.print(f"[dim]→ {escape(event.speaker)} speaks ({event.by})[/]{note}")
        elif isinstance(event, ToolStep) and depth >= 1 and who != "manager" \
                and (event.call.name not in ("finish", "say") or event.error):
            self.console.print(tool_line(event, "  " * depth))
        elif isinstance(event, RunStarted) and depth >= 2:
            self.console.print(started_line(event, "  " * depth))
        elif isinstance(event, RunFinished) and depth >= 1 and event.stop_reason != "finish" and who != "manager":
            self.console.print(stopped_line(event, "  " * depth))
        elif isinstance(event, RunFinished) and depth == 0:
            style = "green" if event.stop_reason == "finish" else "red"
            self.console.print(f"[{style}]── ended: {event.stop_reason}[/] [dim]· {escape(short(event.detail))}[/]")

    def end_text(self) -> None:
        if self.streaming is not None:
            self.console.print()
            self.streaming = None
