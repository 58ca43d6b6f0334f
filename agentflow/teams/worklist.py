"""The LLM-managed worklist: the supervisor adds, reprioritises and cancels tasks through tools;
a scheduler runs the highest-priority ready tasks concurrently; results arrive by themselves.

Dependencies form a networkx DAG (a cycle is refused, naming it). Every change is a
`WorklistChanged` event. The list is bounded (`max_tasks`, `concurrency`, the tree budget), and
`finish` is refused while tasks are still open, so nothing started is silently dropped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import functools
import itertools
import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..agent.delegation import without_context
from ..agent.grounding import marks, shows, specifics, words
from ..agent.loop import Agent, Run
from ..core.dag import CycleError, check_acyclic, new_graph
from ..core.errors import StopRun
from ..core.events import Event
from ..core.messages import Message
from ..core.result import RunResult, ToolStep
from ..core.tool import Tool, ToolError, to_observation
from ..models import Model
from ..models.base import ToolSpec
from ..runtime.guards import AlreadyAnswered, DelegationGuard, LoopDetected
from ..runtime.scope import Scope
from .spawn import NEW, AgentSpec

if TYPE_CHECKING:
    from .supervisor import Supervisor

T = TypeVar("T")
log = logging.getLogger("agentflow.worklist")
Status = Literal["pending", "running", "done", "failed", "cancelled", "blocked"]
Change = Literal["added", "reprioritized", "cancelled", "started", "done", "failed", "blocked"]

WORKLIST = (
    "You manage a worklist of tasks for task agents. Add tasks with add_task (each names its agent, a priority "
    "- higher runs sooner - and the ids of tasks whose results it needs); change priorities with reprioritize; "
    "drop tasks with cancel_task. Tasks run by themselves, several at once, and their results come to you as "
    "they finish, with the updated list: then add, reorder or cancel tasks as the results suggest. An agent "
    "sees only its task, its context and the results of the tasks it depends on, so write tasks that stand "
    "alone. A request with several parts gets one task per part, and only the tasks it asks for. When no "
    "task is open, finish with the answer to the user's whole request, from the results. Only a request that "
    "needs no agent at all is answered at once. Agents:\n"
)
ALL_DONE = ("No task is open. The user asked: {request!r}. Check each part of that request against the results "
            "above: add a task for any part that no result answers; when every part is answered, finish with the "
            "answer.")  # the request beside the results: small models otherwise finish with the first part only
COMPOSE = ("Write the answer to the user's request from the results of its tasks, given below. Answer every part "
           "of the request. Use the results as they are: add no number or fact that they do not give. Reply with "
           "the answer only.")
WORKLIST_SPAWN = f'If no agent fits a task, set agent to "{NEW}" and describe the agent to make in new_agent.'


class WorkItem(BaseModel):
    """One task on the list and where it stands."""

    id: str
    description: str
    agent: str
    priority: int = 0
    depends_on: list[str] = Field(default_factory=list[str])
    status: Status = "pending"
    output: Any = None
    error: str | None = None


class WorklistChanged(Event):
    kind: Literal["worklist"] = "worklist"
    change: Change
    item: WorkItem


class Worklist:
    """The tasks, their dependency graph and the scheduler of one supervisor run."""

    def __init__(self, scope: Scope, sup: Supervisor[Any], request: str) -> None:
        self.scope, self.sup, self.request = scope, sup, request
        self.named = specifics(request)  # what the request names (see add and unasked)
        self.tools, self.factory = sup.tools, sup.factory
        self.concurrency, self.max_tasks = sup.concurrency, sup.max_tasks
        self.items: dict[str, WorkItem] = {}
        self.graph = new_graph()
        self.specs: dict[str, AgentSpec | BaseModel] = {}
        self.contexts: dict[str, str | None] = {}
        self.order: dict[str, int] = {}
        self.counter = itertools.count()
        self.running: dict[str, asyncio.Task[Any]] = {}
        self.news: list[str] = []  # ids whose outcome the supervisor has not seen yet
        self.arrived = asyncio.Event()
        self.halt: LoopDetected | None = None
        self.repeated: set[str] = set()  # done tasks added again once (see add)
        self.aliases: dict[str, str] = {}  # the id of a task refused as a repeat -> the done task it repeats
        self.unnamed: set[str] = set()  # agents a task was refused for: it named nothing of the request

    # -- what the supervisor's tools do ---------------------------------------------------------

    def add(self, id: str, description: str, agent: str, priority: int, depends_on: Sequence[str],
            context: str | None = None, new_agent: BaseModel | None = None) -> str:
        if not id.strip() or len(id) > 64:
            raise ToolError("a task id must be 1 to 64 characters, e.g. summary-1")
        note = ""
        results = (to_observation(i.output) for i in self.items.values() if i.status == "done")
        known = words(" ".join([*self.named, *results]))
        if self.named and not depends_on and not context and not words(description) & known:
            # an agent sees only its task: the 1.5B, asked for the weather in Oslo and Lima, added "Lookup the
            # capital city of Norway", and again after the refusal: the second time the agent gets the request
            if agent not in self.unnamed:
                self.unnamed.add(agent)
                raise ToolError(f"task {id!r} was not added: it names none of what the request names "
                                f"({', '.join(self.named)}). The agent sees only its task: write the part of the "
                                f"request that it answers, in the request's words. The request: {self.request!r}")
            description = self.request
            note = " Its description named nothing of the request again, so it is the request itself."
        same = _same(agent, description)
        if done := next((i for i in self.items.values()
                         if i.status == "done" and _same(i.agent, i.description) == same), None):
            # small models repeat their first add_task once the results are in: the answer is there
            if same in self.repeated:
                raise LoopDetected(f"the same task was added for {agent} again after being refused: "
                                   f"{description!r}")
            self.repeated.add(same)
            self.aliases[id] = done.id  # a task added beside it may name it as a dependency: it means the done one
            raise AlreadyAnswered(f"task {done.id!r} already did this, and its result is: "
                                  f"{to_observation(done.output)}. If the results answer the request, finish with "
                                  "the answer; otherwise add a task for what is still missing")
        copied = next((t.agent.name for t in self.tools.values() if _alike(description, t.agent.description)), None)
        if copied:
            # small models copy what an agent does as its task: the agent then has no question to answer
            refusal = (f"that is what agent {copied!r} can do, not a task for it. Write the question the request "
                       "asks of it, with the names, numbers and text it needs")
            done = [i for i in self.items.values() if i.status == "done"]
            if done and not self.open:
                # with every task done, the 1.5B repeated such a task to max_steps: steer it to its answer
                results = "; ".join(f"{i.id}: {to_observation(i.output)}" for i in done)
                raise AlreadyAnswered(f"{refusal}. The results so far are {results}. If they answer the request, "
                                      "finish with the answer")
            raise ToolError(refusal)
        if id in self.items:
            raise ToolError(f"there is already a task {id!r} ({self.items[id].status}); choose another id")
        depends_on = [self.aliases.get(d, d) for d in depends_on]
        if len(self.items) >= self.max_tasks:
            raise ToolError(f"the worklist is full (max_tasks={self.max_tasks}); finish with what you have")
        if agent == NEW and self.factory is not None:
            if new_agent is None:
                raise ToolError('agent is "new" but new_agent is missing: describe the agent to make')
            self.factory.build(new_agent)  # refuses tools outside the library now, not when the task starts
            self.specs[id] = new_agent
        elif agent not in self.tools:
            raise ToolError(f"there is no agent {agent!r}; agents: {', '.join(self.tools)}")
        self.graph.add_node(id)
        self.graph.add_edges_from((need, id) for need in depends_on)
        try:
            check_acyclic(self.graph, what="task")
        except CycleError as e:
            self.graph.remove_node(id)
            raise ToolError(f"task {id!r} was not added: {e}") from None
        self.items[id] = WorkItem(id=id, description=description, agent=agent, priority=priority,
                                  depends_on=list(depends_on))
        self.contexts[id] = context
        self.order[id] = next(self.counter)
        self.publish("added", self.items[id])
        return f"Added task {id}.{note}"

    def reprioritize(self, id: str, priority: int) -> str:
        item = self.get(id)
        if item.status != "pending":
            raise ToolError(f"task {id!r} is {item.status}; only pending tasks can be reprioritized")
        item.priority = priority
        self.publish("reprioritized", item)
        return f"Task {id} now has priority {priority}."

    def cancel(self, id: str, reason: str) -> str:
        item = self.get(id)
        if item.status not in ("pending", "running", "blocked"):
            raise ToolError(f"task {id!r} is already {item.status}")
        item.status, item.error = "cancelled", reason
        if task := self.running.pop(id, None):
            task.cancel()
        self.publish("cancelled", item)
        self.settle()
        return f"Cancelled task {id}."

    def get(self, id: str) -> WorkItem:
        if id not in self.items:
            raise ToolError(f"there is no task {id!r}; tasks: {', '.join(self.items) or 'none'}")
        return self.items[id]

    # -- the scheduler --------------------------------------------------------------------------

    def settle(self, *, turn_over: bool = False) -> None:
        """Block tasks that can never run, then start the best ready tasks in the free slots. A task
        may name one added later in the same turn, so unknown ids block it only once the turn is over."""
        for item in self.items.values():
            if item.status != "pending":
                continue
            unknown = [d for d in item.depends_on if d not in self.items] if turn_over else []
            lost = [d for d in item.depends_on if d in self.items and self.items[d].status in
                    ("failed", "cancelled", "blocked")]
            if unknown or lost:
                item.status = "blocked"
                item.error = f"depends on {', '.join(unknown + lost)}, which " + \
                    ("do not exist" if unknown else "did not finish")
                self.news.append(item.id)
                self.publish("blocked", item)
        ready = [i for i in self.items.values() if i.status == "pending"
                 and all(d in self.items and self.items[d].status == "done" for d in i.depends_on)]
        ready.sort(key=lambda i: (-i.priority, self.order[i.id]))
        for item in ready[:max(self.concurrency - len(self.running), 0)]:
            item.status = "running"
            task = asyncio.ensure_future(self.execute(item))
            self.running[item.id] = task
            task.add_done_callback(functools.partial(self.ended, item.id))
            self.publish("started", item)

    async def execute(self, item: WorkItem) -> Any:
        results = {d: self.items[d].output for d in item.depends_on}
        given = self.contexts[item.id]
        context: Any = ({"notes": given, **results} if given else results) if results else given
        return await self.sup.run_task(self.scope, f"task/{item.id}", item.agent, self.specs.get(item.id),
                                       item.description, context)

    def ended(self, id: str, task: asyncio.Task[Any]) -> None:
        if self.running.get(id) is not task:  # cancelled with cancel_task: already accounted for
            return
        del self.running[id]
        item = self.items[id]
        error = RuntimeError("the task was cancelled") if task.cancelled() else task.exception()
        if isinstance(error, LoopDetected):
            self.halt = error
        if error is None:
            item.status, item.output = "done", task.result()
        else:
            item.status, item.error = "failed", str(error)
        self.news.append(id)
        self.publish(item.status, item)  # type: ignore[arg-type]
        self.settle()
        self.arrived.set()

    async def wait(self) -> None:
        """Until a result arrives (at once if one is waiting or nothing runs)."""
        while not self.news and self.running:
            self.arrived.clear()
            await self.arrived.wait()

    @property
    def open(self) -> list[str]:
        return [i.id for i in self.items.values() if i.status in ("pending", "running")]

    def report(self) -> str:
        lines: list[str] = []
        for id in self.news:
            item = self.items[id]
            text = to_observation(item.output) if item.status == "done" else item.error
            lines.append(f"Task {id} ({item.agent}) {item.status}: {text}")
        self.news.clear()
        lines.append("Worklist:")
        lines += [f"- {i.id} [{i.status}] {i.agent}, priority {i.priority}"
                  f"{', needs ' + ', '.join(i.depends_on) if i.depends_on else ''}: {i.description}"
                  for i in self.items.values()]
        if self.items and not any(i.status in ("pending", "running") for i in self.items.values()):
            lines.append(ALL_DONE.format(request=self.request))
        return "\n".join(lines)

    def left_out(self, answer: str) -> list[WorkItem]:
        """The done tasks whose result the answer shows nothing of (a number, a name or a longer word of the
        result that the request does not hold): small models answer the first part only. A task whose result a
        task that depends on it shows is exempt: its result is on the way to the answer (a dependency that
        carries nothing over does not count; the 1.5B made its capital task depend on its 25*4 task)."""
        asked = words(self.request)
        done = {i.id: marks(to_observation(i.output)) - asked for i in self.items.values() if i.status == "done"}
        carried = {d for i in self.items.values() if i.id in done for d in i.depends_on
                   if d in done and shows(to_observation(i.output), done[d])}
        return [self.items[id] for id, own in done.items() if id not in carried and own and not shows(answer, own)]

    def unasked(self, answer: str) -> list[str]:
        """What the request names (names, numbers, quoted text) that no task and not the answer covers: the
        1.5B, asked to "reverse the string 'worklist', and compute 99 + 1", added the reversal only."""
        covered = words(" ".join([answer, *(i.description for i in self.items.values())]))
        return [s for s in self.named if not words(s) <= covered]

    def unfounded(self, answer: str) -> list[str]:
        """Numbers in the answer that no result and not the request holds: small models write a count
        that contradicts the result they were shown ("8 words" with 4 in the results)."""
        known = " ".join([self.request, *(to_observation(i.output) for i in self.items.values() if i.status == "done")])
        have = set(_NUMBER.findall(known))
        return [n for n in dict.fromkeys(_NUMBER.findall(answer)) if n not in have] if self.items else []

    def publish(self, change: Change, item: WorkItem) -> None:
        self.scope.publish(WorklistChanged(agent=self.scope.path, change=change, item=item.model_copy()))

    def stop(self) -> None:
        for task in self.running.values():
            task.cancel()
        self.running.clear()


_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.]*\d)")


def _alike(description: str, about: str) -> bool:
    """A task description that only restates an agent's description (up to case, punctuation and a
    few letters: "Count the words" for "Counts the words")."""
    words = [re.sub(r"\W+", " ", text.lower()).split() for text in (description, about)]
    return bool(words[1]) and difflib.SequenceMatcher(None, " ".join(words[0]), " ".join(words[1])).ratio() >= 0.9


def _same(agent: str, description: str) -> str:
    """What makes two tasks the same task: the agent, and the description up to case and spacing."""
    return f"{agent}\n{' '.join(description.lower().split())}"


class _AddTask(Tool[Any]):
    def spec_for(self, model: Model) -> ToolSpec:
        return without_context(self.spec, model)


class _Brain(Agent[Any]):
    """The supervisor's loop over a worklist: between turns it waits for results and shows them."""

    def __init__(self, worklist: Worklist, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.worklist = worklist

    async def before_turn(self, run: Run[Any]) -> None:
        self.worklist.settle(turn_over=True)
        await self.worklist.wait()
        if self.worklist.halt is not None:
            raise StopRun("loop", str(self.worklist.halt))
        if self.worklist.news or self.worklist.running:
            run.messages.append(Message.user(self.worklist.report()))

    def refuse_finish(self, run: Run[Any]) -> str | None:
        if open := self.worklist.open:
            return (f"Tasks {', '.join(open)} are still open; their results will come to you by themselves. "
                    "Wait for them, or cancel them, before you answer.")
        if self.worklist.news:  # results came in while the model wrote this answer: it has not seen them
            return "Results arrived that you have not seen yet; read them, then answer."
        return None

    def review(self, run: Run[Any], output: Any) -> str | None:
        answer = to_observation(output)
        left, invented = self.worklist.left_out(answer), self.worklist.unfounded(answer)
        unasked = self.worklist.unasked(answer)
        notes = [super().review(run, output)]
        if unasked:
            notes.append(f"Not done: the request also names {', '.join(map(repr, unasked))}, which no task and not "
                         "your answer covers. Add a task for that part of the request, then answer every part.")
        if invented:
            notes.append(f"Not done: {', '.join(map(repr, invented))} is in no result and not in the request. Answer "
                         "with the numbers the results give, then call `finish` again.")
        if left:
            dropped = "; ".join(f"task {i.id} ({to_observation(i.output)})" for i in left)
            notes.append(f"Not done: your answer leaves out the result of {dropped}. Answer every part of the request "
                         "from the results, then call `finish` again.")
        return " Also: ".join(n for n in reversed(notes) if n) or None


class WorklistMode(Generic[T]):
    """One worklist-mode run of a supervisor."""

    def __init__(self, sup: Supervisor[T], scope: Scope, task: str, history: Sequence[Message] | None) -> None:
        self.sup, self.scope, self.task, self.history = sup, scope, task, history
        scope.guard = scope.guard or DelegationGuard()
        self.worklist = Worklist(scope, sup, task)

    async def run(self) -> RunResult[T]:
        sup = self.sup
        brain = _Brain(self.worklist, sup.name, sup.prompt(WORKLIST + sup.roster(), WORKLIST_SPAWN),
                       tools=self.tools(), model=sup.model, output=sup.output, settings=sup.settings,
                       max_steps=sup.max_steps, ends_with="text" if sup.output in (None, str) else "finish")
        try:
            result = await brain.run_in(self.scope.within("worklist"), self.task, self.history)
            return await self.mended(result)  # type: ignore[return-value]
        finally:
            self.worklist.stop()

    async def mended(self, result: RunResult[Any]) -> RunResult[Any]:
        """The run's answer, or one written afresh from the results when the model's leaves a result out or
        gives a number no result holds (told so once, small models finish the same way again: the 1.5B did in
        4 of 18 worklist runs), or when it re-added a finished task until the loop guard ended the run. The
        fresh call sees only the request and the results, not the turns before; its answer stands if it holds
        no number the results do not give, shows at least one result, and leaves out no more than the model's
        did (a task that answers no part of the request may be left out: the 1.5B adds such tasks)."""
        worklist = self.worklist
        done = [i for i in worklist.items.values() if i.status == "done"]
        if self.sup.output not in (None, str) or not done or worklist.open:
            return result
        missed = total = len(worklist.left_out(""))  # the final results; a loop's end shows none of them
        if result.stop_reason == "finish":
            told = any(isinstance(s, ToolStep) and s.error == "ungrounded" for s in result.steps)
            answer = to_observation(result.output)
            missed = len(worklist.left_out(answer))
            if not told or (not missed and not worklist.unfounded(answer)):
                return result
        elif result.stop_reason != "loop":
            return result
        writer: Agent[str] = Agent(self.sup.name, COMPOSE, model=self.sup.model, settings=self.sup.settings,
                                   max_steps=1, ends_with="text")
        results = "\n".join(f"- {i.description}: {to_observation(i.output)}" for i in done)
        try:
            written = await writer.run_in(self.scope.within("worklist/answer"),
                                          f"Request: {worklist.request}\nResults:\n{results}")
        except Exception as e:  # noqa: BLE001 (the run's own answer, paid for, stands)
            log.info("the answer written from the results failed (%s); the model's stands", e)
            return dataclasses.replace(result, usage=self.scope.budget.usage)
        text = written.output
        if (not written.ok or not isinstance(text, str) or worklist.unfounded(text) or worklist.unasked(text)
                or len(worklist.left_out(text)) > min(missed, total - 1)):
            return dataclasses.replace(result, usage=self.scope.budget.usage)
        return dataclasses.replace(result, output=text, stop_reason="finish", detail="", usage=self.scope.budget.usage,
                                   steps=[*result.steps, *written.steps])

    def tools(self) -> list[Tool[Any]]:
        worklist, sup = self.worklist, self.sup
        spec: Any = sup.factory.spec if sup.factory else None

        fields: dict[str, Any] = {  # the agent first: the task is then written for it (small models wrote one
            # task for two agents' parts and gave it to one of them)
            "agent": (sup.agent_names(), Field(description="The agent that does it")),
            "id": (str, Field(description="A short unique id you choose, e.g. summary-1")),
            "description": (str, Field(description="The task for this agent alone, complete and self-contained: "
                                                   "the question for it, with the names, numbers and text it needs")),
            "priority": (int, Field(default=0, description="Higher runs sooner")),
            "depends_on": (list[str], Field(default_factory=list[str],
                                            description="ids of tasks whose results it needs")),
            "context": (str | None, Field(default=None, description="Facts it needs besides those results")),
        }
        if spec is not None:
            about = f'The agent to make if agent is "{NEW}"'
            fields["new_agent"] = (spec | None, Field(default=None, description=about))

        async def add_task(**arguments: Any) -> str:
            return worklist.add(**arguments)

        add = _AddTask(add_task, description="Add a task to the worklist.",
                       args_model=create_model("add_task_arguments", __config__=ConfigDict(extra="forbid"), **fields))

        async def reprioritize(id: Annotated[str, "The task's id"],
                               priority: Annotated[int, "Higher runs sooner"]) -> str:
            """Change the priority of a pending task."""
            return worklist.reprioritize(id, priority)

        async def cancel_task(id: Annotated[str, "The task's id"],
                              reason: Annotated[str, "Why, in a few words"]) -> str:
            """Cancel a task that is pending or running."""
            return worklist.cancel(id, reason)

        made = [add, Tool(reprioritize), Tool(cancel_task)]
        for t in made:  # cheap state changes, replayed by re-running them, not journaled
            t.journaled = False
        return made

