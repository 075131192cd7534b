"""The client side of the official MCP conformance suite, acted out with Portico's Python SDK.

The suite (``@modelcontextprotocol/conformance``, ``client`` command) starts a mock server per
scenario and runs ``python conformance_client.py URL`` with the scenario in
``MCP_CONFORMANCE_SCENARIO``, the revision in ``MCP_CONFORMANCE_PROTOCOL_VERSION``
(``2026-07-28``: stateless; a 2025-x revision: a session at that revision) and, for some,
calls to make in ``MCP_CONFORMANCE_CONTEXT``. It exits 0 when it could act the scenario out,
1 with the reason on standard error otherwise; the suite judges the traffic.

Only the public API of ``portico`` is used, and each scenario makes the calls
``portico conformance-client`` (the Rust reference, servers/portico/src/conformance_client/)
makes for it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from portico import Client, Model, OAuth

#: The Client ID Metadata Document URL the suite's CIMD scenarios look for.
CLIENT_METADATA_URL = "https://conformance-test.local/client-metadata.json"
#: Where the authorization server sends the user agent back (read, never followed).
REDIRECT_URI = "http://localhost:3000/callback"


def log(message: str) -> None:
    print(f"conformance_client.py: {message}", file=sys.stderr)


# -- what the client answers when the server asks ------------------------------------------------


def sample(params: Model) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": {"type": "text", "text": "a sampled answer from portico conformance_client.py"},
        "model": "portico-conformance",
    }


def elicit(params: Model) -> dict[str, Any]:
    if params.mode == "url":
        return {"action": "decline"}  # nobody can follow a URL here
    # Accept the form; the client core fills in the requested schema's defaults.
    return {"action": "accept", "content": {}}


ROOTS = [{"uri": "file:///tmp"}]


# -- scenarios ---------------------------------------------------------------------------------


def sample_value(prop: Any) -> Any:
    if not isinstance(prop, dict):
        return "value"
    if "default" in prop:
        return prop["default"]
    if isinstance(prop.get("enum"), list) and prop["enum"]:
        return prop["enum"][0]
    samples: dict[str, Any] = {"integer": 1, "number": 1, "boolean": True, "object": {}, "array": [], "null": None}
    return samples.get(str(prop.get("type")), "value")


def sample_arguments(schema: Any) -> dict[str, Any]:
    """A value of the declared type for every required property of a tool's input schema."""
    properties = schema.get("properties") or {}
    return {name: sample_value(properties.get(name)) for name in schema.get("required") or []}


async def call(client: Client, name: str, arguments: dict[str, Any]) -> None:
    result = await client.call_tool(name, arguments)
    if result.isError:
        log(f"tool {name} answered with isError")


async def generic(client: Client, context: Any) -> None:
    tools = await client.list_all_tools()
    calls = context.get("toolCalls") if isinstance(context, dict) else None
    if isinstance(calls, list):
        for c in calls:
            await call(client, c["name"], c.get("arguments") or {})
    else:
        for tool in tools:
            await call(client, tool.name, sample_arguments(tool.inputSchema))


async def request_state(client: Client) -> None:
    names = {tool.name for tool in await client.list_all_tools()}
    for expected in ("test_mrtr_echo_state", "test_mrtr_no_state", "test_mrtr_unrelated"):
        if expected not in names:
            raise RuntimeError(f"the server did not list {expected}")
    # The unrelated call runs beside the echo call's rounds: it must carry neither's answers.
    await asyncio.gather(call(client, "test_mrtr_echo_state", {}), call(client, "test_mrtr_unrelated", {}))
    await call(client, "test_mrtr_no_state", {})
    await call(client, "test_mrtr_no_result_type", {})


async def standard_headers(client: Client) -> None:
    for tool in await client.list_all_tools():
        await call(client, tool.name, sample_arguments(tool.inputSchema))
    for resource in await client.list_all_resources():
        await client.read_resource(resource.uri)
    for prompt in await client.list_all_prompts():
        arguments = {a.name: "value" for a in prompt.arguments or [] if a.required}
        await client.get_prompt(prompt.name, arguments)


async def schema_echo(client: Client) -> None:
    focal = "json_schema_2020_12_tool"
    tools = {tool.name: tool for tool in await client.list_all_tools()}
    if focal not in tools:
        raise RuntimeError(f"the server did not list {focal}")
    await call(client, "json_schema_echo", {"schema": tools[focal].inputSchema})


async def scenario(url: str, name: str, protocol: str, context: Any) -> None:
    async with Client(
        url,
        protocol=protocol,
        client_name="portico-python-conformance-client",
        sampling_callback=sample,
        elicitation_callback=elicit,
        roots=ROOTS,
    ) as client:
        if name in ("initialize", "request-metadata", "json-schema-ref-no-deref"):
            await client.list_all_tools()
        elif name == "tools_call":
            await client.list_all_tools()
            await call(client, "add_numbers", {"a": 5, "b": 3})
        elif name == "elicitation-sep1034-client-defaults":
            await client.list_all_tools()
            await call(client, "test_client_elicitation_defaults", {})
        elif name == "sse-retry":
            await client.list_all_tools()
            await call(client, "test_reconnection", {})
        elif name == "sep-2322-client-request-state":
            await request_state(client)
        elif name == "http-standard-headers":
            await standard_headers(client)
        elif name == "json-schema-2020-12-preservation":
            await schema_echo(client)
        else:
            if name not in ("http-custom-headers", "http-invalid-tool-headers"):
                log(f"scenario {name!r} is not known to this client; doing the generic run")
            await generic(client, context)


async def auth_scenario(url: str, name: str, protocol: str, context: Any) -> None:
    """Every ``auth/*`` scenario: connect through the OAuth client, list the tools, call one."""
    context = context if isinstance(context, dict) else {}
    client_id = context.get("client_id")
    client_secret = context.get("client_secret")
    legacy = name.startswith("auth/2025-03-26")
    if name.startswith("auth/client-credentials"):
        if not client_id:
            raise RuntimeError("the scenario's context has no client_id")
        auth = OAuth.client_credentials(
            client_id, client_secret, client_name="portico-conformance-client", legacy_discovery=legacy
        )
    else:
        auth = OAuth(
            client_name="portico-conformance-client",
            redirect_uri=REDIRECT_URI,
            client_id=client_id,
            client_secret=client_secret,
            client_metadata_url=CLIENT_METADATA_URL,
            legacy_discovery=legacy,
        )
    async with Client(url, protocol=protocol, auth=auth, client_name="portico-conformance-client") as client:
        tools = await client.list_all_tools()
        names = [tool.name for tool in tools]
        if not names:
            raise RuntimeError("the server lists no tools")
        await client.call_tool("test-tool" if "test-tool" in names else names[0], {})


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: conformance_client.py URL", file=sys.stderr)
        return 2
    url = sys.argv[1]
    name = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    protocol = os.environ.get("MCP_CONFORMANCE_PROTOCOL_VERSION", "2025-11-25")
    text = os.environ.get("MCP_CONFORMANCE_CONTEXT")
    context = json.loads(text) if text else None
    run = auth_scenario if name.startswith("auth/") else scenario
    try:
        asyncio.run(run(url, name, protocol, context))
    except Exception as e:
        log(f"scenario {name!r} failed: {type(e).__name__}: {e}")
        return 1
    log(f"scenario {name!r} done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
