"""The blocking client: :class:`Client`, the asyncio client run on a background event loop.

.. code-block:: python

    from portico.sync import Client

    with Client("http://127.0.0.1:3000/mcp") as client:
        print(client.call_tool("echo", {"message": "hi"}).content[0].text)

One daemon thread runs one event loop for every blocking client of the process; each call
submits the asyncio call there and waits for it. Callbacks (sampling, elicitation, roots,
notifications, progress) run on that loop's thread: plain functions are called there,
coroutine functions awaited there. A call's ``progress_callback`` gets every report sent
before the call's result, in order, before the call returns (as in :class:`portico.Client`).
A ``KeyboardInterrupt`` while waiting cancels the call.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

from . import client as _aio
from .model import Model

__all__ = ["Client", "Notifications", "Subscription"]

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _loop_lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="portico-sync-loop", daemon=True)
            thread.start()
            _loop = loop
        return _loop


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    future = asyncio.run_coroutine_threadsafe(coroutine, _background_loop())
    try:
        return future.result()
    except BaseException:
        future.cancel()
        raise


class Client:
    """The blocking twin of :class:`portico.Client`: same arguments, same methods, no
    ``await``. Use it as ``with Client(...) as client``."""

    def __init__(self, target: str | Sequence[str], **options: Any) -> None:
        self._client = _aio.Client(target, **options)

    def connect(self) -> Client:
        """Connects (``with`` does this)."""
        _run(self._client.connect())
        return self

    def close(self) -> None:
        """Closes the connection."""
        _run(self._client.close())

    def __enter__(self) -> Client:
        return self.connect()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    @property
    def server(self) -> Model:
        """What the server said about itself (see :attr:`portico.Client.server`)."""
        return self._client.server

    @property
    def protocol_version(self) -> str:
        """The revision in use."""
        return self._client.protocol_version

    def call_tool(self, name: str, arguments: Mapping[str, Any] | None = None, **options: Any) -> Model:
        """``tools/call`` (see :meth:`portico.Client.call_tool`)."""
        return _run(self._client.call_tool(name, arguments, **options))

    def list_tools(self, cursor: str | None = None) -> Model:
        """One page of ``tools/list``."""
        return _run(self._client.list_tools(cursor))

    def list_all_tools(self) -> list[Model]:
        """Every tool."""
        return _run(self._client.list_all_tools())

    def list_resources(self, cursor: str | None = None) -> Model:
        """One page of ``resources/list``."""
        return _run(self._client.list_resources(cursor))

    def list_resource_templates(self, cursor: str | None = None) -> Model:
        """One page of ``resources/templates/list``."""
        return _run(self._client.list_resource_templates(cursor))

    def read_resource(self, uri: str, **options: Any) -> Model:
        """``resources/read``."""
        return _run(self._client.read_resource(uri, **options))

    def list_prompts(self, cursor: str | None = None) -> Model:
        """One page of ``prompts/list``."""
        return _run(self._client.list_prompts(cursor))

    def get_prompt(self, name: str, arguments: Mapping[str, str] | None = None, **options: Any) -> Model:
        """``prompts/get``."""
        return _run(self._client.get_prompt(name, arguments, **options))

    def complete(
        self, ref: Mapping[str, Any], argument: Mapping[str, str], context: Mapping[str, Any] | None = None
    ) -> Model:
        """``completion/complete``."""
        return _run(self._client.complete(ref, argument, context))

    def subscribe(self, uri: str) -> None:
        """Asks for updates of ``uri``."""
        _run(self._client.subscribe(uri))

    def unsubscribe(self, uri: str) -> None:
        """Stops the updates of ``uri``."""
        _run(self._client.unsubscribe(uri))

    def set_logging_level(self, level: str) -> None:
        """Asks for log messages at ``level`` and above."""
        _run(self._client.set_logging_level(level))

    def ping(self) -> None:
        """``ping`` (sessions)."""
        _run(self._client.ping())

    def send_request(self, method: str, params: Mapping[str, Any] | None = None, **options: Any) -> Model:
        """Any request."""
        return _run(self._client.send_request(method, params, **options))

    def notifications(self, maxsize: int = 256) -> Notifications:
        """A blocking iterator of the notifications the server sends from now on (see
        :meth:`portico.Client.notifications`): ``for notification in client.notifications():``.
        It ends when the client closes."""
        client = self._client

        async def make() -> _aio.Notifications:
            # Made on the loop's thread, where the client's notification pump runs.
            return client.notifications(maxsize)

        return Notifications(_run(make()))

    def listen(
        self,
        *,
        tools: bool = False,
        prompts: bool = False,
        resources: bool = False,
        resource_uris: Sequence[str] = (),
    ) -> Subscription:
        """Asks for change notifications, in either era (see :meth:`portico.Client.listen`);
        they arrive on :meth:`notifications` and the callbacks."""
        return Subscription(
            _run(self._client.listen(tools=tools, prompts=prompts, resources=resources, resource_uris=resource_uris))
        )


class Notifications:
    """The blocking twin of :class:`portico.client.Notifications`: an iterator (each step waits
    for the next notification) and a context manager that stops receiving on exit."""

    def __init__(self, stream: _aio.Notifications) -> None:
        self._stream = stream

    @property
    def missed(self) -> int:
        """Notifications dropped because this reader fell more than ``maxsize`` behind."""
        return self._stream.missed

    def get(self, timeout: float | None = None) -> Model | None:
        """The next notification, or ``None`` when the stream ended; raises ``TimeoutError``
        after ``timeout`` seconds."""
        return _run(self._stream.get(timeout))

    def __iter__(self) -> Iterator[Model]:
        return self

    def __next__(self) -> Model:
        notification = self.get()
        if notification is None:
            raise StopIteration
        return notification

    def close(self) -> None:
        """Stops receiving; the iteration ends."""
        stream = self._stream

        async def close() -> None:
            stream.close()

        _run(close())

    def __enter__(self) -> Notifications:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Subscription:
    """The blocking twin of :class:`portico.client.Subscription`."""

    def __init__(self, subscription: _aio.Subscription) -> None:
        self._subscription = subscription
        #: What the server agreed to send (a ``SubscriptionFilter``).
        self.granted: Model = subscription.granted
        #: The ``subscriptions/listen`` request's id; ``None`` in a session.
        self.id: Any = subscription.id

    def close(self) -> None:
        """Cancels the ``subscriptions/listen`` stream, or unsubscribes the session's URIs."""
        _run(self._subscription.close())

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
