"""agentflow: agents of agents and durable LLM workflows."""

from .agent import Agent, AgentStream, EventStream
from .conversation import Conversation, ConversationResult, GroupChat, SpeakerChosen, Turn, UserProxy, Verdict
from .dag import CycleError
from .delegation import AgentTool
from .errors import AgentflowError, ConfigError, ModelError, OutputValidationError, ToolDefinitionError
from .events import Event, RunFinished, RunStarted, TextChunk
from .limits import Budget, Limits
from .messages import Message, ModelResponse, TextDelta, ToolCall, ToolCallDelta, Usage
from .models import FunctionModel, Model, ModelSettings, ScriptedModel, get_model
from .result import ModelStep, RunResult, Step, ToolStep
from .planning import Plan, PlanMade, PlanStep, PlanStepChanged, Review
from .runner import StepRunner
from .spawn import AgentSpec
from .supervisor import Session, Supervisor
from .tool import Tool, ToolError, tool
from .worklist import WorkItem, WorklistChanged

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
