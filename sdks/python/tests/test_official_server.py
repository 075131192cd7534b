"""The SDK against a server built on the official MCP Python SDK (PyPI ``mcp``), not on Portico.

The server is ``servers/everything/tests/python/official_server.py`` (see ``conftest.py`` for the
python that runs it): over stdio (a child process) and Streamable HTTP (under uvicorn), with
``protocol="auto"`` (which finds 2026-07-28), ``"2026-07-28"`` (stateless) and ``"2025-11-25"``
(a session), and again made a 2025-x-only server (``--handshake-only``), where ``auto`` falls
back from ``server/discover`` to ``initialize``. Its tools: ``add`` (structured output),
``echo``, ``wait``, ``count`` (progress and log messages), ``greet`` (elicitation) and ``touch``
(change notifications); a resource, a resource template and a prompt. It offers no sampling.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from portico import Client, Model
from portico.errors import InputError, McpError, RequestTimeout, UnsupportedMethod
from portico.sync import Client as BlockingClient

from conftest import Official

pytestmark = pytest.mark.anyio

STATELESS = "2026-07-28"
SESSION = "2025-11-25"


@dataclass(frozen=True)
class Case:
    """One way to reach the server: transport, mode, the protocol asked and the one expected."""

    id: str
    http: bool
    handshake_only: bool
    protocol: str
    revision: str


CASES = [
    Case("stdio-auto", False, False, "auto", STATELESS),
    Case("stdio-2026-07-28", False, False, STATELESS, STATELESS),
    Case("stdio-2025-11-25", False, False, SESSION, SESSION),
    Case("stdio-handshake-only-auto", False, True, "auto", SESSION),
    Case("http-auto", True, False, "auto", STATELESS),
    Case("http-2026-07-28", True, False, STATELESS, STATELESS),
    Case("http-2025-11-25", True, False, SESSION, SESSION),
    Case("http-handshake-only-auto", True, True, "auto", SESSION),
]


@dataclass(frozen=True)
class Target:
    """A case with the server's address: a URL, or the command line to spawn."""

    case: Case
    address: str | list[str]

    def client(self, **options: Any) -> Client:
        return Client(self.address, protocol=self.case.protocol, timeout=30, **options)


@pytest.fixture(params=CASES, ids=[case.id for case in CASES])
def target(request: pytest.FixtureRequest, official: Official) -> Target:
    case: Case = request.param
    if not case.http:
        return Target(case, official.stdio(case.handshake_only))
    url: str = request.getfixturevalue("official_http_handshake_only" if case.handshake_only else "official_http")
    return Target(case, url)


def answer_ada(params: Model) -> dict[str, Any]:
    return {"action": "accept", "content": {"name": "Ada"}}


async def test_the_era_tools_structured_output_tool_errors_and_timeouts(target: Target) -> None:
    async with target.client() as client:
        assert client.protocol_version == target.case.revision
        assert client.is_stateless == (target.case.revision == STATELESS)
        assert client.server.serverInfo == {"name": "python-official", "version": "1.0.0"}
        assert client.server.instructions == "A test server on the official SDK."
        assert client.server.capabilities.tools is not None

        tools = await client.list_all_tools()
        assert sorted(tool.name for tool in tools) == ["add", "count", "echo", "greet", "touch", "wait"]
        add = next(tool for tool in tools if tool.name == "add")
        assert add.description == "Adds two integers"
        assert add.inputSchema["required"] == ["a", "b"]
        assert add.inputSchema["properties"]["a"]["type"] == "integer"
        assert add.outputSchema["required"] == ["sum", "operands"]

        # Structured output, checked by the client against the outputSchema it was listed with.
        result = await client.call_tool("add", {"a": 40, "b": 2})
        assert result.isError is False
        assert result.structuredContent == {"sum": 42, "operands": [40, 2]}
        assert json.loads(result.content[0].text) == {"sum": 42, "operands": [40, 2]}

        echoed = await client.call_tool("echo", {"message": "Grüße, 世界"})
        assert echoed.content == [{"type": "text", "text": "echo: Grüße, 世界"}]
        assert echoed.structuredContent == {"result": "echo: Grüße, 世界"}

        # A tool that fails (bad arguments, or no such tool) is a result, not an exception.
        refused = await client.call_tool("add", {"a": "forty"})
        assert refused.isError is True
        assert "validation error" in refused.content[0].text
        unknown = await client.call_tool("no_such_tool", {})
        assert unknown.isError is True
        assert unknown.content[0].text == "Unknown tool: no_such_tool"

        # A method the server lacks is a JSON-RPC error, with its code.
        with pytest.raises(McpError) as missing:
            await client.complete({"type": "ref/prompt", "name": "review"}, {"name": "language", "value": "py"})
        assert missing.value.code == -32601
        with pytest.raises(McpError) as missing:
            await client.send_request("no/such/method")
        assert missing.value.code == -32601

        # Without an elicitation callback the client declares no elicitation: the server refuses
        # the tool that needs one.
        with pytest.raises(McpError, match="elicitation capability") as undeclared:
            await client.call_tool("greet", {})
        assert undeclared.value.code == -32021

        # A call past its timeout, or whose task is cancelled, is cancelled on the wire
        # (notifications/cancelled, or its HTTP stream closed); the connection goes on.
        started = time.monotonic()
        with pytest.raises(RequestTimeout) as timed_out:
            await client.call_tool("wait", {"seconds": 20}, timeout=0.3)
        assert time.monotonic() - started < 10
        assert timed_out.value.method == "tools/call"
        waited = await client.call_tool("wait", {"seconds": 0.01})
        assert waited.content[0].text == "waited 0.01 s"
        task = asyncio.create_task(client.call_tool("wait", {"seconds": 20}))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await client.call_tool("echo", {"message": "after"})).content[0].text == "echo: after"
    assert client.is_closed


