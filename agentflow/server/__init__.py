"""The REST API over durable runs (extra `agentflow[server]`: FastAPI and uvicorn).

    from agentflow.server import app
    api = app([travel, trip])            # an ASGI app: uvicorn, or mount it in your own FastAPI app

`agentflow serve FILE.py` runs it; see the README's "REST API" section for the endpoints.
"""

from importlib.util import find_spec

if missing := [m for m in ("fastapi", "uvicorn") if find_spec(m) is None]:
    from ..core.errors import ConfigError

    raise ConfigError(f"agentflow.server needs FastAPI and uvicorn ({', '.join(missing)} not installed). Fix: "
                      "pip install 'agentflow[server]'")

from .app import app  # noqa: E402

__all__ = ["app"]
