"""The `agentflow` command: `chat`, `run`, `converse`, `personas`, `tools`, `models`, `runs` and `serve`.

Exit codes: 0 done, 1 the run failed or stopped short of its answer, 2 bad usage (an unknown
persona, model or file: the message names it and the fix), 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from .. import __version__
from ..core.errors import AgentflowError, ConfigError

MODEL_HELP = "provider:model (openai:gpt-4o-mini, anthropic:claude-haiku-4-5) or a .py file defining `model` " \
             "(default: $AGENTFLOW_MODEL, else from OPENAI_API_KEY / ANTHROPIC_API_KEY, else a pulled local model)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agentflow", description="agents of agents and durable LLM workflows")
    parser.add_argument("--version", action="version", version=f"agentflow {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    chat = sub.add_parser("chat", help="talk with a supervisor whose task agents are personas",
                          description="An interactive session. Type /help in it for its commands.")
    _team_options(chat)
    chat.add_argument("--resume", metavar="ID", default=None,
                      help="continue a durable session (its id is shown when it starts and when you leave)")
    chat.add_argument("--no-durable", action="store_true",
                      help="keep the session in memory only (by default every turn is a durable run)")
    chat.add_argument("--db", default=None, help="durable sessions' database (default: $AGENTFLOW_DB or "
                                                 "sqlite:///.agentflow/agentflow.db)")

    run = sub.add_parser("run", help="do one task, or run one workflow file, and print the result",
                         description="`agentflow run \"a task\"` gives the task to a supervisor with the personas "
                                     "as task agents; `agentflow run flow.py[:NAME] --input k=v` runs the "
                                     "workflow, agent or supervisor defined in a Python file.")
    run.add_argument("target", help="a task in quotes, or FILE.py[:NAME]")
    run.add_argument("task", nargs="?", default=None, help="the task, when FILE.py holds an agent or supervisor")
    run.add_argument("--input", "-i", action="append", default=[], metavar="NAME=VALUE",
                     help="a workflow input (VALUE is read as JSON when it parses, else as text)")
    run.add_argument("--json", action="store_true", help="print the result as JSON")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress display")
    _team_options(run)

    personas = sub.add_parser("personas", help="list the personas or show one")
    personas.add_argument("--personas", action="append", default=[], metavar="DIR", help="more persona files")
    how = personas.add_subparsers(dest="action", required=True)
    ls = how.add_parser("list", help="every persona found")
    show = how.add_parser("show", help="one persona: its fields, tools and instructions")
    show.add_argument("name")
    for p in (ls, show):
        p.add_argument("--personas", action="append", default=argparse.SUPPRESS, metavar="DIR",
                       help="more persona files")
        p.add_argument("--json", action="store_true")

    tools = sub.add_parser("tools", help="the ready-made tools personas can name")
    tools.add_argument("--json", action="store_true")

    from .converse import add_parser as add_converse
    from .models import add_parser as add_models
    from .runs import add_parser
    from .serve import add_mcp_parser
    from .serve import add_parser as add_serve

    add_converse(sub, MODEL_HELP)
    add_models(sub)
    add_parser(sub)
    add_serve(sub, MODEL_HELP)
    add_mcp_parser(sub, MODEL_HELP)
    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        return 130
    except ConfigError as e:
        print(f"agentflow: {e}", file=sys.stderr)
        return 2
    except AgentflowError as e:
        print(f"agentflow: {e}", file=sys.stderr)
        return 1


def _team_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--persona", "-p", action="append", default=[], metavar="NAME",
                   help="a persona to use as a task agent (repeat, or separate with commas; default: all)")
    p.add_argument("--personas", action="append", default=[], metavar="DIR",
                   help="a directory of more persona files (also $AGENTFLOW_PERSONAS)")
    p.add_argument("--mode", choices=["route", "plan", "worklist"], default="route",
                   help="route: delegate as needed; plan: a plan first (editable in chat); worklist: a task list")
    p.add_argument("--model", "-m", default=None, help=MODEL_HELP)
    p.add_argument("--root", default=".", help="the directory file tools are confined to, and where shell and "
                                               "Python run (default: here)")
    p.add_argument("--allow-host", action="append", default=[], metavar="HOST",
                   help="a host the fetch tool may reach (repeat; *.example.com for subdomains)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds a shell command or Python program may run")
    p.add_argument("--mcp", action="append", default=[], metavar="SPEC",
                   help="an MCP server whose tools a task agent of its own uses: 'stdio:COMMAND ARGS', "
                        "'http://HOST:PORT/mcp' or 'sse:URL' (repeat for more)")


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "runs":
        from .runs import command

        return command(args)
    if args.command == "models":
        from .models import command as models

        return models(args)
    if args.command == "serve":
        from .serve import command as serve

        return serve(args)
    if args.command == "mcp-serve":
        from .serve import mcp_command

        return mcp_command(args)
    if args.command == "personas":
        return _personas(args)
    if args.command == "tools":
        return _tools(args)
    if args.command == "chat":
        return _chat(args)
    if args.command == "converse":
        from .converse import command as converse

        return converse(args)
    return asyncio.run(_run(args))


def _chat(args: argparse.Namespace) -> int:
    import os

    from .chat import Chat, saved_config

    if args.resume and args.no_durable:
        raise ConfigError("--resume continues a durable session: drop --no-durable")
    config = _config(args)
    if args.resume:  # the session's own setup; only --model may change
        config = saved_config(args.resume).model_copy(update={"model": args.model} if args.model else {})
    store = None
    if not args.no_durable:
        from ..durable import DEFAULT_URL

        store = args.db or os.environ.get("AGENTFLOW_DB") or DEFAULT_URL
    from .team import checked_model

    chat = Chat(config, model=checked_model(config), history_file=_history_file(), store=store, resume=args.resume)
    return asyncio.run(chat.loop())


def _config(args: argparse.Namespace) -> Any:
    from .team import ChatConfig

    names = [n.strip() for item in args.persona for n in item.split(",") if n.strip()]
    return ChatConfig(personas=names, persona_dirs=args.personas, mode=args.mode, model=args.model,
                      root=args.root, allow_hosts=args.allow_host, timeout=args.timeout, mcp=args.mcp)


def _history_file() -> Path | None:
    home = Path.home() / ".agentflow"
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return home / "chat_history"


def _personas(args: argparse.Namespace) -> int:
    from ..agent import persona

    if args.action == "list":
        found = persona.personas(args.personas)
        if args.json:
            print(json.dumps([_persona_json(p) for p in found.values()], indent=2, ensure_ascii=False))
            return 0
        width = max((len(n) for n in found), default=0)
        for p in found.values():
            print(f"{p.name:<{width}}  {p.role}: {p.goal}  [{', '.join(p.tools) or 'no tools'}]")
        return 0
    p = persona.get(args.name, args.personas)
    if args.json:
        print(json.dumps(_persona_json(p) | {"instructions": p.instructions}, indent=2, ensure_ascii=False))
        return 0
    print(f"name       {p.name}\nrole       {p.role}\ngoal       {p.goal}\nfile       {p.path}")
    if p.backstory:
        print(f"backstory  {p.backstory}")
    print(f"tools      {', '.join(p.tools) or '-'}\nmodel      {p.model or '(the default)'}")
    if p.output:
        print(f"output     {json.dumps(p.output, ensure_ascii=False)}")
    if p.instructions:
        print(f"\n{p.instructions}")
    return 0


def _persona_json(p: Any) -> dict[str, Any]:
    return p.model_dump(mode="json", exclude={"instructions"})


def _tools(args: argparse.Namespace) -> int:
    from agentflow.tools import known  # pyright: ignore[reportMissingImports] (tools/ ships as agentflow.tools)

    names = known()
    if args.json:
        print(json.dumps(names, indent=2))
        return 0
    width = max(len(n) for n in names)
    for name, about in names.items():
        print(f"{name:<{width}}  {about}")
    return 0


async def _run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..agent.loop import Agent
    from ..core.result import Outcome
    from ..durable.codec import jsonable
    from ..teams.supervisor import Supervisor
    from ..workflow import Workflow, WorkflowError, WorkflowResult
    from .display import Display
    from .loading import is_file_ref, load_object

    console = Console(stderr=True, highlight=False, quiet=args.quiet)
    agents: set[str] = set()
    if is_file_ref(args.target):
        target = load_object(args.target, (Workflow, Supervisor, Agent), "workflow, agent or supervisor")
        inputs = dict(_input(i) for i in args.input)
        if isinstance(target, Workflow):
            if args.task is not None:
                raise ConfigError(f"{args.target} is a workflow: give its inputs with --input NAME=VALUE")
            stream: Any = target.stream(**inputs)
        else:
            if args.task is None:
                raise ConfigError(f"{args.target} holds an agent or supervisor: give it a task after the file")
            stream = target.stream(args.task)
        top = target.name
    else:
        if args.input or args.task is not None:
            raise ConfigError("a task in quotes takes no --input and no second argument")
        from .team import checked_model, team

        config = _config(args)
        supervisor = team(config, checked_model(config))
        stream = supervisor.stream(args.target)
        top, agents = supervisor.name, set(supervisor.agents)
    display = Display(console, top, agents=agents)
    try:
        async for event in stream:
            display.event(event)
        result = stream.result
    except WorkflowError as e:  # a task failed: report it like any other result
        result = e.result
        result.error = str(e)
    finally:
        display.finish_turn(None)
    done: Outcome = result
    data: dict[str, Any] = {"output": jsonable(done.output), "stop_reason": done.stop_reason, "detail": done.detail,
                            "usage": done.usage.model_dump(mode="json")}
    if isinstance(result, WorkflowResult):  # and every task's output
        data |= {"outputs": jsonable(result.outputs), "error": result.error}
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        if done.output is not None:
            print(done.output if isinstance(done.output, str) else
                  json.dumps(data["output"], indent=2, ensure_ascii=False))
        if not done.ok:
            print(f"agentflow: the run stopped: {done.stop_reason}: {done.detail}", file=sys.stderr)
    return 0 if done.ok else 1


def _input(item: str) -> tuple[str, Any]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise ConfigError(f"--input {item!r} must be NAME=VALUE")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


if __name__ == "__main__":
    raise SystemExit(main())
