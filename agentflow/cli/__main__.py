"""`python -m agentflow.cli ...` is the `agentflow` command."""

from .main import main

raise SystemExit(main())
