"""Testing agents: record a real model's calls once and replay them offline (`record`, `replay`, and
the `agent_cassette` pytest fixture). The scripted test models are in `agentflow.models`."""

from .cassette import CassetteMismatch, RecordingModel, ReplayModel, record, replay

__all__ = ["CassetteMismatch", "RecordingModel", "ReplayModel", "record", "replay"]
