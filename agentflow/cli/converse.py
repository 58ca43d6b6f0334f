"""`agentflow converse`: a persona and a UserProxy talk until the goal is met, or a group chat of personas.

The conversation is shown on stderr as it happens, then its summary; the result goes to stdout
(JSON with `--json`). Tool calls that need approval are asked on the terminal, refused when
there is no terminal, or all approved with `--yes` (for a `--root` you can throw away).
Exit codes: 0 the goal was met, 1 it was not (or the conversation stopped short), 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from ..core.errors import ConfigError
from ..runtime.requests import HumanReply, HumanRequest
from ..runtime.runner import StepRunner


def add_parser(sub: Any, model_help: str) -> None:
    p = sub.add_parser("converse", help="a persona and a UserProxy (or a group of personas) talk until a goal is met",
                       description="`agentflow converse --assistant coder --goal \"...\"`: the persona is the "
                                   "Assistant (told nothing of the goal) and a UserProxy that knows the goal steers "
                                   "it and gives the verdict. `agentflow converse --group a,b,c --goal \"...\"`: a "
                                   "group chat of personas on the goal, a manager choosing each next speaker.")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--assistant", metavar="PERSONA", help="the persona the UserProxy talks to")
    who.add_argument("--group", action="append", metavar="PERSONA",
                     help="the members of a group chat (repeat, or separate with commas)")
    p.add_argument("--goal", "--proxy-goal", required=True, dest="goal",
                   help="what the UserProxy wants (with --assistant), or the group's task")
    p.add_argument("--opening", default=None, help="the UserProxy's first message, word for word")
    p.add_argument("--manager", choices=["llm", "round_robin", "random"], default="llm",
                   help="how a group chat's next speaker is chosen (default: llm)")
    p.add_argument("--finisher", action="append", default=[], metavar="PERSONA",
                   help="a group member who may end the chat (repeat; default: every member)")
    p.add_argument("--max-turns", type=int, default=20, help="messages before it is stopped (default 20)")
    p.add_argument("--max-cost", type=float, default=None, help="dollars before it is stopped")
    p.add_argument("--yes", action="store_true",
                   help="approve every tool call without asking (only with a --root you can throw away)")
    p.add_argument("--json", action="store_true", help="print the result, transcript and usage as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="do not show the conversation as it happens (only "
                                                              "its summary)")
    p.add_argument("--personas", action="append", default=[], metavar="DIR", help="more persona files")
    p.add_argument("--model", "-m", default=None, help=model_help)
    p.add_argument("--root", default=".", help="the directory the file tools are confined to, and where shell, "
                                               "Python and tests run (default: here)")
    p.add_argument("--allow-host", action="append", default=[], metavar="HOST", help="a host fetch may reach")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds a shell command or program may run")


class _AskOnTerminal(StepRunner):
    """Approvals asked on the terminal (y/N); without one, a request gets its default (a refusal)."""

    def __init__(self, approve_all: bool) -> None:
        self.approve_all = approve_all
        self.lock = asyncio.Lock()

    async def wait(self, name: str, request: HumanRequest) -> HumanReply:
        if self.approve_all and request.kind == "approval":
            return HumanReply(approved=True, reason="approved by --yes")
        if request.kind != "approval" or not sys.stdin.isatty():
            return await super().wait(name, request)
        async with self.lock:
            answer = await asyncio.to_thread(input, f"\n{request.question} [y/N] ")
        yes = answer.strip().lower() in ("y", "yes")
        return HumanReply(approved=yes, reason=None if yes else (answer.strip() or "the person said no"))


def command(args: argparse.Namespace) -> int:
    return asyncio.run(_converse(args))


async def _converse(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..agent import persona
    from ..core.limits import Limits
    from ..durable.codec import jsonable
    from ..runtime.runner import using
    from ..teams.conversation import Conversation, ConversationResult, GroupChat, UserProxy
    from .display import ConversationDisplay
    from .loading import load_model

    model = load_model(args.model)
    names = [args.assistant] if args.assistant else [n.strip() for g in args.group for n in g.split(",") if n.strip()]
    agents = [p.agent(model=model, root=args.root, allow_hosts=args.allow_host, timeout=args.timeout)
              for p in persona.pick(names, args.personas)]
    limits = Limits(max_cost=args.max_cost)
    if args.assistant:
        if args.finisher or args.manager != "llm":
            raise ConfigError("--finisher and --manager are for --group; with --assistant the UserProxy decides")
        chat: Any = Conversation(agents[0], UserProxy(args.goal, model=model, opening=args.opening),
                                 max_turns=args.max_turns, limits=limits).stream(deltas=True)
    else:
        if args.opening:
            raise ConfigError("--opening is the UserProxy's first message: use it with --assistant")
        chat = GroupChat(agents, manager=args.manager, manager_model=model, finishers=args.finisher or None,
                         max_turns=args.max_turns, limits=limits).stream(args.goal, deltas=True)
    console = Console(stderr=True, highlight=False, quiet=args.quiet)
    display = ConversationDisplay(console)
    with using(_AskOnTerminal(args.yes)):
        async for event in chat:
            display.event(event)
    result: ConversationResult[Any] = chat.result
    Console(stderr=True, highlight=False).print(("" if args.quiet else "\n") + result.summary(), markup=False)
    if args.json:
        print(json.dumps({
            "goal_met": result.goal_met, "stop_reason": result.stop_reason, "detail": result.detail,
            "concluded_by": result.concluded_by, "output": jsonable(result.output),
            "summary": result.verdict.summary if result.verdict else None,
            "transcript": [{"speaker": t.speaker, "text": t.text, "final": t.final, "tool_calls": t.tool_calls}
                           for t in result.transcript],
            "usage": result.usage.model_dump(mode="json"),
            "per_agent": {k: u.model_dump(mode="json") for k, u in result.per_agent.items()},
            "notes": result.notes}, indent=2, ensure_ascii=False))
    elif result.output is not None:
        print(jsonable(result.output) if isinstance(result.output, str) else json.dumps(jsonable(result.output)))
    return 0 if result.goal_met else 1
