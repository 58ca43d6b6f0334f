"""Deterministic LLM workflows: tasks whose description is the prompt, `>>` and `|`, routes,
fan-outs and loops, compiled to a checked networkx graph and run concurrently.

```python
@task("Pick a random character from The Lord of the Rings; answer with the name only")
async def character() -> str: ...

@task("What is a famous line by {character}?")
async def line(character: str) -> str: ...

result = await (character >> line).run()
```
"""

from .control import Each, Loop, Switch, each, loop, route
from .nodes import Node, Param, Unit
from .result import TaskFinished, TaskRecord, TaskStarted, WorkflowError, WorkflowResult
from .task import AgentTask, HumanTask, PromptTask, PythonTask, TaskError, ask_human, step, task, use_model
from .workflow import Workflow

__all__ = [
    "AgentTask",
    "Each",
    "HumanTask",
    "Loop",
    "Node",
    "Param",
    "PromptTask",
    "PythonTask",
    "Switch",
    "TaskError",
    "ask_human",
    "TaskFinished",
    "TaskRecord",
    "TaskStarted",
    "Unit",
    "Workflow",
    "WorkflowError",
    "WorkflowResult",
    "each",
    "loop",
    "route",
    "step",
    "task",
    "use_model",
]
