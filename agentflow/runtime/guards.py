"""Every repetition check in one place: small models repeat themselves, and each kind of run
catches it its own way.

- A tool call that repeats an earlier one, result and all, gets a note saying so (`noted_if_repeated`).
- A task delegated again to the agent that answered it is refused with the answer; asked again
  after a refusal, the calling run stops with `stop_reason="loop"` (`DelegationGuard`).
- A conversation message that adds nothing (empty, a farewell, a near-repeat) is `stale_reason`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from difflib import SequenceMatcher
from typing import Any

from ..core.messages import ToolCall
from ..core.result import ToolStep
from ..core.tool import ToolError, to_observation

# -- a tool call repeated -------------------------------------------------------------------------

REPEATED = ("\n(You made this same call before and got this same result. Do not repeat it: if the result answers "
            "the task, call `finish` with the answer now; otherwise take a different action.)")

FAILED_AGAIN = ("\n(You made this same call before and it failed the same way. Do not repeat it: change the "
                "arguments, or take a different action.)")


def _plain(observation: str) -> str:
    return observation.removesuffix(REPEATED).removesuffix(FAILED_AGAIN)


def _arguments(call: ToolCall) -> Any:
    try:
        return json.loads(call.arguments or "{}")
    except ValueError:
        return call.arguments


def noted_if_repeated(earlier: Sequence[ToolStep], step: ToolStep) -> ToolStep:
    """`step`, with a note when an earlier call was the same, arguments and result: not only the last one
    (the 1.5B alternated capital("Oslo") and capital("Lima") until max_steps)."""
    arguments = _arguments(step.call)
    last = next((s for s in reversed(earlier) if s.call.name == step.call.name and _arguments(s.call) == arguments),
                None)
    if last is None or _plain(last.observation) != step.observation:
        return step
    return step.model_copy(update={"observation": step.observation + (FAILED_AGAIN if step.error else REPEATED)})


# -- a task delegated again -----------------------------------------------------------------------


class AlreadyAnswered(ToolError):
    """The same task was given to the same agent again after it answered: the answer is repeated."""


class LoopDetected(ToolError):
    """The same task was delegated again after being refused: the calling run stops (`stop_reason="loop"`)."""


class DelegationGuard:
    """One run's memory of what it delegated. A task that succeeded may not be handed out again
    (the answer is shown instead); one that failed may be retried once. Asking again after a
    refusal ends the run with `stop_reason="loop"`."""

    def __init__(self) -> None:
        self._attempts: dict[str, int] = {}
        self._refused: dict[str, int] = {}
        self._answers: dict[str, Any] = {}
        self._running: set[str] = set()

    def begin(self, agent: str, task: str, context: Any) -> str:
        key = f"{agent}\n{' '.join(task.lower().split())}\n{to_observation(context) if context is not None else ''}"
        refusal = self._refusal(agent, key)
        if refusal is not None:
            self._refused[key] = self._refused.get(key, 0) + 1
            if self._refused[key] > 1:
                raise LoopDetected(f"the same task was delegated to {agent} again after being refused: {task!r}")
            raise (AlreadyAnswered if key in self._answers else ToolError)(refusal)
        self._attempts[key] = self._attempts.get(key, 0) + 1
        self._running.add(key)
        return key

    def end(self, key: str, answer: Any) -> None:
        self._running.discard(key)
        if answer is not None:
            self._answers[key] = answer

    def _refusal(self, agent: str, key: str) -> str | None:
        if key in self._running:
            return f"{agent} is already working on this exact task; its result will come back once. Do not repeat it."
        if key in self._answers:
            return (f"You already gave {agent} this exact task and it answered: {to_observation(self._answers[key])}. "
                    "Use that answer (finish with it if it completes the request); do not ask again.")
        if self._attempts.get(key, 0) >= 2:
            return (f"{agent} failed this exact task twice. Change the task, give it to another agent, "
                    "or finish with what you have.")
        return None


# -- a conversation message that adds nothing -----------------------------------------------------


FILLER = frozenset("""
a again all alright also and any anything anytime appreciate appreciated as ask assist assistance awesome be been
best bet bye can care cheers could course day do don't done else enjoy evening feel fine for free from further
get glad go good goodbye great happy have help helped helpful helps hesitate hope i i'll i'm if it it's just know
later let likewise luck me more much my need next nice no not now of oh ok okay on other our out perfect pleasure
problem question questions reach ready really same see set sir so soon sure take talk thank thanks that that's
the there this time to too until up very was we welcome well what whenever will wish with wonderful work working
you you're you've your yours yw
""".split())


FAREWELL = frozenset("bye goodbye thanks thank welcome bet cheers care pleasure anytime luck later soon glad "
                     "appreciate appreciated day evening questions hesitate free".split())


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def stale_reason(text: str, recent: Sequence[str]) -> str | None:
    """Why a message adds nothing (empty, a farewell, a near-repeat of a recent message), or None."""
    words = _words(text)
    if not words:
        return "an empty message"
    if len(words) <= 30 and FAREWELL.intersection(words) and FILLER.issuperset(words):
        return "a farewell"
    norm = " ".join(words)[:2000]
    for before in recent:
        other = " ".join(_words(before))[:2000]
        if min(len(norm), len(other)) < 40:  # short: a one-word change is a different message
            if norm == other:
                return "a repeat"
            continue
        matcher = SequenceMatcher(None, norm, other, autojunk=False)
        if matcher.real_quick_ratio() >= 0.9 and matcher.quick_ratio() >= 0.9 and matcher.ratio() >= 0.9:
            return "a repeat"
    return None
