"""agentflow: agents of agents and durable LLM workflows."""

from typing import TYPE_CHECKING, Any

from .agent import Agent, AgentStream, EventStream
from .delegation import AgentTool
from .errors import AgentflowError, ConfigError, ModelError, OutputValidationError, ToolDefinitionError
from .events import Event, RunFinished, RunStarted, TextChunk
from .limits import Budget, Limits
from .messages import Message, ModelResponse, TextDelta, ToolCall, ToolCallDelta, Usage
from .models import FunctionModel, Model, ModelSettings, ScriptedModel, get_model
from .result import ModelStep, RunResult, Step, ToolStep
from .runner import StepRunner
from .tool import Tool, ToolError, tool

if TYPE_CHECKING:
    from .conversation import Conversation, ConversationResult, GroupChat, SpeakerChosen, Turn, UserProxy, Verdict
    from .dag import CycleError
    from .planning import Plan, PlanMade, PlanStep, PlanStepChanged, Review
    from .spawn import AgentSpec
    from .supervisor import Session, Supervisor
    from .worklist import WorkItem, WorklistChanged

# Imported on first use, so a process that only runs agents does not hold them in memory.
_LAZY = {
    "conversation": ["Conversation", "ConversationResult", "GroupChat", "SpeakerChosen", "Turn", "UserProxy",
                     "Verdict"],
    "dag": ["CycleError"],
    "planning": ["Plan", "PlanMade", "PlanStep", "PlanStepChanged", "Review"],
    "spawn": ["AgentSpec"],
    "supervisor": ["Session", "Supervisor"],
    "worklist": ["WorkItem", "WorklistChanged"],
}
_LAZY_FROM = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _LAZY_FROM.get(name)
    if module is None:
        raise AttributeError(f"module 'agentflow' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentSpec",
    "AgentStream",
    "AgentTool",
    "AgentflowError",
    "Budget",
    "ConfigError",
    "Conversation",
    "ConversationResult",
    "CycleError",
    "Event",
    "EventStream",
    "FunctionModel",
    "GroupChat",
    "Limits",
    "Message",
    "Model",
    "ModelError",
    "ModelResponse",
    "ModelSettings",
    "ModelStep",
    "OutputValidationError",
    "Plan",
    "PlanMade",
    "PlanStep",
    "PlanStepChanged",
    "Review",
    "RunFinished",
    "RunResult",
    "RunStarted",
    "ScriptedModel",
    "Session",
    "SpeakerChosen",
    "Step",
    "StepRunner",
    "Supervisor",
    "TextChunk",
    "TextDelta",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolDefinitionError",
    "ToolError",
    "ToolStep",
    "Turn",
    "Usage",
    "UserProxy",
    "Verdict",
    "WorkItem",
    "WorklistChanged",
    "get_model",
    "tool",
]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_FROM))
