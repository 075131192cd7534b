"""An MCP server built only on the official Python SDK (PyPI `mcp`, pinned in xtask/src/test.rs).

Portico's client core is tested against it (servers/everything/tests/it/python_interop.rs): a
second, independent implementation of both protocol generations.

    python official_server.py stdio [--handshake-only]
    python official_server.py http PORT [--handshake-only]

Over HTTP it serves Streamable HTTP at http://127.0.0.1:PORT/mcp (PORT 0 picks a free port) and
prints `listening on URL` on stdout once it accepts connections.

The SDK serves both generations: a client's first request picks 2026-07-28 (the per-request
`_meta` envelope) or a 2025-x session (`initialize`). `--handshake-only` makes it a server of the
2025-x era only, as servers built on older SDKs are: on stdio it runs the SDK's handshake-only
loop (`serve_loop`), and over HTTP the `MCP-Protocol-Version` header of 2026-07-28 requests is
dropped so the SDK's session path answers them (a request without a session is refused).
"""

from __future__ import annotations

import sys
import warnings
from typing import Annotated

import anyio
from pydantic import BaseModel

from mcp.server.mcpserver import Context, Elicit, MCPServer, Resolve

# Logging is deprecated by 2026-07-28 but is how 2025-x sessions get log messages: `count` uses
# it on purpose, and the SDK's warning would only clutter stderr.
warnings.filterwarnings("ignore", message="The logging capability is deprecated")

server = MCPServer(
    name="python-official",
    version="1.0.0",
    instructions="A test server on the official SDK.",
    log_level="WARNING",
)


class Sum(BaseModel):
    """What `add` returns: structured content."""

    sum: int
    operands: list[int]


@server.tool(description="Adds two integers")
def add(a: int, b: int) -> Sum:
    return Sum(sum=a + b, operands=[a, b])


@server.tool(description="Says the message back")
def echo(message: str) -> str:
    return f"echo: {message}"


@server.tool(description="Waits `seconds`, then says so")
async def wait(seconds: float) -> str:
    await anyio.sleep(seconds)
    return f"waited {seconds} s"


@server.tool(description="Counts to `steps`, reporting progress and logging each step")
async def count(steps: int, ctx: Context) -> str:
    for step in range(1, steps + 1):
        await ctx.info(f"step {step} of {steps}")
        await ctx.report_progress(step, steps, f"step {step}")
    return f"counted to {steps}"


class Name(BaseModel):
    """The form `greet` asks the user to fill in."""

    name: str


def ask_name() -> Elicit[Name]:
    return Elicit("What is your name?", Name)


@server.tool(description="Asks the user for a name (elicitation), then greets them")
def greet(who: Annotated[Name, Resolve(ask_name)]) -> str:
    return f"Hello, {who.name}!"


@server.tool(description="Announces that greeting://hello and the tool list changed")
async def touch(ctx: Context) -> str:
    await ctx.notify_resource_updated("greeting://hello")
    await ctx.notify_tools_changed()
    return "touched"


@server.resource("greeting://hello", mime_type="text/plain", description="A fixed greeting")
def hello() -> str:
    return "Hello from the official Python SDK"


@server.resource("greeting://{name}", mime_type="text/plain", description="A greeting for a name")
def greeting(name: str) -> str:
    return f"Hello, {name}"


@server.prompt(description="Asks for a review of some code")
def review(code: str, language: str = "python") -> str:
    return f"Please review this {language} code:\n{code}"


def without_protocol_header(app):
    """An ASGI wrapper dropping `MCP-Protocol-Version: 2026-07-28`, so the SDK's 2025-x path
    answers every request (`--handshake-only` over HTTP)."""

    async def wrapped(scope, receive, send):
        if scope["type"] == "http":
            headers = [
                (k, v)
                for k, v in scope["headers"]
                if not (k == b"mcp-protocol-version" and v == b"2026-07-28")
            ]
            scope = dict(scope, headers=headers)
        await app(scope, receive, send)

    return wrapped


async def serve_stdio(handshake_only: bool) -> None:
    if not handshake_only:
        await server.run_stdio_async()
        return
    from mcp.server.runner import serve_loop
    from mcp.server.stdio import stdio_server

    lowlevel = server._lowlevel_server  # the SDK's low-level server behind MCPServer
    async with stdio_server() as (read_stream, write_stream):
        async with lowlevel.lifespan(lowlevel) as state:
            await serve_loop(
                lowlevel,
                read_stream,
                write_stream,
                lifespan_state=state,
                init_options=lowlevel.create_initialization_options(),
            )


async def serve_http(port: int, handshake_only: bool) -> None:
    import socket

    import uvicorn

    app = server.streamable_http_app()
    if handshake_only:
        app = without_protocol_header(app)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    http = uvicorn.Server(config)

    async def announce() -> None:
        while not http.started:
            await anyio.sleep(0.01)
        print(f"listening on http://127.0.0.1:{port}/mcp", flush=True)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(announce)
        await http.serve(sockets=[sock])


def main(argv: list[str]) -> int:
    usage = "usage: official_server.py stdio [--handshake-only] | http PORT [--handshake-only]"
    handshake_only = "--handshake-only" in argv
    args = [a for a in argv if a != "--handshake-only"]
    if args == ["stdio"]:
        anyio.run(serve_stdio, handshake_only)
    elif len(args) == 2 and args[0] == "http" and args[1].isdigit():
        anyio.run(serve_http, int(args[1]), handshake_only)
    else:
        print(usage, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
