"""The README's quick start: list the tools of an MCP server and call one, asyncio and blocking.

``python quickstart.py http://127.0.0.1:3000/mcp`` (against ``portico serve everything``).
"""

from __future__ import annotations

import asyncio
import sys

import portico
import portico.sync


async def main(url: str) -> None:
    async with portico.Client(url) as client:
        print(f"connected to {client.server.serverInfo.name} ({client.protocol_version})")
        tools = await client.list_tools()
        print("tools:", ", ".join(tool.name for tool in tools.tools))
        result = await client.call_tool("echo", {"message": "hello"})
        print("echo says:", result.content[0].text)
        try:
            await client.call_tool("slow_compute", {"seconds": 5}, timeout=0.5)
        except portico.RequestTimeout as e:
            print("timed out as asked:", e)


def blocking(url: str) -> None:
    with portico.sync.Client(url, protocol="2025-11-25") as client:
        print("blocking echo says:", client.call_tool("echo", {"message": "hi"}).content[0].text)


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:3000/mcp"
    asyncio.run(main(url))
    blocking(url)
