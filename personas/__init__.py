"""The shipped personas (Markdown files), loaded by `agentflow.persona`."""
