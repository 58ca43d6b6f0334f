"""OpenTelemetry traces (extra [otel]): every run, model call and tool call a span, drawn from the event stream.

`instrument()`, or a tracer provider set with OpenTelemetry's own `trace.set_tracer_provider`, turns it
on for the runs opened from then on. Each run's scope then holds a `RunTrace` that hears the run's own
events before anyone else: `RunStarted`...`RunFinished` make an `invoke_agent` span (`invoke_workflow`
for a workflow), a `ModelStep` a `chat` span, a `ToolStep` an `execute_tool` span and a workflow's task a
`task` span, named and attributed as the OpenTelemetry GenAI conventions say. A run started inside
another's tool call (an agent offered as a tool) or task is a child of that call's span, so the trace has
the agent tree's shape.

Steps carry when they began and how long they took, so their spans are made as they end, with their real
times. A tool call that runs agents needs its span before theirs: it opens when the first of them starts.
A durable run's top span links to its first attempt's (the runner keeps that span's ids with the run), and
steps its journal replays get no second span. Contents (the task, replies, tool arguments and results)
stay out unless asked for, and the values of secret-looking environment variables and bearer tokens are
cut from every text that goes in.

With tracing off, opening a top-level run costs one dictionary lookup (is OpenTelemetry loaded at all?)
and a child run one attribute check. OpenTelemetry is imported only by the functions that use it.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from .core.errors import ConfigError
from .core.events import Event, RunFinished, RunStarted
from .core.messages import Message
from .core.result import ModelFailed, ModelStep, ToolStep
from .runtime.runner import TRACE_NOTE as NOTE

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from .runtime.runner import StepRunner
    from .runtime.scope import Scope

CONTENT_ENV = ("AGENTFLOW_OTEL_CONTENT", "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")

OPERATION = "gen_ai.operation.name"
ERROR_TYPE = "error.type"

_mode = "auto"  # "auto": on while a global SDK tracer provider is set; "on": instrument(); "off": uninstrument()
_provider: TracerProvider | None = None
_capture: bool | None = None
_tracer: tuple[object, Tracer] | None = None  # the provider it came from, and the tracer

_TRY = re.compile(r"~try\d+")  # a retried workflow task's scope key: `<task>~try2`
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH", re.I)
_BEARER = re.compile(r"(?i)\b(bearer\s+)[\w.~+/=-]+")


def instrument(tracer_provider: TracerProvider | None = None, *, capture_content: bool | None = None) -> None:
    """Trace every run opened from now on, on `tracer_provider` (default: OpenTelemetry's global one).

    `capture_content=True` adds what was said: the task, the model's replies, tool arguments and
    results. It is off by default, and `$AGENTFLOW_OTEL_CONTENT=1` or the GenAI conventions'
    `$OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true` turn it on when it is not given."""
    global _mode, _provider, _capture, _tracer
    import importlib

    try:
        importlib.import_module("opentelemetry.trace")  # loaded: what open_scope looks for
    except ImportError:
        raise ConfigError("agentflow.telemetry.instrument() needs OpenTelemetry, which is not installed. Fix: "
                          "pip install 'agentflow[otel]'") from None
    _mode, _provider, _capture, _tracer = "on", tracer_provider, capture_content, None


def uninstrument() -> None:
    """No spans for runs opened from now on, even with a global tracer provider set."""
    global _mode, _provider, _tracer
    _mode, _provider, _tracer = "off", None, None


def trace_for(scope: Scope, parent: Scope | None) -> RunTrace | None:
    """The trace of a run opening in `scope` (a child of `parent`'s, when it has a parent), if tracing is on."""
    if parent is not None:
        assert parent.trace is not None
        return RunTrace(parent.trace.tracer, parent.trace.content, scope, parent.trace, parent.key, None)
    if (tracer := _current_tracer()) is None:
        return None
    from opentelemetry import context

    return RunTrace(tracer, _content(), scope, None, "", context.get_current())


def _current_tracer() -> Tracer | None:
    global _tracer
    if _mode == "off":
        return None
    from opentelemetry import trace

    provider = _provider or trace.get_tracer_provider()
    if _mode == "auto" and isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None  # nothing configured: no spans, and no cost past this check
    if _tracer is None or _tracer[0] is not provider:
        _tracer = (provider, provider.get_tracer("agentflow"))
    return _tracer[1]


def _content() -> bool:
    if _capture is not None:
        return _capture
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on") for name in CONTENT_ENV)


def secret_values() -> tuple[str, ...]:
    """The values of secret-looking environment variables (`*KEY*`, `*TOKEN*`, ...), longest first."""
    found = {v for k, v in os.environ.items() if len(v) >= 8 and _SECRET_NAME.search(k)}
    return tuple(sorted(found, key=len, reverse=True))


def clean(text: str, secrets: tuple[str, ...] | None = None) -> str:
    """`text` without bearer tokens or `secrets` (default: the environment's, read now)."""
    for value in secret_values() if secrets is None else secrets:
        if value in text:
            text = text.replace(value, "[redacted]")
    return _BEARER.sub(r"\1[redacted]", text)


class RunTrace:
    """One run's spans: its own, its model and tool calls', and (a workflow's) its tasks'.

    `up` is the parent run's trace and `at` the key of the scope this run opened in (one of its tool
    calls or tasks); a top-level run has `root`, the OpenTelemetry context it was opened in."""

    def __init__(self, tracer: Tracer, content: bool, scope: Scope, up: RunTrace | None, at: str,
                 root: Context | None) -> None:
        self.tracer, self.content, self.up, self.at, self.root = tracer, content, up, at, root
        self.path, self.key, self.runner = scope.path, scope.key, scope.runner
        self.began = time.time()  # a step that began before its run did (or was not timed) was replayed
        self.span: Span | None = None
        self.here: Context | None = None  # the context of `span`, made once
        self.tools: dict[str, Span] = {}  # tool calls' spans opened early, agents run inside them; by scope key
        self.tasks: dict[str, Span] = {}  # a workflow's tasks in progress, by id
        self.task_paths: dict[str, tuple[str, Span]] = {}  # the same, by the path their steps name: (id, span)
        self._secrets: tuple[str, ...] | None = None  # a top-level run's, read when first needed

    def clean(self, text: str) -> str:
        """`text` fit for a span: the secrets of the environment are read once for the whole tree of runs."""
        top = self
        while top.up is not None:
            top = top.up
        if top._secrets is None:
            top._secrets = secret_values()
        return clean(text, top._secrets)

    def emit(self, event: Event) -> None:
        """Hear an event: the run's own, or its workflow tasks'; those of runs below it have traces of their own."""
        if event.agent == self.path:
            if (handle := _HANDLERS.get(getattr(event, "kind", ""))) is not None:
                handle(self, event, None)
        elif self.task_paths and (task := self.task_paths.get(event.agent)) is not None:
            if (handle := _STEP_HANDLERS.get(getattr(event, "kind", ""))) is not None:
                handle(self, event, task[0])

    # -- where spans go ------------------------------------------------------------------------

    def context(self) -> Context:
        """The context of this run's span (or, before it has one, of what it runs under)."""
        if self.here is not None:
            return self.here
        if self.up is not None:
            return self.up.context_for(self.at)
        assert self.root is not None
        return self.root

    def context_for(self, key: str) -> Context:
        """The context of a run opened in this run's scope `key`: a tool call's span, a task's, or the run's."""
        from opentelemetry import trace

        key = _TRY.sub("", key)
        owner, tool, call_id = key.rpartition("/tool/")
        if tool and "/" not in call_id:
            span = self.tools.get(key)
            if span is None:  # named when the call ends (its step names the tool)
                span = self.tools[key] = self.tracer.start_span(
                    "execute_tool", self.context_for(owner), attributes={OPERATION: "execute_tool",
                                                                         "gen_ai.tool.call.id": call_id})
            return trace.set_span_in_context(span)
        if key.startswith(self.key + "/") and (span := self.tasks.get(key[len(self.key) + 1:])) is not None:
            return trace.set_span_in_context(span)
        return self.context()

    def _under(self, task: str | None) -> Context:
        from opentelemetry import trace

        if task is not None and (span := self.tasks.get(task)) is not None:
            return trace.set_span_in_context(span)
        return self.context()

    # -- the run ---------------------------------------------------------------------------------

    def started(self, event: Event, _: str | None) -> None:
        e = cast(RunStarted, event)
        name = self.path.rsplit("/", 1)[-1]
        workflow = e.task == f"workflow {name}"
        operation = "invoke_workflow" if workflow else "invoke_agent"
        attributes: dict[str, Any] = {OPERATION: operation, "agentflow.path": self.path}
        attributes["gen_ai.workflow.name" if workflow else "gen_ai.agent.name"] = name
        if self.up is None and isinstance(run_id := getattr(self.runner, "run_id", None), str):
            attributes["agentflow.run_id"] = run_id  # a durable run's id
        if self.content and not workflow:
            attributes["gen_ai.input.messages"] = self.clean(json.dumps([_text("user", e.task)]))
        from opentelemetry import trace

        self.span = self.tracer.start_span(f"{operation} {name}", self.context(), attributes=attributes)
        self.here = trace.set_span_in_context(self.span)
        if self.up is None:
            self._link_first_attempt(self.span, self.runner)

    @staticmethod
    def _link_first_attempt(span: Span, runner: StepRunner) -> None:
        from opentelemetry.trace import SpanContext, TraceFlags

        ctx = span.get_span_context()
        first = runner.note(NOTE, {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")})
        if isinstance(first, dict):
            try:
                linked = SpanContext(int(first["trace_id"], 16), int(first["span_id"], 16), is_remote=True,
                                     trace_flags=TraceFlags(TraceFlags.SAMPLED))
            except (KeyError, TypeError, ValueError):  # a note this code did not write
                return
            span.add_link(linked, {"agentflow.link": "first_attempt"})
            span.set_attribute("agentflow.resumed", True)

    def finished(self, event: Event, _: str | None) -> None:
        e = cast(RunFinished, event)
        span, self.span, self.here = self.span, None, None
        for left in [*self.tools.values(), *self.tasks.values()]:  # cut short by the run's end
            left.end()
        self.tools.clear()
        self.tasks.clear()
        self.task_paths.clear()
        if span is None:
            return
        span.set_attributes({"agentflow.stop_reason": e.stop_reason, "gen_ai.usage.input_tokens": e.usage.input_tokens,
                             "gen_ai.usage.output_tokens": e.usage.output_tokens})
        if self.content and e.output is not None:
            span.set_attribute("gen_ai.output.messages", self.clean(json.dumps([_text("assistant", str(e.output))])))
        if e.stop_reason == "error":
            _failed(span, _error_type(e.detail), self.clean(e.detail))
        span.end()

    # -- steps -----------------------------------------------------------------------------------

    def model(self, event: Event, task: str | None) -> None:
        e = cast(ModelStep, event)
        if e.started < self.began:  # replayed from a durable run's journal: the attempt that made it drew it
            return
        r = e.response
        provider, _, model = e.model.partition(":")
        attributes: dict[str, Any] = {
            OPERATION: "chat", "gen_ai.provider.name": provider, "gen_ai.request.model": model,
            "gen_ai.response.model": r.model or model, "gen_ai.usage.input_tokens": r.usage.input_tokens,
            "gen_ai.usage.output_tokens": r.usage.output_tokens, "gen_ai.response.finish_reasons": (r.finish_reason,)}
        if r.usage.cache_read_tokens:
            attributes["gen_ai.usage.cache_read.input_tokens"] = r.usage.cache_read_tokens
        if self.content:
            attributes["gen_ai.output.messages"] = self.clean(json.dumps([_said(r.message, r.finish_reason)]))
        self._step(f"chat {model}".strip(), task, attributes, e.started, e.seconds, kind="client")

    def model_failed(self, event: Event, task: str | None) -> None:
        e = cast(ModelFailed, event)
        provider, _, model = e.model.partition(":")
        attributes = {OPERATION: "chat", "gen_ai.provider.name": provider, "gen_ai.request.model": model}
        self._step(f"chat {model}".strip(), task, attributes, e.started, e.seconds, kind="client",
                   error=(e.error, self.clean(e.detail)))

    def tool(self, event: Event, task: str | None) -> None:
        e = cast(ToolStep, event)
        call = e.call
        attributes: dict[str, Any] = {OPERATION: "execute_tool", "gen_ai.tool.name": call.name,
                                      "gen_ai.tool.call.id": call.id, "gen_ai.tool.type": "function"}
        if self.content:
            attributes["gen_ai.tool.call.arguments"] = self.clean(call.arguments)
            attributes["gen_ai.tool.call.result"] = self.clean(e.observation)
        error = None if e.error is None else (e.error, attributes.get("gen_ai.tool.call.result", ""))
        early = self.tools.pop(f"{self.key}/{task}/tool/{call.id}" if task else f"{self.key}/tool/{call.id}",
                               None) if self.tools else None
        if early is not None:  # opened when an agent started inside the call
            early.update_name(f"execute_tool {call.name}")
            early.set_attributes(attributes)
            _end(early, e.started + e.seconds, error)
        elif e.started >= self.began:  # else replayed from the journal
            self._step(f"execute_tool {call.name}", task, attributes, e.started, e.seconds, error=error)

    def _step(self, name: str, task: str | None, attributes: dict[str, Any], started: float, seconds: float, *,
              kind: str = "internal", error: tuple[str, str] | None = None) -> None:
        from opentelemetry.trace import SpanKind

        span = self.tracer.start_span(name, self._under(task), SpanKind.CLIENT if kind == "client" else
                                      SpanKind.INTERNAL, attributes=attributes, start_time=_ns(started))
        _end(span, started + seconds, error)

    # -- a workflow's tasks ------------------------------------------------------------------------

    def task_started(self, event: Event, _: str | None) -> None:
        task, unit = cast(str, getattr(event, "task", "")), cast(str, getattr(event, "unit", ""))
        id = cast(str, getattr(event, "id", ""))
        span = self.tracer.start_span(f"task {task}", self._enclosing(id), attributes={
            "agentflow.task.name": task, "agentflow.task.id": id, "agentflow.task.unit": unit})
        self.tasks[id] = span
        self.task_paths[f"{self.path}/{id}"] = (id, span)

    def _enclosing(self, id: str) -> Context:
        """The span of the route, loop or fan-out a task runs in (`improve/2/draft` in `improve`), or the run's."""
        from opentelemetry import trace

        while (cut := max(id.rfind("/"), id.rfind("["))) > 0:
            id = id[:cut]
            if (span := self.tasks.get(id)) is not None:
                return trace.set_span_in_context(span)
        return self.context()

    def task_finished(self, event: Event, _: str | None) -> None:
        id = cast(str, getattr(event, "id", ""))
        span = self.tasks.pop(id, None)
        self.task_paths.pop(f"{self.path}/{id}", None)
        if span is None:
            return
        status, error = cast(str, getattr(event, "status", "")), cast("str | None", getattr(event, "error", None))
        span.set_attribute("agentflow.task.status", status)
        if (usage := getattr(event, "usage", None)) is not None:
            span.set_attributes({"gen_ai.usage.input_tokens": usage.input_tokens,
                                 "gen_ai.usage.output_tokens": usage.output_tokens})
        if status == "failed":
            _failed(span, _error_type(error or ""), self.clean(error or ""))
        span.end()


Handler = Callable[[RunTrace, Event, "str | None"], None]
_STEP_HANDLERS: dict[str, Handler] = {"model": RunTrace.model, "tool": RunTrace.tool,
                                      "model_error": RunTrace.model_failed}
_HANDLERS: dict[str, Handler] = {**_STEP_HANDLERS, "run_start": RunTrace.started, "run_end": RunTrace.finished,
                                 "task_start": RunTrace.task_started, "task_end": RunTrace.task_finished}


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _end(span: Span, at: float, error: tuple[str, str] | None) -> None:
    if error is not None:
        _failed(span, *error)
    span.end(end_time=_ns(at))


def _failed(span: Span, error_type: str, detail: str) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute(ERROR_TYPE, error_type)
    span.set_status(Status(StatusCode.ERROR, detail or None))  # cleaned by the caller


def _error_type(detail: str) -> str:
    """The exception's name from a detail `ModelError: ...`, else `error`."""
    head = detail.split(":", 1)[0].strip()
    return head if head.isidentifier() else "error"


def _text(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": text}]}


def _said(message: Message, finish_reason: str) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"type": "text", "content": message.content}] if message.content else []
    parts += [{"type": "tool_call", "id": c.id, "name": c.name, "arguments": c.arguments} for c in message.tool_calls]
    return {"role": "assistant", "parts": parts, "finish_reason": finish_reason}


class TraceParent:
    """ASGI middleware: a request's W3C `traceparent` (and `tracestate`) becomes the parent of the runs it
    starts, when tracing is on and nothing else (an ASGI instrumentation) has made a span current already."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or "opentelemetry.trace" not in sys.modules:
            return await self.app(scope, receive, send)
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
                   if k in (b"traceparent", b"tracestate")}
        from opentelemetry import context, propagate, trace

        if "traceparent" not in carrier or _current_tracer() is None or \
                trace.get_current_span().get_span_context().is_valid:
            return await self.app(scope, receive, send)
        token = context.attach(propagate.extract(carrier))
        try:
            await self.app(scope, receive, send)
        finally:
            context.detach(token)
