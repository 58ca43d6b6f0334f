"""Results to JSON and back, through pydantic: the journal never holds a pickle.

Typed outputs are decoded with the type their agent or task declares, so a resumed or
inspected run hands back the same objects a live run would.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter
from pydantic_core import to_jsonable_python

from ..core.messages import Message, Usage
from ..core.result import ModelStep, RunResult, Step, ToolStep
from ..workflow.result import TaskRecord, WorkflowResult

_steps: TypeAdapter[list[Step]] = TypeAdapter(list[ModelStep | ToolStep])
_messages: TypeAdapter[list[Message]] = TypeAdapter(list[Message])


def jsonable(value: Any) -> Any:
    return to_jsonable_python(value, fallback=repr)


def typed(annotation: Any, value: Any) -> Any:
    """`value` as `annotation`, or as it is when pydantic cannot build that type."""
    if value is None or annotation is None or annotation is Any:
        return value
    try:
        return _adapter(annotation).validate_python(value)
    except Exception:
        return value


def _adapter(annotation: Any) -> TypeAdapter[Any]:
    try:
        return _cached_adapter(annotation)
    except TypeError:  # an unhashable annotation
        return TypeAdapter(annotation)


@lru_cache(maxsize=256)
def _cached_adapter(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)


def encode_run(result: RunResult[Any]) -> dict[str, Any]:
    return {"kind": "run", "output": jsonable(result.output), "stop_reason": result.stop_reason,
            "usage": result.usage.model_dump(mode="json"), "steps": _steps.dump_python(result.steps, mode="json"),
            "messages": _messages.dump_python(result.messages, mode="json"), "detail": result.detail,
            "agent": result.agent, "children": [encode_run(c) for c in result.children]}


def decode_run(data: dict[str, Any], output_type: Any = None) -> RunResult[Any]:
    return RunResult(output=typed(output_type, data["output"]), stop_reason=data["stop_reason"],
                     usage=Usage.model_validate(data["usage"]), steps=_steps.validate_python(data["steps"]),
                     messages=_messages.validate_python(data["messages"]), detail=data["detail"],
                     agent=data["agent"], children=[decode_run(c) for c in data["children"]])


def encode_workflow(result: WorkflowResult[Any]) -> dict[str, Any]:
    return {"kind": "workflow", "workflow": result.workflow, "output": jsonable(result.output),
            "outputs": jsonable(result.outputs), "inputs": jsonable(result.inputs),
            "usage": result.usage.model_dump(mode="json"),
            "usage_by_task": {k: u.model_dump(mode="json") for k, u in result.usage_by_task.items()},
            "records": [jsonable(r.model_dump()) for r in result.records], "attempts": jsonable(result.attempts),
            "seconds": result.seconds, "stopped_by": result.stopped_by, "error": result.error}


def decode_workflow(data: dict[str, Any], types: dict[str, Any], inputs: dict[str, Any],
                    output_type: Any = None) -> WorkflowResult[Any]:
    """`types`: each task's output type; `inputs`: each run input's type."""
    return WorkflowResult(
        workflow=data["workflow"], output=typed(output_type, data["output"]),
        outputs={k: typed(types.get(k), v) for k, v in data["outputs"].items()},
        inputs={k: typed(inputs.get(k), v) for k, v in data["inputs"].items()},
        usage=Usage.model_validate(data["usage"]),
        usage_by_task={k: Usage.model_validate(u) for k, u in data["usage_by_task"].items()},
        records=[TaskRecord.model_validate(r) for r in data["records"]], attempts=data["attempts"],
        seconds=data["seconds"], stopped_by=data["stopped_by"], error=data["error"])
