"""Fixtures: `portico serve everything` (the conformance fixtures server) as a real process.

The binary is ``$PORTICO_BIN``, else ``$CARGO_TARGET_DIR/debug/portico`` (``cargo xtask test``
builds it and sets ``PORTICO_BIN``). The server listens on port 0; its first line of standard
output names the URL. The tests import ``portico`` from wherever the interpreter finds it:
``cargo xtask test`` runs them in a fresh venv with the built wheel installed.

``test_official_server.py`` drives a server built on the official MCP Python SDK
(``servers/everything/tests/python/official_server.py``, PyPI ``mcp``) run by
``$PORTICO_OFFICIAL_PYTHON``, a python with the pinned ``mcp`` installed (``cargo xtask test``
sets it to its tools venv's; unset, ``$PORTICO_TOOLS_DIR/venv/bin/python`` or
``<repo>/.tools/venv/bin/python``). Without one those tests fail, saying how to get it.
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


#: The repository (``sdks/python/tests`` is three levels below it).
REPO = Path(__file__).resolve().parents[3]

#: How to get a python for the official-SDK server, in every failure about it.
OFFICIAL_HOW = (
    "run `cargo xtask test` (it installs the pinned official MCP Python SDK `mcp`, see "
    "PYTHON_PACKAGES in xtask/src/test.rs, into the tools venv $PORTICO_TOOLS_DIR/venv, default "
    ".tools/venv, and passes its python to this suite as PORTICO_OFFICIAL_PYTHON; after that "
    "`cargo xtask python-sdk` does too), or set PORTICO_OFFICIAL_PYTHON to the absolute path of a "
    "python with that `mcp` and `uvicorn` installed (after one `cargo xtask test`, from the "
    "repository root: PORTICO_OFFICIAL_PYTHON=$PWD/.tools/venv/bin/python)"
)


@dataclass(frozen=True)
class Official:
    """How to run the official-SDK server: ``python script stdio|http PORT [--handshake-only]``."""

    python: str
    script: str

    def stdio(self, handshake_only: bool = False) -> list[str]:
        return [self.python, self.script, "stdio", *(["--handshake-only"] if handshake_only else [])]


def _official_python() -> tuple[str, str]:
    """The python to run the server with, and how it was chosen (for messages)."""
    explicit = os.environ.get("PORTICO_OFFICIAL_PYTHON")
    if explicit:
        return explicit, f"PORTICO_OFFICIAL_PYTHON={explicit}"
    tools = os.environ.get("PORTICO_TOOLS_DIR") or str(REPO / ".tools")
    python = str(Path(tools) / "venv" / "bin" / "python")
    return python, f"PORTICO_OFFICIAL_PYTHON is not set and the tools venv's {python}"


@pytest.fixture(scope="session")
def official() -> Official:
    """The python with the official SDK, checked once to import it; fails saying what to do."""
    python, which = _official_python()
    script = os.environ.get("PORTICO_OFFICIAL_SERVER") or str(
        REPO / "servers" / "everything" / "tests" / "python" / "official_server.py"
    )
    if not Path(script).is_file():
        pytest.fail(f"the official-SDK server {script} is missing (PORTICO_OFFICIAL_SERVER names it)")
    failure = None
    try:
        done = subprocess.run(
            [python, "-c", "import mcp.server.mcpserver, uvicorn"], capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            why = (done.stderr.strip().splitlines() or ["it failed"])[-1]
            failure = f"{which} cannot import the official MCP SDK ({why})"
    except OSError as e:
        failure = f"{which} does not run ({e}); these tests need a python with the official MCP SDK"
    if failure is not None:
        pytest.fail(f"{failure}: {OFFICIAL_HOW}")
    return Official(python, script)


def _start_official(official: Official, handshake_only: bool) -> Iterator[str]:
    args = [official.python, official.script, "http", "0", *(["--handshake-only"] if handshake_only else [])]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline().strip()
        prefix = "listening on "
        assert first.startswith(prefix), f"unexpected first line from official_server.py: {first!r}"
        yield first[len(prefix) :]
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def official_http(official: Official) -> Iterator[str]:
    """The official-SDK server on Streamable HTTP, serving both generations: its URL."""
    yield from _start_official(official, handshake_only=False)


@pytest.fixture(scope="session")
def official_http_handshake_only(official: Official) -> Iterator[str]:
    """The same server answering only ``initialize`` sessions (a 2025-x-era server): its URL."""
    yield from _start_official(official, handshake_only=True)
