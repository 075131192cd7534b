"""Callbacks, notifications, errors, timeouts, cancellation and load, against the fixtures server."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from portico import Client, Model, _native
from portico.errors import (
    ConnectError,
    ConnectionClosed,
    InputError,
    McpError,
    PorticoError,
    RequestTimeout,
    TransportError,
)

from conftest import Server

pytestmark = pytest.mark.anyio

#: Both generations over Streamable HTTP: stateless and a session.
PROTOCOLS = ["2026-07-28", "2025-11-25"]


def sampled(params: Model) -> dict[str, Any]:
    prompt = params.messages[0].content.text
    return {"role": "assistant", "content": {"type": "text", "text": f"echo: {prompt}"}, "model": "test-model"}


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_sampling_elicitation_and_roots_callbacks_answer_the_server(server: Server, protocol: str) -> None:
    asked: list[str] = []

    async def elicit(params: Model) -> dict[str, Any]:
        asked.append(params.message)
        return {"action": "accept", "content": {"username": "ada", "email": "ada@example.com"}}

    async with Client(
        server.url,
        protocol=protocol,
        sampling_callback=sampled,
        elicitation_callback=elicit,
        roots=[{"uri": "file:///work", "name": "work"}],
    ) as client:
        result = await client.call_tool("test_sampling", {"prompt": "capital of France?"})
        assert result.content[0].text == "LLM response: echo: capital of France?"

        result = await client.call_tool("test_elicitation", {"message": "who are you?"})
        assert asked == ["who are you?"]
        assert "action=accept" in result.content[0].text
        assert "ada@example.com" in result.content[0].text

        result = await client.call_tool("test_input_required_result_list_roots")
        assert "file:///work" in result.content[0].text


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_callback_that_raises_answers_an_error_and_the_client_keeps_working(
    server: Server, protocol: str
) -> None:
    calls = 0

    async def broken(params: Model) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        raise RuntimeError("the model is on fire")

    async with Client(server.url, protocol=protocol, sampling_callback=broken) as client:
        try:
            result = await client.call_tool("test_sampling", {"prompt": "hi"})
        except InputError as e:
            # 2026-07-28: the input round could not be answered; the error says why.
            assert "the model is on fire" in str(e)
        else:
            # A session: the server got a JSON-RPC error for its request and reported a tool error.
            assert result.isError is True
            assert "the model is on fire" in result.content[0].text
        assert calls == 1
        again = await client.call_tool("echo", {"message": "still here"})
        assert again.content[0].text == "still here"


async def test_a_callback_raising_mcp_error_answers_with_its_code(server: Server) -> None:
    def refuse(params: Model) -> dict[str, Any]:
        raise McpError("no sampling today", code=-1, data={"why": "policy"})

    async with Client(server.url, protocol="2025-11-25", sampling_callback=refuse) as client:
        result = await client.call_tool("test_sampling", {"prompt": "hi"})
        assert result.isError is True
        assert "no sampling today" in result.content[0].text


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_server_that_takes_too_long_gives_a_timeout_within_the_timeout(server: Server, protocol: str) -> None:
    async with Client(server.url, protocol=protocol) as client:
        started = time.monotonic()
        with pytest.raises(RequestTimeout) as timed_out:
            await client.call_tool("slow_compute", {"seconds": 30}, timeout=0.5)
        assert time.monotonic() - started < 5
        assert isinstance(timed_out.value, TimeoutError)
        assert timed_out.value.method == "tools/call"
        assert (await client.call_tool("echo", {"message": "after"})).content[0].text == "after"

    async with Client(server.url, protocol=protocol, timeout=0.5) as client:
        with pytest.raises(RequestTimeout):
            await client.call_tool("slow_compute", {"seconds": 30})


async def settled(expected: int) -> int:
    """The native calls running once they settle to ``expected`` (or after two seconds)."""
    for _ in range(200):
        if _native.in_flight() == expected:
            break
        await asyncio.sleep(0.01)
    return _native.in_flight()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_cancelling_the_task_cancels_the_call(server: Server, protocol: str) -> None:
    before = _native.in_flight()
    async with Client(server.url, protocol=protocol) as client:
        reader = before + 1  # the client's notification reader
        assert await settled(reader) == reader
        task = asyncio.create_task(client.call_tool("slow_compute", {"seconds": 30}))
        await asyncio.sleep(0.3)
        assert _native.in_flight() == reader + 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The Rust future of the call is dropped, not left running on the runtime.
        assert await settled(reader) == reader
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.call_tool("slow_compute", {"seconds": 30}), 0.3)
        assert (await client.call_tool("echo", {"message": "next"})).content[0].text == "next"


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_closing_mid_call_fails_the_call_at_once(server: Server, protocol: str) -> None:
    before = _native.in_flight()
    client = await Client(server.url, protocol=protocol).connect()
    task = asyncio.create_task(client.call_tool("slow_compute", {"seconds": 30}))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    await client.close()
    with pytest.raises((ConnectionClosed, TransportError)):
        await asyncio.wait_for(task, 5)
    assert time.monotonic() - started < 5
    with pytest.raises(ConnectionClosed):
        await client.call_tool("echo", {"message": "closed"})
    # Nothing of the client is left running on the runtime.
    assert await settled(before) == before


async def test_leaving_the_context_while_a_call_runs_ends_it(server: Server) -> None:
    with pytest.raises(ConnectionClosed):
        async with Client(server.stdio) as client:
            task = asyncio.create_task(client.call_tool("slow_compute", {"seconds": 30}))
            await asyncio.sleep(0.3)
        await asyncio.wait_for(task, 5)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_thousand_concurrent_calls(server: Server, protocol: str) -> None:
    async with Client(server.url, protocol=protocol) as client:
        results = await asyncio.gather(*(client.call_tool("echo", {"message": f"m{i}"}) for i in range(1000)))
        assert [r.content[0].text for r in results] == [f"m{i}" for i in range(1000)]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_progress_and_log_messages_reach_their_callbacks(server: Server, protocol: str) -> None:
    progress: list[tuple[float, float | None]] = []
    logs: list[Model] = []

    async with Client(server.url, protocol=protocol, logging_callback=logs.append) as client:
        await client.call_tool(
            "test_tool_with_progress", progress_callback=lambda p, total, message: progress.append((p, total))
        )
        assert progress == [(0, 100), (50, 100), (100, 100)]

        await client.set_logging_level("debug")
        await client.call_tool("test_tool_with_logging")
        for _ in range(50):
            if len(logs) >= 3:
                break
            await asyncio.sleep(0.05)
        assert [log.level for log in logs] == ["info", "info", "info"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_progress_callback_that_raises_is_logged_and_the_call_goes_on(
    server: Server, protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[float] = []

    def flaky(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)
        if progress == 50:
            raise RuntimeError("the progress bar broke")

    async with Client(server.url, protocol=protocol) as client:
        with caplog.at_level(logging.ERROR, logger="portico"):
            result = await client.call_tool("test_tool_with_progress", progress_callback=flaky)
        assert result.isError is not True
        # The reports after the one that raised still reach the callback (as in the official SDK).
        assert seen == [0, 50, 100]
        raised = [r for r in caplog.records if r.name == "portico"]
        assert [r.getMessage() for r in raised] == ["the progress_callback raised (the call goes on)"]
        assert raised[0].exc_info is not None and "the progress bar broke" in str(raised[0].exc_info[1])


@pytest.mark.parametrize("transport", ["http", "stdio"])
async def test_every_method_with_a_progress_callback_awaits_it_for_each_report_before_returning(
    server: Server, transport: str
) -> None:
    seen: list[tuple[float, float | None]] = []

    async def slow(progress: float, total: float | None, message: str | None) -> None:
        # Slower than the server's 50 ms between reports: the call's result waits for it.
        await asyncio.sleep(0.15)
        seen.append((progress, total))

    async with Client(server.url if transport == "http" else server.stdio) as client:
        await client.call_tool("test_tool_with_progress", progress_callback=slow)
        assert seen == [(0, 100), (50, 100), (100, 100)]

        seen.clear()
        await client.send_request("tools/call", {"name": "test_tool_with_progress"}, progress_callback=slow)
        assert seen == [(0, 100), (50, 100), (100, 100)]

        # A call that sends no progress, and one that fails, end their progress too.
        text = await client.read_resource("test://static-text", progress_callback=slow)
        assert text.contents[0].text.startswith("This is the content")
        with pytest.raises(McpError):
            await client.send_request("no/such/method", progress_callback=slow)
        assert seen == [(0, 100), (50, 100), (100, 100)]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("transport", ["http", "stdio"])
async def test_questions_during_a_call_with_a_progress_callback_reach_their_callbacks(
    server: Server, protocol: str, transport: str
) -> None:
    def answer(params: Model) -> dict[str, Any]:
        if params.message == "Please confirm to continue":
            return {"action": "accept", "content": {"confirm": True}}
        return {"action": "accept", "content": {}}

    reported: list[tuple[float, float | None, str | None]] = []
    target = server.url if transport == "http" else server.stdio
    async with Client(target, protocol=protocol, elicitation_callback=answer) as client:
        result = await client.call_tool(
            "test_streaming_elicitation", progress_callback=lambda p, total, message: reported.append((p, total, message))
        )
        assert result.content[0].text == 'Streaming elicitation completed: action=accept, content={"confirm":true}'
        # 2026-07-28 runs the tool again with the answer: its first report comes twice.
        first = [(0, 1, "waiting for the user")] * (2 if client.is_stateless else 1)
        assert reported == [*first, (1, 1, "answered")]

        # An accepted form gets the schema's defaults whether or not the call follows progress.
        followed = await client.call_tool("test_elicitation_sep1034_defaults", progress_callback=lambda *report: None)
        plain = await client.call_tool("test_elicitation_sep1034_defaults")
        assert followed.content == plain.content
        assert '"name":"John Doe"' in plain.content[0].text


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_cancelling_a_call_with_a_progress_callback_cancels_it(server: Server, protocol: str) -> None:
    before = _native.in_flight()
    reported: list[float] = []
    async with Client(server.url, protocol=protocol) as client:
        reader = before + 1  # the client's notification reader
        assert await settled(reader) == reader
        task = asyncio.create_task(
            client.call_tool("slow_compute", {"seconds": 30}, progress_callback=lambda p, *rest: reported.append(p))
        )
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The Rust future of the call is dropped, and so is the wait for its progress.
        assert await settled(reader) == reader
        with pytest.raises(RequestTimeout):
            await client.call_tool(
                "slow_compute", {"seconds": 30}, timeout=0.3, progress_callback=lambda p, *rest: reported.append(p)
            )
        assert await settled(reader) == reader
        assert (await client.call_tool("echo", {"message": "next"})).content[0].text == "next"


#: A session server over stdio, buggy on purpose: it answers `tools/call` with a progress
#: report before its result and another a while after it (one sent right after the result may
#: still be read while the client is taking the result, and then reaches the callback).
LATE_SERVER = r"""
import json, sys, time
def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()
for line in sys.stdin:
    request = json.loads(line)
    method, id = request.get("method"), request.get("id")
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": id, "result": {"protocolVersion": "2025-11-25",
              "capabilities": {"tools": {}}, "serverInfo": {"name": "late", "version": "1"}}})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": id, "result": {"tools": [{"name": "tool", "inputSchema": {"type": "object"}}]}})
    elif method == "tools/call":
        token = request["params"]["_meta"]["progressToken"]
        progress = lambda n: send({"jsonrpc": "2.0", "method": "notifications/progress",
                                   "params": {"progressToken": token, "progress": n, "total": 2}})
        progress(1)
        send({"jsonrpc": "2.0", "id": id, "result": {"content": [{"type": "text", "text": "done"}]}})
        time.sleep(0.3)
        progress(2)
    elif id is not None:
        send({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "Method not found"}})
