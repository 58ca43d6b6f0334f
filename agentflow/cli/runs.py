"""`agentflow runs ...`: inspect and steer durable runs.

Only `runs resume --app` and `runs worker` run anything here; the other commands read and
write the database through DBOS's client, so they are safe beside a running application.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from datetime import datetime
from typing import Any

from .display import short
from .loading import load_module

DB_HELP = "database URL (default: $AGENTFLOW_DB or sqlite:///.agentflow/agentflow.db)"


def add_parser(sub: Any) -> None:
    runs = sub.add_parser("runs", help="durable runs: list, show, approve, answer, resume, cancel, prune")
    runs.add_argument("--db", default=None, help=DB_HELP)
    after = argparse.ArgumentParser(add_help=False)  # `runs list --db URL` as well as `runs --db URL list`
    after.add_argument("--db", default=argparse.SUPPRESS, help=DB_HELP)
    act = runs.add_subparsers(dest="action", required=True)

    def action(name: str, help: str) -> argparse.ArgumentParser:
        return act.add_parser(name, help=help, parents=[after])

    ls = action("list", help="the newest runs")
    ls.add_argument("--status", choices=["queued", "running", "waiting", "done", "failed", "cancelled"])
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true", help="print them as JSON")
    show = action("show", help="a run: status, open questions, steps, output")
    show.add_argument("id")
    show.add_argument("--json", action="store_true", help="print it as JSON")
    for name, text in (("approve", "approve a tool call the run waits on"), ("reject", "refuse it")):
        p = action(name, text)
        p.add_argument("id")
        p.add_argument("--reason", default=None, help="shown to the model")
        p.add_argument("--name", default=None, help="which question, when it waits on several")
    ans = action("answer", help="answer a question the run asked")
    ans.add_argument("id")
    ans.add_argument("text")
    ans.add_argument("--name", default=None, help="which question, when it waits on several")
    cancel = action("cancel", help="stop a run (it can be resumed later)")
    cancel.add_argument("id")
    resume = action("resume", help="continue a stuck, cancelled or failed run from its journal")
    resume.add_argument("id")
    resume.add_argument("--app", default=None,
                        help="a module or .py file that registers the run's target: run it here and wait")
    prune = action("prune", help="delete finished runs older than some days")
    prune.add_argument("--older-than", type=float, required=True, metavar="DAYS")
    worker = action("worker", help="pull queued runs and run them until stopped (Ctrl-C)")
    worker.add_argument("--app", required=True, help="a module or .py file that registers the targets")
    worker.add_argument("--concurrency", type=int, default=None, help="runs at once in this worker")


def command(args: argparse.Namespace) -> int:
    return asyncio.run(_runs(args))


async def _runs(args: argparse.Namespace) -> int:
    from .. import durable

    url = args.db or os.environ.get("AGENTFLOW_DB") or durable.DEFAULT_URL
    if args.action in ("worker",) or (args.action == "resume" and args.app):
        load_module(args.app)
        rt = durable.launch(url, worker=args.action == "worker",
                            worker_concurrency=getattr(args, "concurrency", None))
    else:
        rt = durable.connect(url)
    try:
        return await _act(rt, args)
    finally:
        rt.shutdown()


async def _act(rt: Any, args: argparse.Namespace) -> int:
    a = args.action
    if a == "list":
        infos = await rt.runs(status=args.status, limit=args.limit)
        if args.json:
            print(json.dumps([i.model_dump(mode="json") for i in infos], indent=2, ensure_ascii=False, default=str))
            return 0
        for i in infos:
            what = i.task if i.task is not None else json.dumps(i.inputs)
            print(f"{i.id}  {i.status:<9} {i.target:<16} {_when(i.created_at)}  {short(what, 60)}")
        if not infos:
            print("no runs")
        return 0
    if a == "show":
        return await _show(rt, args.id, args.json)
    if a == "prune":
        print(f"deleted {rt.prune_now(args.older_than)} finished run(s)")
        return 0
    if a == "worker":
        print(f"worker {rt.executor_id} pulling runs from {rt.url} (Ctrl-C stops it)", flush=True)
        while True:
            await asyncio.sleep(3600)
    run = rt.get(args.id)
    if a == "approve":
        print(f"approved {await run.approve(args.name, reason=args.reason)}")
    elif a == "reject":
        print(f"rejected {await run.reject(args.reason, name=args.name)}")
    elif a == "answer":
        print(f"answered {await run.answer(args.text, args.name)}")
    elif a == "cancel":
        await run.cancel()
        print(f"cancelled {args.id}")
    elif a == "resume":
        resumed = await run.resume()
        if args.app is None:
            print(f"{resumed.id} is queued to continue: the next process that launches agentflow.durable "
                  "(or `agentflow runs resume ID --app yourapp`) runs it")
            return 0
        result = await resumed.result()
        from ..durable.codec import jsonable

        print(json.dumps(jsonable(result.output), indent=2, ensure_ascii=False))
    return 0


async def _show(rt: Any, run_id: str, as_json: bool) -> int:
    info = await rt.info(run_id)
    run = rt.get(run_id)
    steps = await run.steps()
    found = await rt.client.list_workflows_async(workflow_ids=[run_id], load_input=False, load_output=True)
    output = found[0].output if found else None
    if as_json:
        print(json.dumps({"run": info.model_dump(mode="json"), "steps": [s.model_dump(mode="json") for s in steps],
                          "result": output}, indent=2, ensure_ascii=False, default=str))
        return 0
    print(f"run      {info.id}\ntarget   {info.target}\nstatus   {info.status}")
    print(f"started  {_when(info.created_at)}   updated {_when(info.updated_at)}   on {info.executor}")
    print(f"task     {info.task}" if info.task is not None else f"inputs   {json.dumps(info.inputs)}")
    if info.error:
        print(f"error    {info.error}")
    for w in info.waiting:
        print(f"waiting  [{w['kind']}] {w['question']}\n         answer with: agentflow runs "
              f"{'approve' if w['kind'] == 'approval' else 'answer'} {info.id} --name {w['name']}"
              + (' "..."' if w["kind"] == "question" else ""))
    print("steps")
    for s in steps:
        if s.kind == "dbos":
            continue
        depth = _owner(s.name).count("/")
        tokens = f" {s.input_tokens}+{s.output_tokens} tok" if s.input_tokens or s.output_tokens else ""
        took = f" {s.seconds:.2f}s" if s.seconds is not None else ""
        line = f"  {'  ' * min(depth, 6)}{s.name} [{s.kind}]{tokens}{took}: {short(_gist(s.output), 70)}"
        print(line + (f"  ERROR {s.error}" if s.error else ""))
    if isinstance(output, dict) and output.get("kind") == "workflow":
        print("outputs")
        for name, value in output["outputs"].items():
            print(f"  {name}: {short(json.dumps(value, ensure_ascii=False), 90)}")
    elif isinstance(output, dict):
        print(f"output   {short(json.dumps(output.get('output'), ensure_ascii=False), 200)}")
    return 0


def _owner(name: str) -> str:
    """The run a step belongs to: `boss/tool/b1/worker` for `boss/tool/b1/worker/model/0`."""
    cut = max(name.rfind(m) for m in ("/model/", "/tool/", "/approve/", "/python", "/asked"))
    return name[:cut] if cut > 0 else name


def _gist(output: Any) -> str:
    if isinstance(output, dict):
        if "message" in output:  # a model reply
            msg = output["message"]
            calls = ", ".join(f"{c['name']}({c['arguments']})" for c in msg.get("tool_calls") or [])
            return calls or (msg.get("content") or "")
        if "observation" in output:
            return str(output["observation"])
        if "value" in output:
            return json.dumps(output["value"], ensure_ascii=False)
    return json.dumps(output, ensure_ascii=False)


def _when(epoch: float | None) -> str:
    return "-" if epoch is None else datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")
