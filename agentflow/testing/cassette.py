"""Record a real model's calls once, replay them offline: a real run becomes a regression test.

A cassette is a JSON-lines file: a header, then one line per model call with the request as the
model saw it (messages, tools, output schema, settings) and what came back (the reply with its
usage, and a stream's deltas). It holds nothing of the transport, so no key or header can leak
into it. A replay serves each recorded reply to the request that matches it: the next in order,
or, when agents call the model concurrently, any unserved one that matches exactly. A request
that matches none fails, naming the call and showing the difference from the one expected.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import AsyncIterator, Collection, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import TypeAdapter

from ..core.errors import AgentflowError, ConfigError
from ..core.messages import Message, ModelResponse, StreamEvent, TextDelta, ToolCallDelta
from ..models.base import Model, ModelSettings, OutputSpec, ToolSpec

Ignorable = Literal["system", "tools", "output", "settings"]
IGNORABLE: tuple[Ignorable, ...] = ("system", "tools", "output", "settings")
VERSION = 1
_EVENT: TypeAdapter[TextDelta | ToolCallDelta] = TypeAdapter(TextDelta | ToolCallDelta)


class CassetteMismatch(AgentflowError):
    """A replayed run sent a request the cassette does not hold: the prompt, the tools or the run changed."""


def request_record(messages: Sequence[Message], tools: Sequence[ToolSpec], output: OutputSpec | None,
                   settings: ModelSettings | None) -> dict[str, Any]:
    return {"messages": [m.model_dump(mode="json", exclude_defaults=True) for m in messages],
            "tools": [t.model_dump(mode="json") for t in tools],
            "output": output.model_dump(mode="json") if output is not None else None,
            "settings": settings.model_dump(mode="json", exclude_none=True) if settings is not None else {}}


class RecordingModel(Model):
    """Passes every call to `inner` and appends it, with its reply, to the cassette."""

    def __init__(self, inner: Model, path: str | Path) -> None:
        self.inner, self.path = inner, Path(path)
        self.provider, self.model_name = inner.provider, inner.model_name
        self.settings, self.replies_in_text = inner.settings, inner.replies_in_text
        self.path.parent.mkdir(parents=True, exist_ok=True)
        header = {"agentflow_cassette": VERSION, "model": inner.name, "replies_in_text": inner.replies_in_text}
        self.path.write_text(json.dumps(header) + "\n")

    def _write(self, request: dict[str, Any], response: ModelResponse, events: list[StreamEvent] | None) -> None:
        line: dict[str, Any] = {"request": request, "response": response.model_dump(mode="json")}
        if events is not None:
            line["events"] = [e.model_dump(mode="json") for e in events]
        with self.path.open("a") as f:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")

    async def request(self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = (),
                      output: OutputSpec | None = None, settings: ModelSettings | None = None) -> ModelResponse:
        response = await self.inner.request(messages, tools=tools, output=output, settings=settings)
        self._write(request_record(messages, tools, output, settings), response, None)
        return response

    async def stream(self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = (),
                     output: OutputSpec | None = None, settings: ModelSettings | None = None,
                     ) -> AsyncIterator[StreamEvent]:
        deltas: list[StreamEvent] = []
        async for event in self.inner.stream(messages, tools=tools, output=output, settings=settings):
            if isinstance(event, ModelResponse):
                self._write(request_record(messages, tools, output, settings), event, deltas)
            else:
                deltas.append(event)
            yield event


class ReplayModel(Model):
    """Serves a cassette's replies offline. `ignore`: parts of a request that may differ from the
    recorded one (`system` messages, `tools`, the `output` schema, `settings`)."""

    def __init__(self, path: str | Path, *, ignore: Collection[Ignorable] = ()) -> None:
        self.path = Path(path)
        if unknown := set(ignore) - set(IGNORABLE):
            raise ConfigError(f"replay(ignore=...): {sorted(unknown)} cannot be ignored. Fix: use some of "
                              f"{', '.join(IGNORABLE)}")
        self.ignore = set(ignore)
        try:
            lines = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
        except FileNotFoundError:
            raise ConfigError(f"there is no cassette at {self.path}. Fix: record one with record(model, "
                              f"{str(self.path)!r}) and a real model") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"{self.path} is not a cassette (line {e.lineno} is not JSON)") from None
        if not lines or lines[0].get("agentflow_cassette") != VERSION:
            raise ConfigError(f"{self.path} is not an agentflow cassette (its first line has no "
                              f'"agentflow_cassette": {VERSION})')
        self.provider, _, self.model_name = str(lines[0].get("model", "replay:")).partition(":")
        self.replies_in_text = bool(lines[0].get("replies_in_text", True))  # what the agents offer depends on it
        self.calls: list[dict[str, Any]] = lines[1:]
        self.served: list[bool] = [False] * len(self.calls)
        self.requests = 0

    @property
    def unserved(self) -> int:
        return self.served.count(False)

    def _shape(self, request: dict[str, Any]) -> dict[str, Any]:
        shaped = dict(request)
        if "system" in self.ignore:
            shaped["messages"] = [m for m in request["messages"] if m.get("role") != "system"]
        for part in ("tools", "output", "settings"):
            if part in self.ignore:
                shaped.pop(part, None)
        return shaped

    def _take(self, request: dict[str, Any]) -> dict[str, Any]:
        self.requests += 1
        wanted = self._shape(request)
        pending = [n for n, done in enumerate(self.served) if not done]
        match = next((n for n in pending if self._shape(self.calls[n]["request"]) == wanted), None)
        if match is None:
            if not pending:
                raise CassetteMismatch(f"model call {self.requests}: the cassette {self.path} holds "
                                       f"{len(self.calls)} calls and all were served. Fix: record it again if the "
                                       "run now makes more calls")
            expected = self._shape(self.calls[pending[0]]["request"])
            raise CassetteMismatch(f"model call {self.requests} does not match call {pending[0] + 1} of {self.path} "
                                   f"(nor any other not yet served):\n{_diff(expected, wanted)}\nFix: record the "
                                   f"cassette again, or replay with ignore= for changes that do not matter "
                                   f"({', '.join(IGNORABLE)})")
        self.served[match] = True
        return self.calls[match]

    async def request(self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = (),
                      output: OutputSpec | None = None, settings: ModelSettings | None = None) -> ModelResponse:
        call = self._take(request_record(messages, tools, output, settings))
        return ModelResponse.model_validate(call["response"])

    async def stream(self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = (),
                     output: OutputSpec | None = None, settings: ModelSettings | None = None,
                     ) -> AsyncIterator[StreamEvent]:
        call = self._take(request_record(messages, tools, output, settings))
        for event in call.get("events") or ():
            yield _EVENT.validate_python(event)
        yield ModelResponse.model_validate(call["response"])


def _diff(expected: dict[str, Any], got: dict[str, Any]) -> str:
    lines = difflib.unified_diff(json.dumps(expected, indent=1, sort_keys=True, ensure_ascii=False).splitlines(),
                                 json.dumps(got, indent=1, sort_keys=True, ensure_ascii=False).splitlines(),
                                 "recorded", "sent now", n=2, lineterm="")
    shown = list(lines)
    return "\n".join(shown[:60] + ([f"... {len(shown) - 60} more lines"] if len(shown) > 60 else []))


def record(model: Model | str, path: str | Path) -> RecordingModel:
    """`model` (a Model or a `provider:name` string), writing every call and reply to the cassette at `path`."""
    from ..models import get_model

    return RecordingModel(get_model(model), path)


def replay(path: str | Path, *, ignore: Collection[Ignorable] = ()) -> ReplayModel:
    """A model that serves the cassette at `path` offline (see ReplayModel)."""
    return ReplayModel(path, ignore=ignore)