"""


async def test_progress_after_the_result_reaches_no_callback_and_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    script = tmp_path / "late_server.py"
    script.write_text(LATE_SERVER)
    reported: list[float] = []
    handled: list[Model] = []
    with caplog.at_level(logging.DEBUG, logger="portico"):
        async with Client([sys.executable, str(script)], protocol="2025-11-25", message_handler=handled.append) as client:
            for _ in range(2):
                result = await client.call_tool("tool", progress_callback=lambda p, total, message: reported.append(p))
                assert result.content[0].text == "done"
            for _ in range(100):
                if len(handled) >= 4:
                    break
                await asyncio.sleep(0.05)
    assert reported == [1, 1]
    # Every report still reaches the message_handler, as every notification does.
    assert [n.params.progress for n in handled] == [1, 2, 1, 2]
    late = [r.getMessage() for r in caplog.records if "came after its call's result" in r.getMessage()]
    assert len(late) == 2 and all(r.startswith("a progress report for 'portico-py-") for r in late)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_list_changes_arrive_on_the_notification_iterator(server: Server, protocol: str) -> None:
    async with Client(server.url, protocol=protocol) as client:
        async with client.notifications() as notifications, await client.listen(tools=True) as subscription:
            assert subscription.granted.toolsListChanged is True
            await client.call_tool("test_trigger_tool_change")
            while True:
                notification = await notifications.get(timeout=5)
                assert notification is not None
                if notification.method == "notifications/tools/list_changed":
                    break


async def test_the_notification_iterator_ends_when_the_client_closes(server: Server) -> None:
    async with Client(server.url, protocol="2025-11-25") as client:
        notifications = client.notifications()
    assert [n async for n in notifications] == []


async def test_errors_from_the_server_keep_their_code(server: Server) -> None:
    async with Client(server.url) as client:
        with pytest.raises(McpError) as unknown:
            await client.send_request("no/such/method")
        assert unknown.value.code == -32601
        assert unknown.value.error.code == -32601


async def test_connect_failures_are_connect_errors(server: Server) -> None:
    with pytest.raises(ConnectError):
        async with Client("http://127.0.0.1:9/mcp", connect_timeout=2, protocol="2025-11-25"):
            pass
    with pytest.raises(ConnectError):
        async with Client(["/nonexistent/portico-server"]):
            pass
    with pytest.raises(PorticoError):
        Client("not a url")
    with pytest.raises(PorticoError):
        await Client(server.url, protocol="1999-01-01").connect()


async def test_a_bearer_token_is_sent_on_every_request() -> None:
    seen: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        for line in head.decode().split("\r\n"):
            if line.lower().startswith("authorization:"):
                seen.append(line.split(":", 1)[1].strip())
        body = b'{"error": "nope"}'
        writer.write(
            b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    async with listener:
        with pytest.raises(PorticoError):
            async with Client(f"http://127.0.0.1:{port}/mcp", auth="s3cret", protocol="2026-07-28"):
                pass
    assert seen and all(value == "Bearer s3cret" for value in seen)
