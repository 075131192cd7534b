"""The same list/call/read/get run over every transport and both protocol generations."""

from __future__ import annotations

from collections.abc import Callable
import pytest

from portico import Client
from portico.errors import McpError, UnsupportedMethod

from conftest import Server

pytestmark = pytest.mark.anyio

# (id, how to make the client, the revision expected)
TRANSPORTS: list[tuple[str, Callable[[Server], Client], str]] = [
    ("http-auto", lambda s: Client(s.url), "2026-07-28"),
    ("http-2026", lambda s: Client(s.url, protocol="2026-07-28"), "2026-07-28"),
    ("http-2025-11-25", lambda s: Client(s.url, protocol="2025-11-25"), "2025-11-25"),
    ("http-2025-03-26", lambda s: Client(s.url, protocol="2025-03-26"), "2025-03-26"),
    ("ws-auto", lambda s: Client(s.ws), "2026-07-28"),
    ("ws-2025-11-25", lambda s: Client(s.ws, protocol="2025-11-25"), "2025-11-25"),
    ("sse-2024-11-05", lambda s: Client(s.sse, transport="sse", protocol="2024-11-05"), "2024-11-05"),
    ("stdio-auto", lambda s: Client(s.stdio), "2026-07-28"),
    ("stdio-2025-11-25", lambda s: Client(s.stdio, protocol="2025-11-25"), "2025-11-25"),
]


@pytest.mark.parametrize(("make", "revision"), [(m, r) for _, m, r in TRANSPORTS], ids=[t[0] for t in TRANSPORTS])
async def test_the_whole_surface_works_over_each_transport(
    server: Server, make: Callable[[Server], Client], revision: str
) -> None:
    async with make(server) as client:
        assert client.protocol_version == revision
        assert client.server.serverInfo.name == "portico-everything"
        assert client.is_stateless == (revision == "2026-07-28")

        tools = await client.list_tools()
        names = [tool.name for tool in tools.tools]
        assert "echo" in names
        echo = next(tool for tool in tools.tools if tool.name == "echo")
        assert echo.inputSchema["properties"]["message"]["type"] == "string"

        result = await client.call_tool("echo", {"message": "hi there"})
        assert result.content[0].type == "text"
        assert result.content[0].text == "hi there"
        assert not result.isError

        failed = await client.call_tool("test_error_handling")
        assert failed.isError is True

        resources = await client.list_all_resources()
        assert "test://static-text" in [r.uri for r in resources]
        read = await client.read_resource("test://static-text")
        assert read.contents[0].text == "This is the content of the static text resource."

        templates = await client.list_resource_templates()
        assert templates.resourceTemplates[0].uriTemplate == "test://template/{id}/data"

        prompts = await client.list_all_prompts()
        assert "test_prompt_with_arguments" in [p.name for p in prompts]
        prompt = await client.get_prompt("test_prompt_with_arguments", {"arg1": "a", "arg2": "b"})
        assert prompt.messages[0].content.text == "Prompt with arguments: arg1='a', arg2='b'"

        completion = await client.complete(
            {"type": "ref/prompt", "name": "test_prompt_with_arguments"}, {"name": "arg1", "value": ""}
        )
        assert isinstance(completion.completion["values"], list)

        await client.set_logging_level("debug")
        if client.is_stateless:
            with pytest.raises(UnsupportedMethod):
                await client.ping()
        else:
            await client.ping()

        await client.subscribe("test://watched-resource")
        await client.unsubscribe("test://watched-resource")

        with pytest.raises(McpError) as unknown:
            await client.read_resource("test://no-such-resource")
        # -32602 in 2026-07-28, -32002 before it.
        assert unknown.value.code in (-32602, -32002)
        assert "test://no-such-resource" in unknown.value.rpc_message
    assert client.is_closed


async def test_results_are_dicts_with_the_wire_names(server: Server) -> None:
    async with Client(server.url) as client:
        result = await client.call_tool("echo", {"message": "x"})
        assert isinstance(result, dict)
        assert result["content"] == [{"type": "text", "text": "x"}]
        assert result.structuredContent is None
        assert result.model_dump()["content"][0]["text"] == "x"

