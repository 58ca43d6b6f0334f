"""The `agent_cassette` pytest fixture (registered as a pytest plugin when agentflow is installed).

    def test_weather(agent_cassette):
        model = agent_cassette("openai:gpt-4o-mini")       # or a Model, or nothing: the default model
        result = Agent("weather", tools=[lookup], model=model).run_sync("Weather in Oslo?")

The first run, with no cassette yet, records one with the real model at
`<test's folder>/cassettes/<test name>.jsonl`; later runs replay it offline. AGENTFLOW_CASSETTES=record
records again, =replay never records (a missing cassette fails). A replay that leaves recorded calls
unserved fails too: the run changed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

import pytest

from ..core.errors import ConfigError
from ..models.base import Model
from .cassette import Ignorable, RecordingModel, ReplayModel, record, replay

Cassette = Callable[..., Model]
MODES = ("auto", "record", "replay")


@pytest.fixture
def agent_cassette(request: pytest.FixtureRequest) -> Iterator[Cassette]:
    made: list[Model] = []
    mode = os.environ.get("AGENTFLOW_CASSETTES", "auto")
    if mode not in MODES:
        raise ConfigError(f"AGENTFLOW_CASSETTES={mode!r} is not known. Fix: use one of {', '.join(MODES)}")

    def cassette(model: str | Model | None = None, *, name: str | None = None,
                 ignore: Collection[Ignorable] = ()) -> Model:
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name or request.node.name)
        path = Path(request.path).parent / "cassettes" / f"{stem}.jsonl"
        if mode == "record" or (mode == "auto" and not path.exists()):
            made.append(_recording(model, path))
        else:
            made.append(replay(path, ignore=ignore))
        return made[-1]

    yield cassette
    for m in made:
        if isinstance(m, ReplayModel) and m.unserved:
            pytest.fail(f"the run made {m.requests} model calls; the cassette {m.path} holds {len(m.calls)}. "
                        "Fix: record it again (AGENTFLOW_CASSETTES=record) if the change is meant")


def _recording(model: str | Model | None, path: Path) -> RecordingModel:
    from ..models.defaults import default_model

    try:
        return record(model if model is not None else default_model(), path)
    except ConfigError as e:
        raise ConfigError(f"there is no cassette at {path} and no model to record one with: {e}") from None
