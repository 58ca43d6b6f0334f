"""The wheel installs `tools/` as `agentflow.tools` and `personas/` as package data, nothing top-level."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)],
                   check=True, capture_output=True)
    (path,) = out.glob("agentflow-*.whl")
    return path


def test_wheel_layout(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/", 1)[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"agentflow"}
    assert "agentflow/tools/calculator.py" in names
    assert "agentflow/personas/README.md" in names
    assert {f"agentflow/personas/{n}.md" for n in ("researcher", "writer", "editor", "coder", "planner", "analyst",
                                                  "tutor")} <= set(names)
    assert "agentflow/py.typed" in names


def test_installed_into_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    assert not (Path(site) / "tools").exists()
    # Dependencies come from this test's environment, appended after the fresh venv's own packages.
    deps = sysconfig.get_paths()["purelib"]
    probe = (f"import sys; sys.path.append({deps!r}); import agentflow, agentflow.tools, importlib.util; "
             "print(agentflow.__file__); print(agentflow.tools.calculator('6*7')); "
             "print(importlib.util.find_spec('tools')); from agentflow import persona; "
             "print(sorted(persona.personas()))")
    out = subprocess.run([str(python), "-c", probe], check=True, capture_output=True, text=True,
                         cwd=tmp_path).stdout.splitlines()
    assert out[0].startswith(site)
    assert out[1:] == ["42", "None", str(sorted(["analyst", "coder", "editor", "planner", "researcher", "tutor",
                                                  "writer"]))]
