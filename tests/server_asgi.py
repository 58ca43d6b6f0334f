"""An app mounted by hand (`uvicorn tests.server_asgi:api`): `agentflow.server.app` launching its own runtime."""

from __future__ import annotations

import os

from agentflow.models.defaults import set_default_model
from agentflow.server import app
from tests.server_app import calc, chat
from tests.server_model import model

set_default_model(model)
api = app([calc, chat], db=os.environ["SERVER_DB"])
