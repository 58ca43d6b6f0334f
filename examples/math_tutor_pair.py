"""The book's "Now, You Try!": a CodeAssistant and a UserProxy build a command-line math tutor.

The CodeAssistant can write, read and list files and run the tests, all inside one directory (a
new temporary one unless --dir is given), and is told nothing of the goal. The UserProxy has no
tools; it knows the goal, asks for the work piece by piece, checks it and ends the conversation
with its verdict. The conversation is printed as it happens, then a summary; at the end the
tests the assistant wrote are run once more, outside the conversation, to show they pass.

    python examples/math_tutor_pair.py                                                     # offline stand-in
    python examples/math_tutor_pair.py --model openai:gpt-4o-mini
    python examples/math_tutor_pair.py --base-url http://127.0.0.1:8080/v1 --constrained   # llama-server
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from _setup import models_for, parser
from agentflow.tools import Files, Tests
from rich.console import Console

from agentflow import Agent, Conversation, Limits, Model, UserProxy
from agentflow.cli.display import ConversationDisplay
from agentflow.models import RequestInfo, call

GOAL = """A command-line math tutor in Python, in tutor.py: `python tutor.py` asks the learner 5 arithmetic \
questions (+, - and * on numbers from 1 to 12), says after each answer whether it was right (and the right \
answer if not), does not crash when the answer is not a number, and prints the score at the end. It must have \
unit tests (unittest) in test_tutor.py, and they must pass."""

CODER = """You are CodeAssistant, a careful Python programmer. You work in one directory with your tools: \
write_file, read_file, list_files and run_tests. Write complete files (never fragments), keep code in \
tutor.py and tests in test_tutor.py (unittest.TestCase classes), and run the tests after every change. \
Report briefly what you did and what the tests said."""


def build(models: dict[str, Model], directory: Path) -> Conversation[str]:
    assistant = Agent("code_assistant", CODER, model=models["code_assistant"], max_steps=15,
                      tools=[*Files(directory).tools(), Tests(directory, requires_approval=False).tool()])
    proxy = UserProxy(GOAL, model=models["user_proxy"], max_steps=4,
                      instructions="Judge by what the assistant reports from run_tests; you cannot run code.")
    return Conversation(assistant, proxy, max_turns=14, limits=Limits(max_steps=120, max_seconds=900))


async def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--dir", default=None, help="work in this directory instead of a new temporary one")
    args = p.parse_args()
    models = models_for(args, {"code_assistant": assistant_stand_in, "user_proxy": proxy_stand_in})
    directory = Path(args.dir or tempfile.mkdtemp(prefix="math-tutor-")).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    print(f"working in {directory}\n")
    console = Console(highlight=False)
    display = ConversationDisplay(console)
    stream = build(models, directory).stream(deltas=True)
    async for event in stream:
        display.event(event)
    result = stream.result
    print("\n" + result.summary())
    report = await Tests(directory, requires_approval=False).run_tests()
    passed = report.startswith("exit code 0")
    print(f"\nthe assistant's tests, run again: {'PASSED' if passed else 'FAILED'}")
    print("\n".join(report.splitlines()[-3:]))
    print(f"files: {', '.join(sorted(p.name for p in directory.iterdir() if p.is_file()))}")
    return 0 if result.goal_met and passed else 1


# -- the offline stand-in: one function per participant plays its part ---------------------------------

TUTOR = '''"""A command-line math tutor: asks arithmetic questions and keeps the score."""

import random

OPERATIONS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


def make_problem(rng):
    """A question such as "7 * 8" and its answer."""
    a, b = rng.randint(1, 12), rng.randint(1, 12)
    op = rng.choice(sorted(OPERATIONS))
    return f"{a} {op} {b}", OPERATIONS[op](a, b)


def check(answer, given):
    """Whether the text the learner typed is the right answer (anything not a number is wrong)."""
    try:
        return int(given.strip()) == answer
    except ValueError:
        return False


def main(rounds=5, rng=None, ask=input, say=print):
    rng = rng or random.Random()
    score = 0
    for _ in range(rounds):
        question, answer = make_problem(rng)
        if check(answer, ask(f"{question} = ")):
            score += 1
            say("Right!")
        else:
            say(f"Not quite: {question} = {answer}")
    say(f"Score: {score}/{rounds}")
    return score


if __name__ == "__main__":
    main()
'''

TESTS = '''import random
import unittest

from tutor import check, main, make_problem


class TutorTest(unittest.TestCase):
    def test_problems_are_in_range_and_correct(self):
        rng = random.Random(1)
        for _ in range(200):
            question, answer = make_problem(rng)
            a, op, b = question.split()
            self.assertTrue(1 <= int(a) <= 12 and 1 <= int(b) <= 12)
            self.assertEqual(answer, eval(question))

    def test_check(self):
        self.assertTrue(check(12, " 12 "))
        self.assertFalse(check(12, "13"))
{more}
    def test_a_perfect_session(self):
        said, same = [], random.Random(7)
        replies = iter([str(make_problem(same)[1]) for _ in range(5)])
        score = main(rounds=5, rng=random.Random(7), ask=lambda _: next(replies), say=said.append)
        self.assertEqual(score, 5)
        self.assertEqual(said[-1], "Score: 5/5")


if __name__ == "__main__":
    unittest.main()
'''

NOT_A_NUMBER = '''
    def test_not_a_number_is_wrong_not_a_crash(self):
        self.assertFalse(check(4, "four"))
        said = []
        self.assertEqual(main(rounds=2, rng=random.Random(3), ask=lambda _: "?", say=said.append), 0)
        self.assertEqual(said[-1], "Score: 0/2")
'''


def turn_of(info: RequestInfo) -> tuple[int, int]:
    """(how many user messages so far, how many tool results since the last one)."""
    users = [i for i, m in enumerate(info.messages) if m.role == "user"]
    return len(users), sum(1 for m in info.messages[users[-1]:] if m.role == "tool")


def assistant_stand_in(info: RequestInfo) -> Any:
    turn, done = turn_of(info)
    tests = TESTS.format(more="" if turn == 1 else NOT_A_NUMBER)
    actions = [call("write_file", path="tutor.py", content=TUTOR), call("write_file", path="test_tutor.py",
                                                                          content=tests), call("run_tests")]
    if done < len(actions):
        return actions[done]
    report = (info.last.content or "").splitlines()
    summary = next((line for line in reversed(report) if "passed" in line or "failed" in line), report[-1])
    if turn == 1:
        return f"I wrote tutor.py (make_problem, check, main) and test_tutor.py. run_tests says: {summary}"
    return f"I added a test that a non-number answer counts as wrong without a crash. run_tests says: {summary}"


def proxy_stand_in(info: RequestInfo) -> Any:
    said = sum(1 for m in info.messages if m.role == "assistant")
    if said == 0:
        return ("Please write tutor.py: a command-line math tutor that asks 5 questions (+, - and * on numbers "
                "1 to 12), says whether each answer is right and prints the score. Add unittest tests in "
                "test_tutor.py and run them.")
    if said == 1:
        return ("Good. What happens when the learner types something that is not a number? It must count as "
                "wrong, not crash. Add a test for that and run the tests again.")
    return call("finish", summary="tutor.py asks 5 questions, handles non-numbers, and its 4 tests pass",
                goal_met=True, result="tutor.py and test_tutor.py; the tests pass")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
