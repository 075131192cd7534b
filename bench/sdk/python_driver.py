"""The Python side of `cargo xtask bench sdk`: calls `tools/call` of `echo` as fast as one
client can, with Portico's Python SDK (`portico`) or the official one (`mcp`), and prints one
JSON line: calls answered in the measured window, latency percentiles, this process's CPU time
and peak RSS, and the server's and the rest of the machine's CPU time over the same window.

Concurrency is calls in flight: N asyncio tasks sharing one client (one session, or one
stateless connection), each calling in a loop. Tools are listed once first, as a real client
does before calling (so both SDKs can check `structuredContent` against `outputSchema`).

    python python_driver.py --sdk portico|official --url URL --mode stateless|stateful
        [--concurrency 1] [--duration 2] [--warmup 1] [--server-pid PID]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import sys
import time
from typing import Any, Awaitable, Callable

MESSAGE = "hello from portico-bench"
STATELESS = "2026-07-28"
STATEFUL = "2025-11-25"
#: A call not answered within this long fails the run: each SDK's own request timeout, so the
#: driver adds nothing of its own to a call.
CALL_TIMEOUT = 10.0

Call = Callable[[], Awaitable[Any]]


def cpu_seconds() -> float:
    """This process's CPU time (user + system, every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def proc_ticks(pid: str) -> int | None:
    """utime + stime of /proc/<pid>/stat, in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 1 :].split()
    return int(fields[11]) + int(fields[12])


def machine_busy_ticks() -> int | None:
    """Every CPU's time but idle and I/O wait, from /proc/stat, in clock ticks."""
    try:
        with open("/proc/stat") as f:
            line = f.readline()
    except OSError:
        return None
    fields = [int(x) for x in line.split()[1:9]]
    return sum(fields) - fields[3] - fields[4]


def peak_rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def percentile(sorted_ns: list[int], q: float) -> float:
    """Nearest rank, as portico-bench's."""
    if not sorted_ns:
        return 0.0
    rank = min(max(math.ceil(q * len(sorted_ns)), 1), len(sorted_ns))
    return sorted_ns[rank - 1] / 1e3


def check(result: Any, is_error: bool | None, text: str | None) -> None:
    if is_error:
        raise RuntimeError(f"echo failed: {result!r}")
    if text is None or MESSAGE not in text:
        raise RuntimeError(f"echo answered {result!r}")


async def portico_client(args: argparse.Namespace, stack: Any) -> tuple[Call, str]:
    import portico

    protocol = STATELESS if args.mode == "stateless" else STATEFUL
    client = await stack.enter_async_context(portico.Client(args.url, protocol=protocol, timeout=CALL_TIMEOUT))
    tools = await client.list_tools()
    if not any(t.name == "echo" for t in tools.tools):
        raise RuntimeError("the server has no `echo` tool")
    arguments = {"message": MESSAGE}

    async def call() -> Any:
        result = await client.call_tool("echo", arguments)
        if result.isError:
            raise RuntimeError(f"echo failed: {result!r}")
        return result

    first = await call()
    check(first, first.isError, first.content[0].text)
    return call, client.protocol_version


async def official_client(args: argparse.Namespace, stack: Any) -> tuple[Call, str]:
    from mcp import Client

    # "legacy": the initialize handshake at the newest handshake revision (2025-11-25);
    # "2026-07-28": the stateless per-request envelope, adopted without a probe.
    mode = STATELESS if args.mode == "stateless" else "legacy"
    client = await stack.enter_async_context(Client(args.url, mode=mode, read_timeout_seconds=CALL_TIMEOUT))
    tools = await client.list_tools()
    if not any(t.name == "echo" for t in tools.tools):
        raise RuntimeError("the server has no `echo` tool")
    arguments = {"message": MESSAGE}

    async def call() -> Any:
        result = await client.call_tool("echo", arguments)
        if result.is_error:
            raise RuntimeError(f"echo failed: {result!r}")
        return result

    first = await call()
    check(first, first.is_error, getattr(first.content[0], "text", None))
    return call, client.protocol_version


async def worker(call: Call, start: float, stop: float, latencies: list[int]) -> None:
    start_ns, stop_ns = int(start * 1e9), int(stop * 1e9)
    while True:
        sent = time.perf_counter_ns()
        await call()
        done = time.perf_counter_ns()
        if start_ns <= done < stop_ns:
            latencies.append(done - sent)
        if done >= stop_ns:
            return


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        connect = portico_client if args.sdk == "portico" else official_client
        call, version = await connect(args, stack)
        start = time.perf_counter() + args.warmup
        stop = start + args.duration
        latencies: list[int] = []
        tasks = [
            asyncio.ensure_future(worker(call, start, stop, latencies)) for _ in range(args.concurrency)
        ]
        server = str(args.server_pid) if args.server_pid else None
        await asyncio.sleep(max(0.0, start - time.perf_counter()))
        edges = [(cpu_seconds(), proc_ticks(server) if server else None, machine_busy_ticks(), time.perf_counter())]
        await asyncio.sleep(max(0.0, stop - time.perf_counter()))
        edges.append((cpu_seconds(), proc_ticks(server) if server else None, machine_busy_ticks(), time.perf_counter()))
        await asyncio.gather(*tasks)
    (c0, s0, m0, t0), (c1, s1, m1, t1) = edges
    measured = t1 - t0
    ticks = os.sysconf("SC_CLK_TCK")
    client_cpu = (c1 - c0) / measured * 100.0
    server_cpu = (s1 - s0) / ticks / measured * 100.0 if s0 is not None and s1 is not None else None
    other_cpu = None
    if m0 is not None and m1 is not None:
        other_cpu = max(0.0, (m1 - m0) / ticks / measured * 100.0 - client_cpu - (server_cpu or 0.0))
    latencies.sort()
    return {
        "sdk": args.sdk,
        "runtime": f"python {sys.version.split()[0]}",
        "mode": args.mode,
        "protocol_version": version,
        "concurrency": args.concurrency,
        "seconds": args.duration,
        "calls": len(latencies),
        "calls_per_second": len(latencies) / args.duration,
        "p50_us": percentile(latencies, 0.50),
        "p99_us": percentile(latencies, 0.99),
        "client_cpu_percent": client_cpu,
        "server_cpu_percent": server_cpu,
        "other_cpu_percent": other_cpu,
        "peak_rss_kib": peak_rss_kib(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sdk", choices=["portico", "official"], required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", choices=["stateless", "stateful"], default="stateful")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--server-pid", type=int)
    args = parser.parse_args()
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
