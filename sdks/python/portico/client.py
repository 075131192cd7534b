"""The asyncio client: :class:`Client`.

.. code-block:: python

    async with Client("http://127.0.0.1:3000/mcp") as client:
        tools = await client.list_tools()
        result = await client.call_tool("echo", {"message": "hi"})
        print(result.content[0].text)

The target picks the transport: an ``http(s)://`` URL is Streamable HTTP (``transport="sse"``
for the legacy HTTP+SSE transport of 2024-11-05 servers), a ``ws://`` URL is WebSocket, and a
list of strings is a command to spawn and talk to over stdio. ``protocol`` picks the era:
``"auto"`` (``server/discover``, falling back to ``initialize`` for a server of the stateful
era), ``"2026-07-28"`` (stateless) or a stateful revision such as ``"2025-11-25"``.

Every call is the Rust client core's (``portico_core::client``); results are :class:`Model`
objects (see :mod:`portico.model`), failures are :mod:`portico.errors` exceptions. Cancelling
the task awaiting a call cancels the request on the wire; closing the client (leaving the
``async with``) fails the calls still in flight with :class:`~portico.errors.ConnectionClosed`.
"""

from __future__ import annotations

import asyncio
import atexit
import inspect
import itertools
import json
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal

from . import _native
from .auth import BearerAuth, OAuth
from .errors import INTERNAL_ERROR, McpError, PorticoError
from .model import Model, decode, plain

__all__ = ["Client", "Notifications", "Subscription"]

_log = logging.getLogger("portico")

#: A callback: a plain function or a coroutine function taking one argument.
Callback = Callable[[Model], Any]
#: ``progress_callback(progress, total, message)``, as in the official SDK.
ProgressCallback = Callable[[float, "float | None", "str | None"], Any]

Transport = Literal["auto", "http", "ws", "sse", "stdio"]

_tokens = itertools.count(1)

# Let the native runtime's last completions reach Python before the interpreter finalizes
# (see `quiesce` in sdks/python/src/lib.rs): a fraction of a second at exit, at most.
atexit.register(_native.quiesce, 0.2)


def _weak_dispatch(client: Client) -> Callable[[str, str], Awaitable[str]]:
    """``client._dispatch`` for the native client to call, holding the client weakly: the
    native client lives as long as the client, so a strong reference from it back to the
    client would be a cycle through Rust that Python's collector cannot see, and every client
    (with its event loop) would live on after it was closed and dropped."""
    ref = weakref.ref(client)

    async def dispatch(method: str, params_json: str) -> str:
        target = ref()
        if target is None:
            return json.dumps({"error": {"code": INTERNAL_ERROR, "message": "the client is gone"}})
        return await target._dispatch(method, params_json)

    return dispatch


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


