"""Every way a call fails, one exception class each, all under :class:`PorticoError`.

The native module raises these classes (its mapping from the Rust client core's ``ClientError``
is the one place where errors cross the boundary, ``sdks/python/src/errors.rs``):

=========================  ===============================================================
exception                  when
=========================  ===============================================================
:class:`McpError`          the server answered with a JSON-RPC error (``.code``, ``.data``)
:class:`InputError`        a 2026-07-28 ``input_required`` round could not be answered
:class:`RequestTimeout`    no answer within the timeout (also a builtin ``TimeoutError``)
:class:`SessionExpired`    the server forgot the session and it could not be renewed
:class:`TransportError`    the transport failed (``.status``: the HTTP status, if any)
:class:`ConnectError`      connecting failed (a ``TransportError``)
:class:`ConnectionClosed`  the connection is closed (a ``TransportError``)
:class:`ProtocolError`     the server broke the protocol
:class:`UnsupportedVersion`  no protocol revision in common (a ``ProtocolError``)
:class:`OutputSchemaError`   ``structuredContent`` does not match ``outputSchema``
:class:`UnsupportedMethod` the method is not part of the negotiated revision
:class:`EncodeError`       the request could not be encoded (also a ``ValueError``)
=========================  ===============================================================

A tool that ran and failed is not an exception: its result has ``isError`` set.

Raise :class:`McpError` from a sampling, elicitation or roots callback to answer the server
with that JSON-RPC error; any other exception answers ``-32603`` (internal error).
"""

from __future__ import annotations

import builtins
import json
from typing import Any

from .model import Model

__all__ = [
    "ConnectError",
    "ConnectionClosed",
    "EncodeError",
    "InputError",
    "McpError",
    "OutputSchemaError",
    "PorticoError",
    "ProtocolError",
    "RequestTimeout",
    "SessionExpired",
    "TransportError",
    "UnsupportedMethod",
    "UnsupportedVersion",
]

INTERNAL_ERROR = -32603


class PorticoError(Exception):
    """Base of every Portico exception. ``method`` is the request's method, when there was one."""

    def __init__(self, message: str, *, method: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.method = method


class McpError(PorticoError):
    """A JSON-RPC error: from the server, or raised by a callback to answer the server with."""

    def __init__(
        self,
        message: str,
        *,
        code: int = INTERNAL_ERROR,
        method: str | None = None,
        rpc_message: str | None = None,
        data: Any = None,
        data_json: str | None = None,
    ) -> None:
        super().__init__(message, method=method)
        self.code = code
        self.rpc_message = rpc_message if rpc_message is not None else message
        self.data = json.loads(data_json, object_hook=Model) if data_json is not None else data

    @property
    def error(self) -> Model:
        """The error object (``code``, ``message``, ``data``), as the official SDK names it."""
        error = Model(code=self.code, message=self.rpc_message)
        if self.data is not None:
            error["data"] = self.data
        return error


class InputError(McpError):
    """A callback could not answer an ``input_required`` round (``key``: the input's key)."""

    def __init__(self, message: str, *, key: str | None = None, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.key = key


class RequestTimeout(PorticoError, builtins.TimeoutError):
    """No answer within the timeout (``after``, in seconds); the request was cancelled."""

    def __init__(self, message: str, *, method: str | None = None, after: float | None = None) -> None:
        super().__init__(message, method=method)
        self.after = after


class SessionExpired(PorticoError):
    """The server no longer knows the session, and a new one could not be started."""


class TransportError(PorticoError):
    """The transport failed to carry a request or its answer (``status``: HTTP status or None)."""

    def __init__(self, message: str, *, method: str | None = None, status: int | None = None) -> None:
        super().__init__(message, method=method)
        self.status = status


class ConnectError(TransportError):
    """The transport could not be set up (server down, bad URL, command not found, auth)."""


class ConnectionClosed(TransportError):
    """The connection is closed: the server went away or the client was closed."""


class ProtocolError(PorticoError):
    """The server broke the protocol (a result that does not decode, too many rounds, …)."""


class UnsupportedVersion(ProtocolError):
    """The server speaks no protocol revision this client does."""

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        requested: str | None = None,
        supported: list[str] | None = None,
    ) -> None:
        super().__init__(message, method=method)
        self.requested = requested
        self.supported = supported or []


class OutputSchemaError(ProtocolError):
    """A tool's ``structuredContent`` does not match its ``outputSchema``; ``result`` is kept."""

    def __init__(
        self, message: str, *, method: str | None = None, tool: str | None = None, result_json: str | None = None
    ) -> None:
        super().__init__(message, method=method)
        self.tool = tool
        self.result = json.loads(result_json, object_hook=Model) if result_json is not None else None


class UnsupportedMethod(PorticoError):
    """The method is not part of the negotiated revision (``ping`` in 2026-07-28, …)."""

    def __init__(self, message: str, *, method: str | None = None, revision: str | None = None) -> None:
        super().__init__(message, method=method)
        self.revision = revision


class EncodeError(PorticoError, ValueError):
    """The request's params could not be encoded (tool arguments that are not an object, …)."""
