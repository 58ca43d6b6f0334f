"""agentflow: agents of agents and durable LLM workflows."""

from typing import TYPE_CHECKING, Any

from .agent.delegation import AgentTool
from .agent.loop import Agent, AgentStream, EventStream, Run
from .core.errors import AgentflowError, ConfigError, ModelError, OutputValidationError, StopRun, ToolDefinitionError
from .core.events import Event, RunFinished, RunStarted, TextChunk
from .core.limits import Budget, Limits
from .core.messages import Message, ModelResponse, TextDelta, ToolCall, ToolCallDelta, Usage
from .core.result import ModelStep, Outcome, RunResult, Step, ToolStep
from .core.tool import Tool, ToolError, tool
from .models import FunctionModel, Model, ModelSettings, ScriptedModel, get_model
from .runtime.runner import StepRunner
from .runtime.scope import listening

if TYPE_CHECKING:
    from .agent import persona
    from .core.dag import CycleError
    from .runtime.human import AskHuman, ask_human
    from .runtime.requests import HumanReply, HumanRequest
    from .teams.conversation import Conversation, ConversationResult, GroupChat, SpeakerChosen, Turn, UserProxy, Verdict
    from .teams.planning import Plan, PlanMade, PlanStep, PlanStepChanged, Review
    from .teams.spawn import AgentSpec
    from .teams.supervisor import Session, Supervisor
    from .teams.worklist import WorkItem, WorklistChanged

# Imported on first use, so a process that only runs agents does not hold them in memory.
_LAZY = {
    "teams.conversation": ["Conversation", "ConversationResult", "GroupChat", "SpeakerChosen", "Turn", "UserProxy",
                           "Verdict"],
    "core.dag": ["CycleError"],
    "teams.planning": ["Plan", "PlanMade", "PlanStep", "PlanStepChanged", "Review"],
    "teams.spawn": ["AgentSpec"],
    "teams.supervisor": ["Session", "Supervisor"],
    "teams.worklist": ["WorkItem", "WorklistChanged"],
    "runtime.human": ["AskHuman", "ask_human"],
    "runtime.requests": ["HumanReply", "HumanRequest"],
}
_LAZY_FROM = {name: module for module, names in _LAZY.items() for name in names}
_MODULES = {"persona": "agent.persona"}  # `from agentflow import persona`: the module


def __getattr__(name: str) -> Any:
    from importlib import import_module

    if name in _MODULES:
        value = import_module(f".{_MODULES[name]}", __name__)
    elif (module := _LAZY_FROM.get(name)) is not None:
        value = getattr(import_module(f".{module}", __name__), name)
    else:
        raise AttributeError(f"module 'agentflow' has no attribute {name!r}")
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentSpec",
    "AgentStream",
    "AgentTool",
    "AgentflowError",
    "AskHuman",
    "Budget",
    "ConfigError",
    "Conversation",
    "ConversationResult",
    "CycleError",
    "Event",
    "EventStream",
    "FunctionModel",
    "GroupChat",
    "HumanReply",
    "HumanRequest",
    "Limits",
    "Message",
    "Model",
    "ModelError",
    "ModelResponse",
    "ModelSettings",
    "ModelStep",
    "Outcome",
    "OutputValidationError",
    "Plan",
    "PlanMade",
    "PlanStep",
    "PlanStepChanged",
    "Review",
    "RunFinished",
    "Run",
    "RunResult",
    "RunStarted",
    "ScriptedModel",
    "Session",
    "SpeakerChosen",
    "Step",
    "StopRun",
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
    "ask_human",
    "get_model",
    "listening",
    "persona",
    "tool",
]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_FROM) | set(_MODULES))
