"""`agentflow serve FILE.py[:NAME]...`: the REST API over durable runs, on uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import Any

from ..core.errors import ConfigError, did_you_mean
from .loading import load_module, split_ref


def add_parser(sub: Any, model_help: str) -> None:
    serve = sub.add_parser("serve", help="serve agents, supervisors and workflows over HTTP (durable runs)",
                           description="A REST API to start, watch and steer durable runs of the targets the files "
                                       "define (every agent, supervisor and workflow in FILE.py, or FILE.py:NAME). "
                                       "Endpoints: /docs.")
    serve.add_argument("files", nargs="+", metavar="FILE.py[:NAME]")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1; any other "
                                                           "needs a token)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--db", default=None, help="the runs' database (default: $AGENTFLOW_DB or "
                                                  "sqlite:///.agentflow/agentflow.db)")
    serve.add_argument("--token", default=None, help="clients must send `Authorization: Bearer TOKEN` "
                                                     "(default: $AGENTFLOW_TOKEN)")
    serve.add_argument("--model", "-m", default=None, help=f"the model of every agent and task that names none: "
                                                           f"{model_help}")
    serve.add_argument("--max-body", type=int, default=1 << 20, metavar="BYTES", help="largest request body")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])


def add_mcp_parser(sub: Any, model_help: str) -> None:
    serve = sub.add_parser("mcp-serve", help="serve agents, supervisors and workflows as MCP tools",
                           description="An MCP server (stdio by default) whose tools are the targets the files define: "
                                       "an agent or supervisor takes {task}, a workflow its inputs. Runs happen in "
                                       "this process, in memory.")
    serve.add_argument("files", nargs="+", metavar="FILE.py[:NAME]")
    serve.add_argument("--http", type=int, default=None, metavar="PORT",
                       help="serve streamable HTTP on 127.0.0.1:PORT/mcp instead of stdio")
    serve.add_argument("--host", default="127.0.0.1", help="with --http: the address to listen on")
    serve.add_argument("--model", "-m", default=None, help=f"the model of every agent that names none: {model_help}")


def mcp_command(args: argparse.Namespace) -> int:
    from ..mcp import serve
    from ..models.defaults import set_default_model
    from .loading import load_model

    targets = targets_in(args.files)
    if args.model is not None:
        set_default_model(load_model(args.model))
    names = ", ".join(t.name for t in targets)
    if args.http is None:
        print(f"agentflow: MCP tools {names} on stdio", file=sys.stderr, flush=True)
        asyncio.run(serve.serve_stdio(targets))
    else:
        print(f"agentflow: MCP tools {names} on http://{args.host}:{args.http}/mcp", file=sys.stderr, flush=True)
        asyncio.run(serve.serve_http(targets, args.host, args.http))
    return 0


def targets_in(refs: list[str]) -> list[Any]:
    """The agents, supervisors and workflows of each `FILE.py` (or its `NAME`), each file loaded once."""
    from ..agent.loop import Agent
    from ..teams.supervisor import Supervisor
    from ..workflow import Workflow

    kinds = (Agent, Supervisor, Workflow)
    modules: dict[str, Any] = {}
    found: list[Any] = []
    for ref in refs:
        path, name = split_ref(ref)
        if path not in modules:
            modules[path] = load_module(path)
        names = vars(modules[path])
        if name is not None:
            value = names.get(name)
            if not isinstance(value, kinds):
                servable = [k for k, v in names.items() if isinstance(v, kinds) and not k.startswith("_")]
                wrong = (f"{path} defines no {name!r}{did_you_mean(name, servable)}" if value is None else
                         f"{path}:{name} must be an agent, supervisor or workflow, not a {type(value).__name__}")
                raise ConfigError(f"{wrong}. Servable there: {', '.join(servable) or 'none'}")
            picked = [value]
        else:
            picked = [v for k, v in names.items() if isinstance(v, kinds) and not k.startswith("_")]
            if not picked:
                raise ConfigError(f"{path} defines no agent, supervisor or workflow at its top level. Fix: define "
                                  "one there, or name one with FILE.py:NAME")
        found += [t for t in picked if not any(t is f for f in found)]
    return found


def command(args: argparse.Namespace) -> int:
    from .. import durable
    from ..models.defaults import set_default_model
    from ..server.guard import is_loopback
    from .loading import load_model

    token = args.token or os.environ.get("AGENTFLOW_TOKEN") or None
    if token is None and not is_loopback(args.host):
        raise ConfigError(f"refusing to serve on {args.host} without a token: anyone who can reach it could start "
                          "runs and approve tool calls. Fix: --token SECRET (or $AGENTFLOW_TOKEN), or --host 127.0.0.1")
    targets = targets_in(args.files)
    if args.model is not None:
        set_default_model(load_model(args.model))
    url = args.db or os.environ.get("AGENTFLOW_DB") or durable.DEFAULT_URL
    return asyncio.run(_serve(args, targets, url, token))


async def _serve(args: argparse.Namespace, targets: list[Any], url: str, token: str | None) -> int:
    import uvicorn

    from .. import durable
    from ..server import app

    rt = durable.launch(url, targets=targets, record_events=True)  # here, so a pending run's missing target is named
    try:
        api = app(targets, runtime=rt, token=token, max_body=args.max_body)
        names = ", ".join(f"{t.name} ({type(t).__name__.lower()})" for t in targets)
        print(f"agentflow: serving {names} on http://{args.host}:{args.port} (endpoints: /docs); runs in {url}",
              file=sys.stderr, flush=True)
        config = uvicorn.Config(api, host=args.host, port=args.port, log_level=args.log_level,
                                timeout_graceful_shutdown=5, lifespan="on",
                                timeout_keep_alive=30)  # past clients' idle expiry (httpx: 5 s): no reuse race
        signal.signal(signal.SIGTERM, _stopped)  # uvicorn raises the signal again once it has shut down
        await uvicorn.Server(config).serve()
    finally:
        rt.shutdown()
    return 0


def _stopped(signum: int, frame: Any) -> None:
    raise SystemExit(0)  # after a graceful shutdown on SIGTERM: leave through `finally`, exit 0
