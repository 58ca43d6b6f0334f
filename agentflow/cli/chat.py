"""`agentflow chat`: a conversation with a supervisor whose task agents are personas.

The person types; the supervisor's reply streams in while sub-agents' work shows nested below
it (display.py). When a run needs a person — a tool call to approve, a question, a plan to
review — the session's step runner asks in the terminal. Ctrl-C cancels the turn in progress
(what it did is kept), Ctrl-D leaves, and no error ends the session.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import HTML
from prompt_toolkit.history import FileHistory, InMemoryHistory
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..core.errors import AgentflowError, ConfigError
from ..core.messages import Message, Usage
from ..models import Model
from ..runtime.requests import HumanReply, HumanRequest
from ..runtime.runner import StepRunner, using
from ..runtime.scope import listening
from ..teams.planning import Plan
from ..teams.supervisor import Session
from .display import Display, short
from .loading import load_model
from .team import MODES, NAME, ChatConfig, team

if TYPE_CHECKING:
    from ..durable import DurableRun, DurableSession

TARGET = "agentflow.chat"  # the durable target name of every chat session's supervisor
CHATS = Path(".agentflow") / "chats"
COMMANDS = {
    "/help": "this list",
    "/agents": "the task agents and their tools",
    "/tasks": "the worklist of the last turn",
    "/plan": "the plan of the last turn",
    "/approve": "approve the tool call waiting for you (also: y)",
    "/reject": "refuse it, with an optional reason for the model (also: n REASON)",
    "/cost": "tokens and money so far, per agent",
    "/history": "the conversation so far",
    "/save": "save the session to a file: /save [PATH]",
    "/load": "load a saved session: /load PATH",
    "/reset": "start a new conversation",
    "/mode": "switch mode: /mode route|plan|worklist",
    "/quit": "leave (also Ctrl-D)",
}


def new_session_id() -> str:
    return f"chat-{uuid.uuid4().hex[:10]}"


def config_file(session_id: str) -> Path:
    """Where a durable session's setup is kept, so `--resume` rebuilds the same supervisor."""
    return CHATS / f"{session_id.replace('/', '_')}.json"


def saved_config(session_id: str) -> ChatConfig:
    path = config_file(session_id)
    if not path.exists():
        raise ConfigError(f"there is no chat session {session_id!r} here ({path} is missing). Fix: run from the "
                          "directory where it was started; `agentflow runs list` shows the runs (turn n of session "
                          "S is run S/n)")
    return ChatConfig.model_validate_json(path.read_text(encoding="utf-8"))


class _Completer(Completer):
    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        text = document.text_before_cursor
        if text.startswith("/mode "):
            word = text[6:]
            yield from (Completion(m, -len(word)) for m in MODES if m.startswith(word))
        elif text.startswith("/") and " " not in text:
            yield from (Completion(c, -len(text), display_meta=about) for c, about in COMMANDS.items()
                        if c.startswith(text))


class _AskInTerminal(StepRunner):
    """Runs steps in memory and asks the person in the terminal when a run waits for one."""

    def __init__(self, chat: Chat) -> None:
        self.chat = chat

    async def wait(self, name: str, request: HumanRequest) -> HumanReply:
        return await self.chat.ask(request)