async def test_progress_log_messages_and_elicitation(target: Target) -> None:
    logs: list[Model] = []
    reported: list[tuple[float, float | None, str | None]] = []
    asked: list[Model] = []

    def broken(params: Model) -> dict[str, Any]:
        raise RuntimeError("nobody is at the keyboard")

    # The answers to the server's questions, in turn.
    answers: list[Callable[[Model], dict[str, Any]]] = [answer_ada, lambda params: {"action": "decline"}, broken]

    async def elicit(params: Model) -> dict[str, Any]:
        asked.append(params)
        return answers.pop(0)(params)

    async with target.client(logging_callback=logs.append, elicitation_callback=elicit) as client:
        if client.is_stateless:
            # 2026-07-28 asks for log messages per request; a 2025-x server of this SDK has
            # no logging/setLevel (it logs anyway).
            await client.set_logging_level("info")
        async with client.notifications() as notifications:
            result = await client.call_tool(
                "count", {"steps": 3}, progress_callback=lambda p, total, message: reported.append((p, total, message))
            )
            assert result.content[0].text == "counted to 3"
            progress: list[Model] = []
            messages: list[Model] = []
            while len(progress) < 3 or len(messages) < 3:
                notification = await notifications.get(timeout=10)
                assert notification is not None, f"the notifications ended after {progress} and {messages}"
                if notification.method == "notifications/progress":
                    progress.append(notification.params)
                elif notification.method == "notifications/message":
                    messages.append(notification.params)
        assert [(p.progress, p.total, p.message) for p in progress] == [
            (1, 3, "step 1"),
            (2, 3, "step 2"),
            (3, 3, "step 3"),
        ]
        # Each with the token the call sent (the one its progress_callback follows).
        tokens = {p.progressToken for p in progress}
        assert len(tokens) == 1 and str(tokens.pop()).startswith("portico-py-")
        assert [(m.level, m.data) for m in messages] == [("info", f"step {i} of 3") for i in (1, 2, 3)]
        # The logging_callback saw the same messages (notifications may trail the result).
        for _ in range(100):
            if len(logs) >= 3:
                break
            await asyncio.sleep(0.05)
        assert [(m.level, m.data) for m in logs] == [("info", f"step {i} of 3") for i in (1, 2, 3)]
        # The progress_callback got the same reports, in order, before the call returned.
        assert reported == [(p.progress, p.total, p.message) for p in progress]

        # Elicitation: a request in a session, an input_required round in 2026-07-28; the
        # same callback answers both.
        greeted = await client.call_tool("greet", {})
        assert greeted.isError is False
        assert greeted.content[0].text == "Hello, Ada!"
        assert asked[0].message == "What is your name?"
        assert asked[0].requestedSchema["required"] == ["name"]
        assert asked[0].requestedSchema["properties"]["name"]["type"] == "string"

        declined = await client.call_tool("greet", {})
        assert declined.isError is True
        assert "elicitation was decline" in declined.content[0].text

        if client.is_stateless:
            # The input round could not be answered: the call fails in the client.
            with pytest.raises(InputError, match="nobody is at the keyboard"):
                await client.call_tool("greet", {})
        else:
            # The server got a JSON-RPC error for its request and fails the call with it.
            with pytest.raises(McpError, match="nobody is at the keyboard") as failed:
                await client.call_tool("greet", {})
            assert failed.value.code == -32603
        assert len(asked) == 3 and answers == []
        assert (await client.call_tool("echo", {"message": "still here"})).content[0].text == "echo: still here"


