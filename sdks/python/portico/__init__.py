"""Portico's Python SDK: an MCP client over Portico's Rust client core.

.. code-block:: python

    from portico import Client

    async with Client("http://127.0.0.1:3000/mcp") as client:
        result = await client.call_tool("echo", {"message": "hi"})
        print(result.content[0].text)

- :class:`portico.Client` (asyncio) and :class:`portico.sync.Client` (blocking);
- results are :class:`portico.Model` objects: dicts with attribute access (:mod:`portico.model`);
- exceptions are in :mod:`portico.errors`; authorization in :mod:`portico.auth`;
- the wire types of every protocol revision are typed as ``TypedDict`` stubs in
  ``portico.protocol.v2026_07_28`` and its siblings (for type checkers only).
"""

from . import errors
from ._native import __version__
from .auth import BearerAuth, OAuth
from .client import Client, Notifications, Subscription
from .errors import (
    ConnectError,
    ConnectionClosed,
    McpError,
    PorticoError,
    ProtocolError,
    RequestTimeout,
    SessionExpired,
    TransportError,
)
from .model import Model

__all__ = [
    "BearerAuth",
    "Client",
    "ConnectError",
    "ConnectionClosed",
    "McpError",
    "Model",
    "Notifications",
    "OAuth",
    "PorticoError",
    "ProtocolError",
    "RequestTimeout",
    "SessionExpired",
    "Subscription",
    "TransportError",
    "__version__",
    "errors",
]
