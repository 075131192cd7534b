"""Fixtures: `portico serve everything` (the conformance fixtures server) as a real process.

The binary is ``$PORTICO_BIN``, else ``$CARGO_TARGET_DIR/debug/portico`` (``cargo xtask test``
builds it and sets ``PORTICO_BIN``). The server listens on port 0; its first line of standard
output names the URL. The tests import ``portico`` from wherever the interpreter finds it:
``cargo xtask test`` runs them in a fresh venv with the built wheel installed.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def pytest_sessionstart(session: pytest.Session) -> None:
    """With ``PORTICO_SDK_INSTALLED`` set (``cargo xtask test``), make sure the tests import the
    installed wheel, not the source tree."""
    if os.environ.get("PORTICO_SDK_INSTALLED"):
        import portico

        source = Path(__file__).resolve().parents[1]
        location = Path(portico.__file__).resolve()
        if source in location.parents:
            pytest.exit(f"portico was imported from the source tree ({location}), not the installed wheel", 2)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def _portico_bin() -> str:
    explicit = os.environ.get("PORTICO_BIN")
    if explicit:
        return explicit
    target = os.environ.get("CARGO_TARGET_DIR") or str(Path(__file__).resolve().parents[3] / "target")
    path = Path(target) / "debug" / "portico"
    if not path.is_file():
        pytest.fail(f"no portico binary at {path}: run `cargo build -p portico` or set PORTICO_BIN")
    return str(path)


@dataclass(frozen=True)
class Server:
    """A running `portico serve everything`."""

    binary: str
    #: Streamable HTTP endpoint, ``http://127.0.0.1:PORT/mcp``.
    url: str

    @property
    def ws(self) -> str:
        return self.url.replace("http://", "ws://", 1)

    @property
    def sse(self) -> str:
        return self.url.rsplit("/", 1)[0] + "/sse"

    @property
    def stdio(self) -> list[str]:
        return [self.binary, "serve", "everything", "--stdio"]


@pytest.fixture(scope="session")
def portico_bin() -> str:
    return _portico_bin()


@pytest.fixture(scope="session")
def server(portico_bin: str) -> Iterator[Server]:
    process = subprocess.Popen(
        [portico_bin, "serve", "everything", "--http", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline().strip()
        prefix = "serving MCP on "
        assert first.startswith(prefix), f"unexpected first line from portico serve: {first!r}"
        yield Server(portico_bin, first[len(prefix) :])
    finally:
        process.terminate()
        process.wait(timeout=10)
