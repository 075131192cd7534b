"""The blocking client: the same calls without await, on the shared background loop."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from portico import Model
from portico.errors import McpError, RequestTimeout
from portico.sync import Client

from conftest import Server


@pytest.mark.parametrize("protocol", ["2026-07-28", "2025-11-25"])
def test_the_blocking_client_calls_lists_and_answers_callbacks(server: Server, protocol: str) -> None:
    threads: list[str] = []

    def sampled(params: Model) -> dict[str, Any]:
        threads.append(threading.current_thread().name)
        return {"role": "assistant", "content": {"type": "text", "text": "sync answer"}, "model": "m"}

    with Client(server.url, protocol=protocol, sampling_callback=sampled) as client:
        assert client.protocol_version == protocol
        assert "echo" in [tool.name for tool in client.list_tools().tools]
        assert client.call_tool("echo", {"message": "blocking"}).content[0].text == "blocking"
        assert client.read_resource("test://static-text").contents[0].text.startswith("This is the content")
        assert client.get_prompt("test_simple_prompt").messages
        result = client.call_tool("test_sampling", {"prompt": "p"})
        assert result.content[0].text == "LLM response: sync answer"
        assert threads == ["portico-sync-loop"]
        # Every report, in order, on the loop's thread, before the call returns.
        reported: list[tuple[float, str]] = []
        client.call_tool(
            "test_tool_with_progress",
            progress_callback=lambda p, total, message: reported.append((p, threading.current_thread().name)),
        )
        assert reported == [(0, "portico-sync-loop"), (50, "portico-sync-loop"), (100, "portico-sync-loop")]
        with pytest.raises(RequestTimeout):
            client.call_tool("slow_compute", {"seconds": 30}, timeout=0.3)
        with pytest.raises(McpError):
            client.send_request("no/such/method")


def test_blocking_clients_work_from_several_threads(server: Server) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            with Client(server.url) as client:
                for i in range(20):
                    assert client.call_tool("echo", {"message": f"{n}-{i}"}).content[0].text == f"{n}-{i}"
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []


@pytest.mark.parametrize("protocol", ["2026-07-28", "2025-11-25"])
def test_the_blocking_client_iterates_notifications_of_a_listen(server: Server, protocol: str) -> None:
    with Client(server.url, protocol=protocol) as client:
        with client.notifications() as notifications, client.listen(tools=True) as subscription:
            assert subscription.granted.toolsListChanged is True
            client.call_tool("test_trigger_tool_change")
            methods: list[str] = []
            for notification in notifications:
                methods.append(notification.method)
                if notification.method == "notifications/tools/list_changed":
                    break
            assert methods[-1] == "notifications/tools/list_changed"
        stream = client.notifications()
        with pytest.raises(TimeoutError):
            stream.get(timeout=0.2)
    # Closing the client ends the iteration.
    assert stream.get() is None
    assert list(stream) == []
