"""The test command, run several times beside CPU hogs: a test that fails only under load is a defect.

    python scripts/suite_under_load.py [--times 3] [--hogs 2] [-- PYTEST ARGS]

Starts HOGS busy-loop processes, runs `python -m pytest` TIMES times, and prints each run's
outcome, its time and the load average; exits non-zero if any run failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--times", type=int, default=3)
    parser.add_argument("--hogs", type=int, default=2)
    parser.add_argument("pytest", nargs="*", help="arguments for pytest, after --")
    args = parser.parse_args()
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hogs)]
    failed = 0
    try:
        for n in range(1, args.times + 1):
            start = time.monotonic()
            done = subprocess.run([sys.executable, "-m", "pytest", *args.pytest], cwd=ROOT,
                                  capture_output=True, text=True)
            tail = [line for line in done.stdout.splitlines() if line.strip()][-1:]
            summary = next((line for line in reversed(done.stdout.splitlines()) if " in " in line and
                            ("passed" in line or "failed" in line)), tail[0] if tail else "")
            print(f"run {n}: exit {done.returncode}, {time.monotonic() - start:.0f} s, load {os.getloadavg()[0]:.1f}: "
                  f"{summary.strip()}", flush=True)
            if done.returncode != 0:
                failed += 1
                print("\n".join(line for line in done.stdout.splitlines() if line.startswith("FAILED")), flush=True)
    finally:
        for hog in hogs:
            hog.kill()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