class Client:
    """An MCP client over one transport; use it as ``async with Client(...) as client``.

    :param target: an ``http(s)://`` or ``ws://`` URL, or a command line (list of strings).
    :param transport: ``"auto"`` (from the target), ``"http"``, ``"ws"``, ``"sse"`` (legacy
        HTTP+SSE) or ``"stdio"``.
    :param protocol: ``"auto"``, ``"2026-07-28"``, ``"2025-11-25"``, ``"2025-06-18"``,
        ``"2025-03-26"`` or ``"2024-11-05"``.
    :param timeout: seconds a request waits for its answer (default 60).
    :param auth: a bearer token (``str``), :class:`~portico.auth.BearerAuth` or
        :class:`~portico.auth.OAuth` (HTTP transports).
    :param headers: headers sent with every HTTP request.
    :param sampling_callback: answers ``sampling/createMessage`` (params → ``CreateMessageResult``).
    :param elicitation_callback: answers ``elicitation/create`` (params → ``ElicitResult``).
    :param roots: the client's roots (a list of ``{"uri", "name"}``), or ``list_roots_callback``.
    :param logging_callback: gets the params of every ``notifications/message``.
    :param message_handler: gets every notification (``{"method", "params"}``).
    :param env: environment of the spawned command (stdio); ``cwd`` its working directory.

    Callbacks may be plain or ``async`` functions. An exception raised in a sampling,
    elicitation or roots callback answers the server with a JSON-RPC error
    (:class:`~portico.errors.McpError` keeps its code; anything else is ``-32603``) and the
    client goes on working.

    **Progress.** A call given a ``progress_callback(progress, total, message)``
    (:meth:`call_tool`, :meth:`read_resource`, :meth:`send_request`) sends a progress token,
    and every ``notifications/progress`` the server sends about the call before its result
    reaches the callback, in the order sent, before the call returns — over every transport,
    as with the official SDKs. The reports are taken on the transport's reading path as they
    arrive (the Rust core's per-call observer), not from the notification stream, which may
    trail the result; the callback runs on the task awaiting the call, one report at a time
    (awaited when it is a coroutine function), so a slow callback delays the call's return,
    not the connection. A callback more than ``notification_capacity`` reports behind loses
    the oldest (logged as a warning). A callback that raises is logged (logger ``"portico"``)
    and the call goes on, its next reports still given to the callback, as the official
    Python SDK does. Reports the server sends after the call's result reach no callback (a
    debug log says so), but for one read in the instant the client is still taking the result,
    which may yet reach it, in order, before the call returns. Progress notifications also
    reach ``message_handler`` and :meth:`notifications`, like every notification.
    """

    def __init__(
        self,
        target: str | Sequence[str],
        *,
        transport: Transport = "auto",
        protocol: str = "auto",
        timeout: float | None = None,
        auth: str | BearerAuth | OAuth | None = None,
        headers: Mapping[str, str] | None = None,
        client_name: str = "portico-python",
        client_version: str | None = None,
        sampling_callback: Callback | None = None,
        elicitation_callback: Callback | None = None,
        roots: Sequence[Mapping[str, Any]] | None = None,
        list_roots_callback: Callable[[], Any] | None = None,
        logging_callback: Callback | None = None,
        message_handler: Callback | None = None,
        capabilities: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        validate_output: bool = True,
        renew_sessions: bool = True,
        connect_timeout: float | None = None,
        max_concurrent_requests: int | None = None,
        notification_capacity: int | None = None,
    ) -> None:
        self._kind, self._target = _resolve(target, transport)
        self._sampling = sampling_callback
        self._elicitation = elicitation_callback
        self._roots = list(roots) if roots is not None else None
        self._list_roots = list_roots_callback
        self._logging = logging_callback
        self._message_handler = message_handler
        if isinstance(auth, str):
            auth = BearerAuth(auth)
        self._options: dict[str, Any] = {
            "client_name": client_name,
            "client_version": client_version,
            "protocol": protocol,
            "request_timeout": timeout,
            "connect_timeout": connect_timeout,
            "capabilities": dict(capabilities) if capabilities is not None else self._capabilities(),
            "headers": dict(headers or {}),
            "env": dict(env) if env is not None else None,
            "cwd": cwd,
            "auth": auth._options() if auth is not None else None,
            "validate_output": validate_output,
            "renew_sessions": renew_sessions,
            "max_concurrent_requests": max_concurrent_requests,
            "notification_capacity": notification_capacity,
        }
        self._native: _native.NativeClient | None = None
        self._pump: asyncio.Task[None] | None = None
        self._streams: set[Notifications] = set()
        self._subscriptions: dict[str, Subscription] = {}
        self._server: Model = Model()

    def _capabilities(self) -> dict[str, Any]:
        capabilities: dict[str, Any] = {}
        if self._sampling is not None:
            capabilities["sampling"] = {}
        if self._elicitation is not None:
            capabilities["elicitation"] = {"form": {}}
        if self._roots is not None or self._list_roots is not None:
            capabilities["roots"] = {}
        return capabilities

    # -- connection ---------------------------------------------------------------------------

    async def connect(self) -> Client:
        """Connects and negotiates the protocol (``async with`` does this)."""
        if self._native is not None:
            return self
        options = {k: v for k, v in self._options.items() if v is not None}
        native = await _native.connect(self._kind, self._target, json.dumps(options), _weak_dispatch(self))
        self._native = native
        self._server = decode(native.server_json())
        receiver = native.notifications()
        self._pump = asyncio.get_running_loop().create_task(self._pump_notifications(receiver))
        return self

    async def close(self) -> None:
        """Closes the connection (ends the session, stops the spawned command). Calls still in
        flight fail with :class:`~portico.errors.ConnectionClosed`. Closing twice does nothing."""
        native = self._native
        if native is None:
            return
        try:
            await native.close()
        finally:
            # The pump ends by itself once the connection is closed (its receiver answers
            # None); waiting for that, rather than cancelling it, leaves no native call that
            # would complete after the event loop (or the interpreter) is gone.
            if self._pump is not None:
                done, _ = await asyncio.wait({self._pump}, timeout=5)
                if not done:
                    self._pump.cancel()
                    try:
                        await self._pump
                    except (asyncio.CancelledError, Exception):
                        pass
            for stream in list(self._streams):
                stream._end()

    async def __aenter__(self) -> Client:
        return await self.connect()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def _client(self) -> _native.NativeClient:
        if self._native is None:
            raise PorticoError("the client is not connected: use `async with Client(...)` or `await client.connect()`")
        return self._native

    @property
    def server(self) -> Model:
        """What the server said about itself: ``protocolVersion``, ``serverInfo``,
        ``capabilities``, ``instructions``, ``supportedVersions``."""
        return self._server

    @property
    def protocol_version(self) -> str:
        """The revision in use (``"2026-07-28"``, ``"2025-11-25"``, …)."""
        version: str = self._server.get("protocolVersion", "")
        return version

    @property
    def is_stateless(self) -> bool:
        """Whether the connection is 2026-07-28 (no session)."""
        return self._client.is_stateless()

    @property
    def is_closed(self) -> bool:
        """Whether the connection is closed."""
        return self._native is None or self._native.is_closed()

    # -- calls --------------------------------------------------------------------------------

    async def _call(
        self,
        start: Callable[[_native.NativeProgress | None], Awaitable[str]],
        progress_callback: ProgressCallback | None,
    ) -> Model:
        """Runs a native call; with a ``progress_callback``, hands it the call's progress
        reports, in order, before returning the result (see the class's docstring)."""
        if progress_callback is None:
            result: Model = decode(await start(None))
            return result
        progress = self._client.progress(f"portico-py-{next(_tokens)}")
        call = asyncio.ensure_future(start(progress))
        try:
            # The reports, then None once the call has ended (its result is then ready).
            while (report := await progress.next()) is not None:
                params: Model = decode(report)
                try:
                    await _maybe_await(progress_callback(params.progress, params.total, params.message))
                except Exception:
                    _log.exception("the progress_callback raised (the call goes on)")
            text = await call
        finally:
            if not call.done():
                # This task was cancelled: so is the call (on the wire too).
                call.cancel()
            elif not call.cancelled():
                call.exception()  # retrieved, so asyncio does not warn about it
        missed = progress.missed()
        if missed:
            _log.warning("the progress_callback fell behind: %d progress reports were dropped", missed)
        result = decode(text)
        return result

    async def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        progress_callback: ProgressCallback | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> Model:
        """``tools/call``. A tool that fails is a result with ``isError`` set, not an exception.

        ``progress_callback(progress, total, message)`` gets every progress report the server
        sends about the call before its result, in order, before this returns (see
        :class:`Client`)."""
        arguments_json = json.dumps(plain(arguments) if arguments is not None else {})
        meta_json = json.dumps(plain(meta)) if meta else None
        return await self._call(
            lambda progress: self._client.call_tool(name, arguments_json, timeout, progress, meta_json),
            progress_callback,
        )

    async def list_tools(self, cursor: str | None = None) -> Model:
        """One page of ``tools/list`` (``.tools``, ``.nextCursor``)."""
        result: Model = decode(await self._client.list_tools(cursor))
        return result

    async def list_all_tools(self) -> list[Model]:
        """Every tool, following ``nextCursor``."""
        return await self._all(self.list_tools, "tools")

    async def list_resources(self, cursor: str | None = None) -> Model:
        """One page of ``resources/list`` (``.resources``, ``.nextCursor``)."""
        result: Model = decode(await self._client.list_resources(cursor))
        return result

    async def list_all_resources(self) -> list[Model]:
        """Every resource, following ``nextCursor``."""
        return await self._all(self.list_resources, "resources")

    async def list_resource_templates(self, cursor: str | None = None) -> Model:
        """One page of ``resources/templates/list`` (``.resourceTemplates``, ``.nextCursor``)."""
        result: Model = decode(await self._client.list_resource_templates(cursor))
        return result

    async def list_prompts(self, cursor: str | None = None) -> Model:
        """One page of ``prompts/list`` (``.prompts``, ``.nextCursor``)."""
        result: Model = decode(await self._client.list_prompts(cursor))
        return result

    async def list_all_prompts(self) -> list[Model]:
        """Every prompt, following ``nextCursor``."""
        return await self._all(self.list_prompts, "prompts")

    async def _all(self, page: Callable[[str | None], Awaitable[Model]], key: str) -> list[Model]:
        items: list[Model] = []
        cursor: str | None = None
        for _ in range(1000):
            result = await page(cursor)
            items.extend(result.get(key) or [])
            cursor = result.nextCursor
            if not cursor:
                return items
        raise PorticoError(f"{key}: more than 1000 pages")

    async def read_resource(
        self,
        uri: str,
        *,
        timeout: float | None = None,
        progress_callback: ProgressCallback | None = None,
    ) -> Model:
        """``resources/read`` (``.contents``); ``progress_callback`` as in :meth:`call_tool`."""
        return await self._call(
            lambda progress: self._client.read_resource(str(uri), timeout, progress, None), progress_callback
        )

    async def get_prompt(
        self,
        name: str,
        arguments: Mapping[str, str] | None = None,
        *,
        timeout: float | None = None,
    ) -> Model:
        """``prompts/get`` with string arguments (``.messages``)."""
        text = await self._client.get_prompt(name, json.dumps(dict(arguments or {})), timeout, None, None)
        result: Model = decode(text)
        return result

    async def complete(
        self,
        ref: Mapping[str, Any],
        argument: Mapping[str, str],
        context: Mapping[str, Any] | None = None,
    ) -> Model:
        """``completion/complete``: ``ref`` is ``{"type": "ref/prompt", "name": …}`` or
        ``{"type": "ref/resource", "uri": …}``, ``argument`` is ``{"name": …, "value": …}``;
        the suggestions are in ``.completion.values``."""
        text = await self._client.complete(
            json.dumps(plain(ref)),
            json.dumps(plain(argument)),
            json.dumps(plain(context)) if context is not None else None,
        )
        result: Model = decode(text)
        return result

    async def set_logging_level(self, level: str) -> None:
        """Asks for log messages at ``level`` and above (``"debug"`` … ``"emergency"``); they
        arrive at ``logging_callback`` and as notifications."""
        await self._client.set_level(level)

    async def ping(self) -> None:
        """``ping`` (sessions; 2026-07-28 has none and raises
        :class:`~portico.errors.UnsupportedMethod`)."""
        await self._client.ping()

    async def send_request(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        progress_callback: ProgressCallback | None = None,
    ) -> Model:
        """Any request, with the era's ``_meta`` added; the result as the server sent it.
        ``progress_callback`` as in :meth:`call_tool`."""
        params_json = json.dumps(plain(params) if params else {})
        return await self._call(
            lambda progress: self._client.request(method, params_json, timeout, progress), progress_callback
        )

    # -- notifications and subscriptions --------------------------------------------------------

    async def subscribe(self, uri: str) -> None:
        """Asks for ``notifications/resources/updated`` of ``uri``: ``resources/subscribe`` in a
        session, a ``subscriptions/listen`` stream in 2026-07-28."""
        if self.is_stateless:
            if uri not in self._subscriptions:
                self._subscriptions[uri] = await self.listen(resource_uris=[uri])
        else:
            await self._client.subscribe(uri)

    async def unsubscribe(self, uri: str) -> None:
        """Stops the notifications :meth:`subscribe` asked for."""
        if self.is_stateless:
            subscription = self._subscriptions.pop(uri, None)
            if subscription is not None:
                await subscription.close()
        else:
            await self._client.unsubscribe(uri)

    async def listen(
        self,
        *,
        tools: bool = False,
        prompts: bool = False,
        resources: bool = False,
        resource_uris: Sequence[str] = (),
    ) -> Subscription:
        """Asks for change notifications, in either era: a ``subscriptions/listen`` stream
        (2026-07-28, acknowledged before this returns) or, in a session, ``resources/subscribe``
        for each URI. The notifications arrive on :meth:`notifications` and the callbacks."""
        wanted: dict[str, Any] = {}
        if tools:
            wanted["toolsListChanged"] = True
        if prompts:
            wanted["promptsListChanged"] = True
        if resources:
            wanted["resourcesListChanged"] = True
        if resource_uris:
            wanted["resourceSubscriptions"] = list(resource_uris)
        return Subscription(await self._client.listen(json.dumps(wanted)))

    def notifications(self, maxsize: int = 256) -> Notifications:
        """An async iterator of the notifications the server sends from now on
        (``{"method", "params"}`` as :class:`Model`); it ends when the client closes. A reader
        that falls more than ``maxsize`` behind loses the oldest."""
        stream = Notifications(self, maxsize)
        self._streams.add(stream)
        return stream

    async def _pump_notifications(self, receiver: _native.NativeNotifications) -> None:
        while True:
            text = await receiver.recv()
            if text is None:
                break
            notification: Model = decode(text)
            params: Model = notification.params or Model()
            # Progress reaches the progress_callback of its call another way (see `_call`);
            # here only the reports the server sent after their call's result are told apart.
            if notification.pop("late", False):
                _log.debug(
                    "a progress report for %r came after its call's result: no progress_callback gets it",
                    params.progressToken,
                )
            try:
                if notification.method == "notifications/message" and self._logging is not None:
                    await _maybe_await(self._logging(params))
                if self._message_handler is not None:
                    await _maybe_await(self._message_handler(notification))
            except Exception:
                _log.exception("a notification callback raised (the notification was %s)", notification.method)
            for stream in list(self._streams):
                stream._put(notification)
        for stream in list(self._streams):
            stream._end()

    # -- the server's questions ---------------------------------------------------------------

    async def _dispatch(self, method: str, params_json: str) -> str:
        """Runs the callback for one question of the server; answers ``{"result"}`` or
        ``{"error"}`` as JSON (never raises: the server gets an error, the client goes on)."""
        try:
            params: Model = decode(params_json)
            if method == "sampling/createMessage" and self._sampling is not None:
                result = await _maybe_await(self._sampling(params))
            elif method == "elicitation/create" and self._elicitation is not None:
                result = await _maybe_await(self._elicitation(params))
            elif method == "roots/list" and self._list_roots is not None:
                result = await _maybe_await(self._list_roots())
                if isinstance(result, (list, tuple)):
                    result = {"roots": result}
            elif method == "roots/list" and self._roots is not None:
                result = {"roots": self._roots}
            else:
                return json.dumps({"error": {"code": -32601, "message": f"Method not found: {method}"}})
            return json.dumps({"result": plain(result)})
        except McpError as e:
            error: dict[str, Any] = {"code": e.code, "message": e.rpc_message}
            if e.data is not None:
                error["data"] = plain(e.data)
            return json.dumps({"error": error})
        except Exception as e:
            _log.warning("the %s callback raised %s: %s", method, type(e).__name__, e)
            return json.dumps({"error": {"code": INTERNAL_ERROR, "message": f"{type(e).__name__}: {e}"}})


