"""Results reach every event loop that awaits them, and a loop's results channel (a socket pair
the loop watches, see ``sdks/python/src/complete.rs``) goes away with the loop."""

from __future__ import annotations

import asyncio
import gc
import os
import threading

from portico import Client, _native

from conftest import Server


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def calls(url: str, tag: str, count: int) -> list[str]:
    async with Client(url) as client:
        results = await asyncio.gather(*(client.call_tool("echo", {"message": f"{tag}-{i}"}) for i in range(count)))
        return [r.content[0].text for r in results]


def test_loops_one_after_another_each_get_their_results_and_leave_no_socket(server: Server) -> None:
    assert asyncio.run(calls(server.url, "warm", 3)) == [f"warm-{i}" for i in range(3)]
    gc.collect()
    before = open_fds()
    for round in range(5):
        assert asyncio.run(calls(server.url, f"r{round}", 20)) == [f"r{round}-{i}" for i in range(20)]
    gc.collect()
    # Each loop's socket pair was closed with the loop (a few descriptors of slack for the
    # runtime's own, which come and go).
    assert open_fds() <= before + 2
    assert _native.in_flight() == 0


def test_loops_on_several_threads_at_once_each_get_their_own_results(server: Server) -> None:
    outcomes: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def run(tag: str) -> None:
        try:
            outcomes[tag] = asyncio.run(calls(server.url, tag, 200))
        except BaseException as error:  # reported below, with the thread's tag
            errors.append(error)

    threads = [threading.Thread(target=run, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert outcomes == {f"t{n}": [f"t{n}-{i}" for i in range(200)] for n in range(4)}
