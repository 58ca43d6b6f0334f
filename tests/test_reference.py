"""docs/reference.md is what the code says: regenerate it with `python scripts/reference.py`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_reference_page_is_up_to_date() -> None:
    done = subprocess.run([sys.executable, "scripts/reference.py", "--check"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_reference_lists_the_tools_each_mode_offers() -> None:
    page = (ROOT / "docs" / "reference.md").read_text()
    for tool in ("add_task", "reprioritize", "cancel_task", "new_agent"):
        assert f"**`{tool}`**" in page
    for record in ("RunResult", "TaskRecord", "WorkflowResult", "ConversationResult", "RunStarted", "HumanAsked"):
        assert f"### `{record}`" in page
