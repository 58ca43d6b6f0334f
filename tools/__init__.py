"""Ready-made tools, installed as `agentflow.tools`. Safe by default: files stay under a root,
shell and Python ask for approval and time out, `fetch` reaches only hosts you allow."""

from .calculator import calculator, evaluate
from .catalog import ToolConfig, known, toolset
from .clock import add_days, days_between, now
from .files import Files, files
from .process import Python, Shell, Tests, python, shell, tests
from .web import Fetch, fetch, html_text

__all__ = [
    "Fetch",
    "Files",
    "Python",
    "Shell",
    "Tests",
    "ToolConfig",
    "add_days",
    "calculator",
    "days_between",
    "evaluate",
    "fetch",
    "files",
    "html_text",
    "known",
    "now",
    "python",
    "shell",
    "tests",
    "toolset",
]
