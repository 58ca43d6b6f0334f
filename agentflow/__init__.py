"""agentflow: agents of agents and durable LLM workflows."""

from .agent import Agent, AgentStream
from .errors import AgentflowError, ConfigError, ModelError, OutputValidationError, ToolDefinitionError
from .limits import Budget, Limits
from .messages import Message, ModelResponse, TextDelta, ToolCall, ToolCallDelta, Usage
from .models import FunctionModel, Model, ModelSettings, ScriptedModel, get_model
from .result import ModelStep, RunResult, Step, ToolStep
from .runner import StepRunner
from .tool import Tool, tool

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentStream",
    "AgentflowError",
    "Budget",
    "ConfigError",
    "FunctionModel",
    "Limits",
    "Message",
    "Model",
    "ModelError",
    "ModelResponse",
    "ModelSettings",
    "ModelStep",
    "OutputValidationError",
    "RunResult",
    "ScriptedModel",
    "Step",
    "StepRunner",
    "TextDelta",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolDefinitionError",
    "ToolStep",
    "Usage",
    "get_model",
    "tool",
]
