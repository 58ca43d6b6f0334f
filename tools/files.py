"""Files under one root directory: read, list, find and write, never outside it.

Every path the model gives is resolved (symlinks too) and must land inside `root`; anything
else is refused with a message that names the root, so the model can correct itself.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Annotated, Any

from agentflow.core.tool import Tool, ToolError

SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", ".venv", "node_modules", ".mypy_cache", ".pytest_cache"}


class Files:
    """File tools confined to `root`. `max_bytes` bounds a read; `writable=False` leaves out
    `write_file`; `max_results` bounds a listing or a search."""

    def __init__(self, root: str | os.PathLike[str] = ".", *, max_bytes: int = 100_000, writable: bool = True,
                 max_results: int = 200) -> None:
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise ValueError(f"the files root {self.root} is not a directory; create it or pass another root")
        self.max_bytes, self.writable, self.max_results = max_bytes, writable, max_results

    def resolve(self, path: str) -> Path:
        """The real path of `path` (relative to the root, or absolute inside it); ToolError if outside."""
        target = (self.root / path).resolve()
        if target != self.root and not target.is_relative_to(self.root):
            raise ToolError(f"{path!r} is outside the working directory {self.root}; use a path inside it "
                            "(relative paths start there)")
        return target

    def show(self, path: Path) -> str:
        return "." if path == self.root else path.relative_to(self.root).as_posix()

    def read_file(self, path: Annotated[str, "the file, relative to the working directory"]) -> str:
        """Read a text file."""
        target = self.resolve(path)
        if not target.is_file():
            raise ToolError(f"there is no file {self.show(target)!r}; list_files shows what exists")
        with target.open("rb") as f:
            data = f.read(self.max_bytes + 1)
        if b"\0" in data[:8192]:
            raise ToolError(f"{self.show(target)!r} is a binary file, not text")
        text = data[: self.max_bytes].decode("utf-8", errors="replace")
        if len(data) > self.max_bytes:
            text += f"\n[... cut at {self.max_bytes} bytes of {target.stat().st_size}]"
        return text

    def list_files(self, path: Annotated[str, "the directory, relative to the working directory"] = ".") -> str:
        """List a directory: sub-directories end with '/', files show their size in bytes."""
        target = self.resolve(path)
        if not target.is_dir():
            raise ToolError(f"there is no directory {self.show(target)!r}")
        entries = sorted(target.iterdir(), key=lambda p: (not p.is_dir(), p.name))
        lines = [f"{p.name}/" if p.is_dir() else f"{p.name}  {p.stat().st_size}" for p in entries
                 if p.is_dir() or p.is_file()]
        return _capped(lines, self.max_results) or f"{self.show(target)!r} is empty"

    def find_files(self, pattern: Annotated[str, "a file name pattern such as *.py or test_*"],
                   containing: Annotated[str | None, "only files whose text contains this"] = None,
                   path: Annotated[str, "the directory to search, relative to the working directory"] = ".") -> str:
        """Find files by name pattern under a directory, optionally only those containing some text."""
        start = self.resolve(path)
        found: list[str] = []
        for folder, dirs, names in os.walk(start):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
            for name in sorted(names):
                file = Path(folder) / name
                if not fnmatch.fnmatch(name, pattern) or not file.resolve().is_relative_to(self.root):
                    continue
                if containing is not None and not _contains(file, containing, self.max_bytes * 10):
                    continue
                found.append(self.show(file))
                if len(found) > self.max_results:
                    return _capped(found, self.max_results)
        return "\n".join(found) or f"no file matches {pattern!r}" + (f" containing {containing!r}" if containing
                                                                     else "")

    def write_file(self, path: Annotated[str, "the file, relative to the working directory"],
                   content: Annotated[str, "the whole new content of the file"]) -> str:
        """Write a text file (created with its directories if missing, replaced if it exists)."""
        target = self.resolve(path)
        if target.is_dir():
            raise ToolError(f"{self.show(target)!r} is a directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        return f"wrote {len(content.encode())} bytes to {self.show(target)}"

    def tools(self) -> list[Tool[Any]]:
        made: list[Tool[Any]] = [Tool(self.read_file), Tool(self.list_files), Tool(self.find_files)]
        if self.writable:
            made.append(Tool(self.write_file))
        return made


def _capped(lines: list[str], limit: int) -> str:
    if len(lines) > limit:
        return "\n".join([*lines[:limit], f"[... more than {limit}; narrow the search]"])
    return "\n".join(lines)


def _contains(file: Path, text: str, limit: int) -> bool:
    try:
        with file.open("rb") as f:
            return text.encode() in f.read(limit)
    except OSError:
        return False


def files(root: str | os.PathLike[str] = ".", **options: Any) -> list[Tool[Any]]:
    """`read_file`, `list_files`, `find_files` and `write_file`, confined to `root` (see `Files`)."""
    return Files(root, **options).tools()