class Notifications:
    """The notifications of one client, from the moment :meth:`Client.notifications` was
    called: ``async for notification in client.notifications(): …``. Also an async context
    manager that stops receiving on exit."""

    def __init__(self, client: Client, maxsize: int) -> None:
        self._client = client
        self._queue: asyncio.Queue[Model | None] = asyncio.Queue(maxsize=max(1, maxsize) + 1)
        self._maxsize = max(1, maxsize)
        self.missed = 0

    def _put(self, notification: Model) -> None:
        while self._queue.qsize() >= self._maxsize:
            self._queue.get_nowait()
            self.missed += 1
        self._queue.put_nowait(notification)

    def _end(self) -> None:
        self._client._streams.discard(self)
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    def close(self) -> None:
        """Stops receiving; the iteration ends."""
        self._end()

    def __aiter__(self) -> AsyncIterator[Model]:
        return self

    async def __anext__(self) -> Model:
        notification = await self._queue.get()
        if notification is None:
            self._queue.put_nowait(None)
            raise StopAsyncIteration
        return notification

    async def get(self, timeout: float | None = None) -> Model | None:
        """The next notification, or ``None`` when the stream ended; raises ``TimeoutError``
        after ``timeout`` seconds."""
        try:
            return await asyncio.wait_for(self.__anext__(), timeout)
        except StopAsyncIteration:
            return None

    async def __aenter__(self) -> Notifications:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class Subscription:
    """Change notifications asked for with :meth:`Client.listen`; :meth:`close` ends them."""

    def __init__(self, native: _native.NativeSubscription) -> None:
        self._native = native
        #: What the server agreed to send (a ``SubscriptionFilter``).
        self.granted: Model = decode(native.granted_json())
        id_json = native.id_json()
        #: The ``subscriptions/listen`` request's id, which its notifications carry in
        #: ``_meta["io.modelcontextprotocol/subscriptionId"]``; ``None`` in a session.
        self.id: Any = json.loads(id_json) if id_json is not None else None

    async def close(self) -> None:
        """Cancels the ``subscriptions/listen`` stream, or unsubscribes the session's URIs."""
        await self._native.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _resolve(target: str | Sequence[str], transport: Transport) -> tuple[str, list[str]]:
    """The native transport kind and target for what the user gave."""
    if isinstance(target, str):
        if transport == "stdio":
            raise PorticoError("transport='stdio' needs a command line: a list of strings")
        scheme = target.split(":", 1)[0].lower()
        if transport == "auto":
            if scheme in ("http", "https"):
                transport = "http"
            elif scheme in ("ws", "wss"):
                transport = "ws"
            else:
                raise PorticoError(
                    f"{target!r} is not an http(s):// or ws:// URL; to run a command over stdio pass it "
                    "as a list: Client(['command', 'arg'])"
                )
        return transport, [target]
    argv = [str(part) for part in target]
    if not argv:
        raise PorticoError("the command line is empty")
    if transport not in ("auto", "stdio"):
        raise PorticoError(f"a command line runs over stdio, not transport={transport!r}")
    return "stdio", argv
