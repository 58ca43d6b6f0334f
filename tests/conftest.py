"""Tests never touch the network: any connection to a non-loopback address is refused."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests import programs
from tests.llm_server import LLMServer

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check(address: Any) -> None:
    if isinstance(address, tuple) and address:
        host = str(address[0])
        try:
            if ipaddress.ip_address(host).is_loopback:
                return
        except ValueError:
            if host == "localhost":
                return
        raise ConnectionRefusedError(f"tests may not use the network: connection to {host} refused")


def _connect(self: socket.socket, address: Any) -> None:
    _check(address)
    return _real_connect(self, address)


def _connect_ex(self: socket.socket, address: Any) -> int:
    _check(address)
    return _real_connect_ex(self, address)


socket.socket.connect = _connect  # type: ignore[method-assign]
socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _no_provider_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keys, URLs or pulled local models on the developer's machine must not change what a test does."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "AGENTFLOW_MODEL",
                 "AGENTFLOW_LOCAL_URL", "AGENTFLOW_LLAMA_SERVER", "HF_ENDPOINT", "PIP_INDEX_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AGENTFLOW_MODELS", str(tmp_path_factory.mktemp("no-models")))


@pytest.fixture(autouse=True)
def _no_orphans() -> Iterator[None]:
    """A failing test must leave no program it started running."""
    yield
    programs.kill_leftovers()


@pytest.fixture
def llm_server() -> Iterator[LLMServer]:
    server = LLMServer().start()
    yield server
    server.stop()
