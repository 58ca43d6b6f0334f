"""Crash and resume for real: a subprocess is SIGKILLed at a chosen point and launched again.

The program (tests/durable_app.py) logs `start X` / `end X` around every model call, tool call
and workflow step. After the second launch the run must finish, every side effect that had
finished before the kill must not happen again, and the one cut short must happen once more.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests import programs

ROOT = Path(__file__).resolve().parent.parent


def launch(db: Path, scenario: str, log: Path, slow: str = "") -> subprocess.Popen[str]:
    env = {**os.environ, "SLOW": slow}
    proc = subprocess.Popen([sys.executable, "-m", "tests.durable_app", str(db), scenario, str(log)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    programs.started.append(proc)
    return proc


def wait_for(log: Path, line: str, proc: subprocess.Popen[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and line in log.read_text().splitlines():
            return
        if proc.poll() is not None:
            raise AssertionError(f"the program ended before {line!r}: {proc.communicate()}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"{line!r} never appeared in the log")


def finish(db: Path, scenario: str, log: Path) -> str:
    proc = launch(db, scenario, log)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return next(line for line in out.splitlines() if line.startswith("RESULT ")).removeprefix("RESULT ")


CASES = [
    ("agent", "model:worker:1", '"worker done after 3"'),        # mid-model-call
    ("agent", "tool:two", '"worker done after 3"'),              # mid-tool-call, beside a parallel call
    ("sub", "tool:three", '"boss: worker done after 3"'),        # inside a sub-agent
    ("sub", "model:worker:2", '"boss: worker done after 3"'),    # a sub-agent's model call
    ("parallel", "step:slow_part", '"hello+slow+quick"'),        # inside a parallel group
]


@pytest.mark.parametrize(("scenario", "kill_at", "expected"), CASES, ids=[f"{s}-{k}" for s, k, _ in CASES])
def test_a_killed_run_resumes_and_repeats_nothing_that_finished(tmp_path: Path, scenario: str, kill_at: str,
                                                                 expected: str) -> None:
    db, log = tmp_path / "runs.db", tmp_path / "effects.log"
    proc = launch(db, scenario, log, slow=kill_at)
    wait_for(log, f"start {kill_at}", proc)
    time.sleep(0.5)  # what runs beside the slow call finishes and is journaled; the slow one sleeps on
    before = Counter(log.read_text().splitlines())
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    assert finish(db, scenario, log) == expected
    after = Counter(log.read_text().splitlines())
    ends = {line: n for line, n in after.items() if line.startswith("end ")}
    assert ends and all(n == 1 for n in ends.values()), ends  # every finished call ran exactly once
    assert after[f"start {kill_at}"] == 2  # the one cut short ran again
    repeated = {line for line in after if line.startswith("start ") and after[line] > before[line]}
    assert repeated <= {f"start {kill_at}"} | {line for line in after if before[line] == 0}


def test_a_run_waiting_for_approval_survives_a_restart_and_is_approved_from_the_cli(tmp_path: Path) -> None:
    db, log = tmp_path / "runs.db", tmp_path / "effects.log"
    url = f"sqlite:///{db}"
    cli = [sys.executable, "-m", "agentflow.cli", "runs", "--db", url]
    proc = launch(db, "approval", log)
    wait_for(log, "end model:deployer:0", proc)
    shown = subprocess.run([*cli, "show", "r-approval"], capture_output=True, text=True, cwd=ROOT)
    for _ in range(200):
        if "waiting  [approval]" in shown.stdout:
            break
        time.sleep(0.05)
        shown = subprocess.run([*cli, "show", "r-approval"], capture_output=True, text=True, cwd=ROOT)
    assert "May deployer call deploy" in shown.stdout and "agentflow runs approve r-approval" in shown.stdout
    proc.kill()  # the process dies while the run waits
    proc.wait()
    listed = subprocess.run([*cli, "list"], capture_output=True, text=True, cwd=ROOT)
    assert "r-approval  waiting" in listed.stdout

    again = launch(db, "approval", log)  # resumes, and waits again
    time.sleep(1.0)
    assert again.poll() is None
    approved = subprocess.run([*cli, "approve", "r-approval"], capture_output=True, text=True, cwd=ROOT)
    assert approved.returncode == 0 and "approved deployer/approve/d1" in approved.stdout
    out, err = again.communicate(timeout=60)
    assert 'RESULT "deployed 1.2"' in out, err
    lines = log.read_text().splitlines()
    assert lines.count("end model:deployer:0") == 1 and lines.count("end tool:deploy:1.2") == 1
    shown = subprocess.run([*cli, "show", "r-approval"], capture_output=True, text=True, cwd=ROOT)
    assert "status   done" in shown.stdout and "deployer/tool/d1 [tool]" in shown.stdout


def test_the_cli_names_a_missing_run(tmp_path: Path) -> None:
    cli = [sys.executable, "-m", "agentflow.cli", "runs", "--db", f"sqlite:///{tmp_path}/runs.db"]
    shown = subprocess.run([*cli, "show", "nope"], capture_output=True, text=True, cwd=ROOT)
    assert shown.returncode == 2 and "the file does not exist (durable.launch() creates it)" in shown.stderr
    proc = launch(tmp_path / "runs.db", "parallel", tmp_path / "effects.log")
    assert proc.wait(timeout=60) == 0
    shown = subprocess.run([*cli, "show", "nope"], capture_output=True, text=True, cwd=ROOT)
    assert shown.returncode == 2 and "there is no run 'nope'" in shown.stderr
    after = subprocess.run([*cli[:4], "show", "nope", *cli[4:]], capture_output=True, text=True, cwd=ROOT)
    assert after.returncode == 2 and "there is no run 'nope'" in after.stderr  # --db after the action works too
