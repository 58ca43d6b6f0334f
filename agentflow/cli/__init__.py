"""The `agentflow` command: `main.py` parses and dispatches; one module per subcommand."""

from .main import main

__all__ = ["main"]
