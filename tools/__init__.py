"""Ready-made tools, installed as `agentflow.tools`."""

from .calculator import calculator, evaluate

__all__ = ["calculator", "evaluate"]
