"""HTTP fetch limited to hosts you allow, with a size limit: the model cannot wander the network.

An empty allowlist (the default) refuses every URL, and says how to allow a host. Redirects
are followed by hand so each hop is checked against the allowlist too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html.parser import HTMLParser
from typing import Annotated, Any
from urllib.parse import urljoin, urlsplit

import httpx

from agentflow.core.tool import Tool, ToolError

MAX_REDIRECTS = 5


class Fetch:
    """The `fetch` tool. `allow_hosts` holds host names (`example.com`) or wildcards
    (`*.example.com`, which also matches `example.com`); `max_bytes` bounds what is read."""

    def __init__(self, allow_hosts: Sequence[str] = (), *, max_bytes: int = 200_000, timeout: float = 15.0) -> None:
        self.allow_hosts = [h.lower().strip() for h in allow_hosts]
        self.max_bytes, self.timeout = max_bytes, timeout

    def allowed(self, host: str) -> bool:
        host = host.lower()
        for pattern in self.allow_hosts:
            if pattern.startswith("*."):
                if host == pattern[2:] or host.endswith(pattern[1:]):
                    return True
            elif host == pattern:
                return True
        return False

    def check(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ToolError(f"{url!r} is not an http(s) URL")
        host = parts.hostname or ""
        if not self.allowed(host):
            allowed = ", ".join(self.allow_hosts) or "none"
            raise ToolError(f"fetching from {host!r} is not allowed (allowed hosts: {allowed}). The user can allow "
                            "it with Fetch(allow_hosts=[...]) or `agentflow chat --allow-host HOST`")

    async def fetch(self, url: Annotated[str, "the http(s) URL to get"]) -> str:
        """Get a web page or file by URL and return its text (HTML is reduced to its text)."""
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                self.check(url)
                async with client.stream("GET", url, headers={"User-Agent": "agentflow-fetch"}) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    body, cut = await self._read(response)
                    kind = response.headers.get("content-type", "")
                    text = body.decode(response.encoding or "utf-8", errors="replace")
                    if "html" in kind:
                        text = html_text(text)
                    head = f"HTTP {response.status_code} {kind}".strip()
                    return f"{head}\n{text}" + (f"\n[... cut at {self.max_bytes} bytes]" if cut else "")
        raise ToolError(f"more than {MAX_REDIRECTS} redirects")

    async def _read(self, response: httpx.Response) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_bytes:
                return b"".join(chunks)[: self.max_bytes], True
        return b"".join(chunks), False

    def tool(self) -> Tool[str]:
        return Tool(self.fetch)


class _Text(HTMLParser):
    SKIP = {"script", "style", "noscript", "svg", "template", "head"}

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "body":  # ends a <head> whose end tag was left out (HTML allows it)
            self.skipping = 0
        elif tag in self.SKIP:
            self.skipping += 1
        elif tag in ("p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_text(html: str) -> str:
    """The readable text of an HTML page."""
    parser = _Text()
    parser.feed(html)
    text = "".join(parser.parts)
    return re.sub(r"\n\s*\n+", "\n\n", re.sub(r"[ \t]+", " ", text)).strip()


def fetch(allow_hosts: Sequence[str] = (), **options: Any) -> Tool[str]:
    """A `fetch` tool for the hosts in `allow_hosts` (see `Fetch`)."""
    return Fetch(allow_hosts, **options).tool()