async def test_the_progress_callback_gets_every_report_sent_before_the_result(target: Target) -> None:
    # Over every transport and in both eras (the official SDKs deliver them all, in order,
    # before the call returns); the result follows the last report at once, so a callback fed
    # from the notification stream would miss some.
    async with target.client() as client:
        for _ in range(3):
            reported: list[tuple[float, float | None, str | None]] = []
            await client.call_tool(
                "count", {"steps": 3}, progress_callback=lambda p, total, message: reported.append((p, total, message))
            )
            assert reported == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]

        # A coroutine function is awaited, report by report, before the call returns.
        awaited: list[float] = []

        async def slowly(p: float, total: float | None, message: str | None) -> None:
            await asyncio.sleep(0.05)
            awaited.append(p)

        result = await client.call_tool("count", {"steps": 3}, progress_callback=slowly)
        assert result.content[0].text == "counted to 3"
        assert awaited == [1, 2, 3]


async def test_resources_prompts_and_change_notifications_or_ping(target: Target) -> None:
    async with target.client() as client:
        resources = await client.list_all_resources()
        assert [(r.uri, r.name, r.mimeType) for r in resources] == [("greeting://hello", "hello", "text/plain")]
        hello = await client.read_resource("greeting://hello")
        assert hello.contents == [
            {"uri": "greeting://hello", "mimeType": "text/plain", "text": "Hello from the official Python SDK"}
        ]

        templates = await client.list_resource_templates()
        assert [t.uriTemplate for t in templates.resourceTemplates] == ["greeting://{name}"]
        ada = await client.read_resource("greeting://ada")
        assert ada.contents[0].uri == "greeting://ada"
        assert ada.contents[0].text == "Hello, ada"

        prompts = await client.list_all_prompts()
        assert [p.name for p in prompts] == ["review"]
        assert prompts[0].arguments == [{"name": "code", "required": True}, {"name": "language", "required": False}]
        prompt = await client.get_prompt("review", {"code": "fn main() {}", "language": "rust"})
        assert prompt.messages == [
            {"role": "user", "content": {"type": "text", "text": "Please review this rust code:\nfn main() {}"}}
        ]
        default = await client.get_prompt("review", {"code": "x = 1"})
        assert default.messages[0].content.text == "Please review this python code:\nx = 1"

        if not client.is_stateless:
            await client.ping()
            # This SDK's sessions offer no resources/subscribe (capabilities say so).
            assert client.server.capabilities.resources.subscribe is False
            with pytest.raises(McpError) as refused:
                await client.subscribe("greeting://hello")
            assert refused.value.code == -32601
            return
        # 2026-07-28: no ping; a subscriptions/listen stream gets the server's events.
        with pytest.raises(UnsupportedMethod):
            await client.ping()
        async with (
            client.notifications() as notifications,
            await client.listen(tools=True, resource_uris=["greeting://hello"]) as subscription,
        ):
            assert subscription.granted == {"toolsListChanged": True, "resourceSubscriptions": ["greeting://hello"]}
            assert subscription.id is not None
            touched = await client.call_tool("touch", {})
            assert touched.content[0].text == "touched"
            seen: dict[str, Model] = {}
            while len(seen) < 2:
                notification = await notifications.get(timeout=10)
                assert notification is not None, f"the notifications ended after {list(seen)}"
                seen[notification.method] = notification.params
            assert set(seen) == {"notifications/resources/updated", "notifications/tools/list_changed"}
            assert seen["notifications/resources/updated"].uri == "greeting://hello"
            for params in seen.values():
                assert params._meta["io.modelcontextprotocol/subscriptionId"] == subscription.id


@pytest.mark.parametrize("protocol", [STATELESS, SESSION])
def test_the_blocking_client_over_http(official_http: str, protocol: str) -> None:
    with BlockingClient(official_http, protocol=protocol, elicitation_callback=answer_ada) as client:
        assert client.protocol_version == protocol
        assert client.call_tool("add", {"a": 1, "b": 2}).structuredContent == {"sum": 3, "operands": [1, 2]}
        assert client.call_tool("greet", {}).content[0].text == "Hello, Ada!"
        assert client.read_resource("greeting://bob").contents[0].text == "Hello, bob"
        with pytest.raises(RequestTimeout):
            client.call_tool("wait", {"seconds": 20}, timeout=0.3)
