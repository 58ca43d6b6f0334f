"""agentflow's adapter for the peer benchmark harness (shared/bench in the development workspace).

Runs with the project's own python; the harness puts its `_common` and `scenarios` modules on
PYTHONPATH. See benchmarks/README.md for the command.
"""
import os

import _common
import scenarios as S

import agentflow
from agentflow import Agent, tool
from agentflow.models.openai import OpenAIModel


@tool(name=S.LOOKUP_TOOL_NAME, description=S.LOOKUP_TOOL_DESCRIPTION)
async def lookup(key: str) -> str:
    return S.LOOKUP_RESULT


# AGENTFLOW_BENCH_OTEL=memory measures tracing on: every span goes to OpenTelemetry's in-memory exporter.
TRACED = os.environ.get("AGENTFLOW_BENCH_OTEL") == "memory"
if TRACED:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from agentflow import telemetry

    _provider = TracerProvider()
    _provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    telemetry.instrument(_provider)


# The scenarios' agents "loop until the model stops; return final text", like the raw_openai baseline:
# that is `ends_with="text"`. AGENTFLOW_BENCH_ENDS_WITH=finish measures the default `finish` protocol.
ENDS_WITH = os.environ.get("AGENTFLOW_BENCH_ENDS_WITH", "text")


class Impl:
    is_async = True

    def __init__(self, scn, base_url):
        model = OpenAIModel(S.MODEL_NAME, base_url=base_url, api_key=S.API_KEY)
        steps = scn["k"] + 5
        self.agent = Agent("agent", S.AGENT_INSTRUCTIONS, tools=[lookup], model=model, max_steps=steps,
                           ends_with=ENDS_WITH)
        worker = Agent("worker", S.WORKER_INSTRUCTIONS, tools=[lookup], model=model, max_steps=steps,
                       ends_with=ENDS_WITH)
        # Agents as tools: the 20 delegations of one reply run concurrently, usage rolls up.
        delegate = worker.as_tool(S.WORKER_TOOL_NAME, S.WORKER_TOOL_DESCRIPTION, context=None)
        self.supervisor = Agent("supervisor", S.SUPERVISOR_INSTRUCTIONS, tools=[delegate], model=model,
                                max_steps=steps, ends_with=ENDS_WITH)

    async def single(self):
        return (await self.agent.run(S.USER_PROMPT)).output

    async def fanout(self):
        return (await self.supervisor.run(S.SUPERVISOR_PROMPT)).output


if __name__ == "__main__":
    _common.main("agentflow_traced" if TRACED else "agentflow", f"agentflow=={agentflow.__version__}", Impl)