class Chat:
    """One interactive session. `model` overrides `config.model` (tests pass a scripted one).
    With `store` (a database URL) every turn is a durable run of session `resume` (or a new one)."""

    def __init__(self, config: ChatConfig, *, model: Model | None = None, console: Console | None = None,
                 history_file: Path | None = None, store: str | None = None, resume: str | None = None) -> None:
        self.config = config
        self.store, self.session_id = store, resume
        self.durable: DurableSession | None = None
        self.model = model or load_model(config.model)
        self.console = console or Console(highlight=False)
        self.input: PromptSession[str] = PromptSession(
            history=FileHistory(str(history_file)) if history_file else InMemoryHistory(),
            completer=_Completer(), complete_while_typing=True)
        self.questions: PromptSession[str] = PromptSession()  # answers and plan edits stay out of the history
        self.asking = asyncio.Lock()  # one question to the person at a time
        self.turn_task: asyncio.Task[Any] | None = None
        self.runner = _AskInTerminal(self)
        self.session: Session[str] = self.build([])

    def build(self, messages: list[Message]) -> Session[str]:
        """The supervisor and display for the current config; the conversation `messages` carried over."""
        self.supervisor = team(self.config, self.model, on_plan="human" if self.config.mode == "plan" else None)
        if self.store is not None:
            from ..durable import register

            register(self.supervisor, TARGET, replace=True)  # turns resume with the session's current setup
        spent = self.display.per_agent if hasattr(self, "display") else {}
        self.display = Display(self.console, NAME, agents=set(self.supervisor.agents))
        self.display.per_agent = spent  # /cost counts the whole session, across /mode and /reset
        session = self.supervisor.session()
        session.messages = messages
        return session

    # -- the loop ---------------------------------------------------------------------------------

    async def loop(self) -> int:
        c = self.config
        self.console.print(f"[bold]agentflow chat[/] · mode {c.mode} · model {escape(self.model.name)} · agents: "
                           f"{escape(', '.join(self.supervisor.agents))}\n[dim]/help for commands, Ctrl-C cancels a "
                           "turn, Ctrl-D leaves[/]")
        try:
            if self.store is not None:
                await self.open_durable()
            return await self.read_loop()
        finally:
            if self.durable is not None:
                self.console.print(f"[dim]this session is kept: agentflow chat --resume {self.durable.id}[/]")
                from ..durable import current

                current().shutdown()

    async def read_loop(self) -> int:
        while True:
            try:
                line = await self.input.prompt_async(HTML("<b>you</b>&gt; "), handle_sigint=False)
            except KeyboardInterrupt:
                continue
            except EOFError:
                self.console.print("bye")
                return 0
            line = line.strip()
            if not line:
                continue
            if line.startswith("/"):
                try:
                    if not await self.command(line):
                        return 0
                except Exception as e:  # a bad command is one line, never the end of the session
                    self.error(e)
                continue
            await self.turn(line)

    async def turn(self, text: str | None) -> None:
        """One user turn (None: finish the durable turn a crash interrupted); Ctrl-C (SIGINT) cancels
        it and the session goes on."""
        self.display.start_turn()
        task = self.turn_task = asyncio.ensure_future(self._turn(text))
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, task.cancel)
        try:
            result = await task
        except asyncio.CancelledError:
            if not task.cancelled():
                raise
            self.display.finish_turn(None)
            self.console.print("[yellow]cancelled[/] [dim](the session goes on; the turn's work so far is kept)[/]")
        except Exception as e:
            self.display.finish_turn(None)
            self.error(e)
        else:
            self.display.finish_turn(None if result.output is None else str(result.output))
            if result.stop_reason != "finish":
                self.console.print(f"[yellow]stopped: {result.stop_reason}[/] [dim]{escape(result.detail)}[/]")
        finally:
            loop.remove_signal_handler(signal.SIGINT)
            self.turn_task = None

    async def _turn(self, text: str | None) -> Any:
        if self.durable is not None:
            return await self.durable_turn(text)
        assert text is not None
        with using(self.runner):
            stream = self.session.stream(text, deltas=True)
            async for event in stream:
                self.display.event(event)
            return stream.result

    # -- durable sessions -------------------------------------------------------------------------

    async def open_durable(self) -> None:
        """Launch the durable runtime, open (or continue) the session, and finish a turn left unfinished."""
        from .. import durable

        assert self.store is not None
        rt = durable.launch(self.store, log_level="CRITICAL")  # failures are shown here, in one line each
        self.durable = await rt.session(TARGET, self.session_id or new_session_id())
        self.session_id = self.durable.id
        self.session.messages = list(self.durable.messages)
        self.save_setup()
        turns = sum(1 for m in self.session.messages if m.role == "user")
        self.console.print(f"[dim]session {self.durable.id} (durable{f', {turns} turn(s) so far' if turns else ''})[/]")
        last = self.durable.last_turn()
        if last is not None and (await last.info()).status not in ("done", "failed", "cancelled"):
            self.console.print(f"[yellow]turn {self.durable.turns} did not finish; resuming it[/]")
            await self.turn(None)

    def save_setup(self) -> None:
        if self.durable is not None:
            path = config_file(self.durable.id)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.config.model_dump_json(indent=1), encoding="utf-8")

    async def durable_turn(self, text: str | None) -> Any:
        """Run the turn as durable run `S/n`; its events still reach the display, and its questions
        are asked here (or answered from anywhere else: `agentflow runs approve`)."""
        from ..durable import DurableRunError

        ds = self.durable
        assert ds is not None
        if text is None:
            run = ds.last_turn()
            assert run is not None
        else:
            ds.messages = self.session.messages
            with listening(self.display.event, deltas=True):
                run = await ds.begin(text)
        watcher = asyncio.ensure_future(self.answer_waits(run))
        try:
            result = await run.result()
        except asyncio.CancelledError:
            await asyncio.shield(run.cancel())  # stop it in the database too
            if text is not None:
                self.session.messages = ds.messages = [*ds.messages, Message.user(text),
                                                       Message.assistant("(the person cancelled this turn)")]
            raise
        except DurableRunError as e:
            if e.result is not None:
                ds.keep(e.result)
                self.session.messages = ds.messages
            raise
        finally:
            watcher.cancel()
        ds.keep(result)
        self.session.messages = ds.messages
        return result

    async def answer_waits(self, run: DurableRun) -> None:
        """Ask the person each question the run waits on, and send the reply to the run."""
        asked: set[str] = set()
        while True:
            for wait in await run.waiting():
                if wait["name"] not in asked:
                    asked.add(wait["name"])
                    reply = await self.ask(HumanRequest.model_validate(wait))
                    await run.reply(reply, wait["name"])
            await asyncio.sleep(0.25)

    def error(self, e: BaseException) -> None:
        text = str(e) if isinstance(e, AgentflowError) else f"{type(e).__name__}: {e}"
        self.console.print(f"[red]error:[/] {escape(short(text, 400))}")

    # -- asking the person ----------------------------------------------------------------------

    async def ask(self, request: HumanRequest) -> HumanReply:
        async with self.asking:
            with self.display.pause():
                try:
                    if request.kind == "approval":
                        return await self.approve(request)
                    if request.kind == "plan":
                        return await self.review(request)
                    self.console.print(f"[bold yellow]?[/] {escape(request.agent)} asks: {escape(request.question)}")
                    return HumanReply(answer=await self.read("answer> "))
                except (KeyboardInterrupt, EOFError):  # Ctrl-C at a question cancels the turn
                    if self.turn_task is not None:
                        self.turn_task.cancel()
                    return HumanReply(approved=False, reason="the person cancelled the turn")

    async def read(self, prompt: str, default: str = "", multiline: bool = False) -> str:
        return await self.questions.prompt_async(prompt, default=default, multiline=multiline, handle_sigint=False)

    async def approve(self, request: HumanRequest) -> HumanReply:
        self.console.print(f"[bold yellow]⚠ {escape(request.agent)}[/] wants to run "
                           f"[bold]{escape(request.tool or '')}[/]({escape(short(request.arguments or '', 300))})")
        while True:
            answer = (await self.read("approve? [y]es / [n]o REASON (or /approve, /reject REASON)> ")).strip()
            word, _, reason = answer.partition(" ")
            if word.lower() in ("y", "yes", "/approve"):
                return HumanReply(approved=True)
            if word.lower() in ("n", "no", "/reject"):
                return HumanReply(approved=False, reason=reason.strip() or None)
            self.console.print("[dim]answer y or n (a reason may follow n)[/]")

    async def review(self, request: HumanRequest) -> HumanReply:
        plan = Plan.model_validate(request.plan or {})
        self.display.plan, self.display.plan_status = plan, {}
        self.console.print(self.display.plan_table("proposed plan"))
        while True:
            answer = (await self.read("run this plan? [y]es / [e]dit / [n]o REASON> ")).strip()
            word, _, reason = answer.partition(" ")
            if word.lower() in ("y", "yes", "/approve", ""):
                self.display.reviewed = True
                return HumanReply(approved=True)
            if word.lower() in ("n", "no", "/reject"):
                return HumanReply(approved=False, reason=reason.strip() or None)
            if word.lower() in ("e", "edit"):
                edited = await self.edit_plan(plan)
                if edited is not None:
                    return HumanReply(approved=True, plan=edited.model_dump(mode="json"))

    async def edit_plan(self, plan: Plan) -> Plan | None:
        """The plan as YAML to edit in place (Esc then Enter to submit); None if the edit is abandoned."""
        self.console.print("[dim]edit the plan; Esc then Enter to submit, an empty text keeps the old plan[/]")
        text = yaml.safe_dump(plan.model_dump(mode="json", exclude_none=True), sort_keys=False, allow_unicode=True)
        while True:
            text = await self.read("", default=text, multiline=True)
            if not text.strip():
                return None
            try:
                edited = Plan.model_validate(yaml.safe_load(text))
            except (yaml.YAMLError, ValidationError) as e:
                self.console.print(f"[red]not a valid plan:[/] {escape(short(str(e), 300))}")
                continue
            unknown = [s.agent for s in edited.steps if s.agent not in self.supervisor.agents]
            if unknown:
                self.console.print(f"[red]unknown agent {escape(', '.join(unknown))}[/]; agents: "
                                   f"{escape(', '.join(self.supervisor.agents))}")
                continue
            return edited

    # -- slash commands -------------------------------------------------------------------------

    async def command(self, line: str) -> bool:
        """Runs one slash command (each is a `_cmd_NAME` method, listed in COMMANDS); False means leave."""
        name, _, arg = line.partition(" ")
        if name in ("/quit", "/exit"):
            return False
        handler = getattr(self, f"_cmd_{name[1:]}", None) if name in COMMANDS else None
        if handler is None:
            raise AgentflowError(f"unknown command {name}; /help lists them")
        await handler(arg.strip())
        return True

    async def _cmd_help(self, arg: str) -> None:
        table = Table(show_header=False, box=None)
        for c, about in COMMANDS.items():
            table.add_row(c, about)
        self.console.print(table)

    async def _cmd_agents(self, arg: str) -> None:
        table = Table("agent", "tools", "what it does")
        for a in self.supervisor.agents.values():
            table.add_row(a.name, ", ".join(a.tools) or "-", escape(a.description))
        self.console.print(table)

    async def _cmd_tasks(self, arg: str) -> None:
        self.console.print(self.display.task_table() if self.display.tasks else
                           "no tasks yet (worklist mode makes them)")

    async def _cmd_plan(self, arg: str) -> None:
        self.console.print(self.display.plan_table() if self.display.plan else "no plan yet (plan mode makes one)")

    async def _cmd_approve(self, arg: str) -> None:  # a waiting approval is answered where it is asked
        self.console.print("nothing is waiting for approval; a tool call that needs it asks you when it comes")

    _cmd_reject = _cmd_approve

    async def _cmd_cost(self, arg: str) -> None:
        self.show_cost()

    async def _cmd_history(self, arg: str) -> None:
        self.show_history()

    async def _cmd_save(self, arg: str) -> None:
        self.console.print(f"saved to {self.save(Path(arg) if arg else None)}")

    async def _cmd_load(self, arg: str) -> None:
        if not arg:
            raise AgentflowError("/load needs a file: /load PATH")
        self.load(Path(arg))
        self.console.print(f"loaded {arg}: {sum(1 for m in self.session.messages if m.role == 'user')} turn(s)")

    async def _cmd_reset(self, arg: str) -> None:
        self.session = self.build([])
        if self.durable is None:
            self.console.print("a new conversation")
            return
        from ..durable import current

        self.durable = await current().session(TARGET, new_session_id())
        self.save_setup()
        self.console.print(f"a new conversation: session {self.durable.id}")

    async def _cmd_mode(self, arg: str) -> None:
        if arg not in MODES:
            raise AgentflowError(f"/mode takes one of {', '.join(MODES)}")
        self.config.mode = arg  # type: ignore[assignment]
        self.session = self.build(self.session.messages)
        self.save_setup()
        self.console.print(f"mode {arg}")

    def show_cost(self) -> None:
        table = Table("agent", "requests", "input tok", "output tok", "cost")
        total = Usage()
        for agent, u in sorted(self.display.per_agent.items()):
            total = total + u
            table.add_row(agent, str(u.requests), str(u.input_tokens), str(u.output_tokens), _money(u))
        table.add_row("[bold]total[/]", str(total.requests), str(total.input_tokens), str(total.output_tokens),
                      _money(total))
        self.console.print(table)

    def show_history(self) -> None:
        shown = 0
        for m in self.session.messages:
            if m.role == "user":
                self.console.print(f"[bold]you[/]: {escape(m.content or '')}")
            elif m.role == "assistant" and m.content and not m.tool_calls:
                self.console.print(f"[bold magenta]{NAME}[/]: {escape(m.content)}")
            else:
                continue
            shown += 1
        if not shown:
            self.console.print("no conversation yet")

    def save(self, path: Path | None) -> Path:
        path = path or Path(".agentflow") / "chats" / f"chat-{os.getpid()}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"version": 1, "config": self.config.model_dump(mode="json"),
                "messages": [m.model_dump(mode="json") for m in self.session.messages],
                "per_agent": {a: u.model_dump(mode="json") for a, u in self.display.per_agent.items()}}
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
        return path

    def load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            messages = [Message.model_validate(m) for m in data["messages"]]
            per_agent = {a: Usage.model_validate(u) for a, u in data.get("per_agent", {}).items()}
            config = ChatConfig.model_validate(data.get("config") or {})
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise AgentflowError(f"cannot load {path}: {short(str(e), 200)}") from None
        config.model = self.config.model  # the model in use stays; the rest is the saved session's
        self.config = config
        self.session = self.build(messages)
        if self.durable is not None:
            self.durable.messages = messages
            self.save_setup()
        self.display.per_agent = per_agent


def _money(usage: Usage) -> str:
    """The cost, or "?" when the model's prices are not known."""
    return "?" if usage.cost is None else f"${usage.cost:.4f}"
