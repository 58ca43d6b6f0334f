"""Durable runs on DBOS: journaled steps, crash-resume, human waits, edit-and-rerun, scale-out.

    from agentflow import durable
    rt = durable.launch()                     # sqlite:///.agentflow/agentflow.db, or postgresql://...
    run = await rt.start(counter, "Count the lines here")
    result = await run.result()               # after a crash, the next launch() resumes it
"""

from ..runtime.requests import HumanReply, HumanRequest
from .registry import register, registry
from .runs import DurableRun, DurableRunError, DurableSession, RunInfo, StepRecord
from .runtime import APP_VERSION, DEFAULT_URL, Runtime, connect, current, launch

__all__ = ["APP_VERSION", "DEFAULT_URL", "DurableRun", "DurableRunError", "DurableSession", "HumanReply",
           "HumanRequest", "RunInfo", "Runtime", "StepRecord", "connect", "current", "launch", "register", "registry"]
