"""Results with attribute access: :class:`Model`.

Results arrive as JSON and are decoded into :class:`Model` objects: plain ``dict`` subclasses
whose keys are also attributes, named as on the wire (camelCase, like the official ``mcp``
SDK's models): ``result.content[0].text``, ``result.structuredContent``, ``result.isError``,
``tools.tools[0].inputSchema``. A member the server left out reads as ``None``. Being dicts,
they compare with, print as and serialize to exactly the JSON the server sent, members the
schema does not name included.

Why not generated classes: the wire types are generated for every revision as ``TypedDict``
stubs (``portico.protocol.v2026_07_28``, …), which describe these same dicts for a type
checker; a ``Model`` *is* such a dict, so ``cast("CallToolResult", result)`` gives typed item
access where wanted, and attribute access stays ``Any``. Decoding is ``json.loads`` with an
object hook — no per-type code, no validation cost beyond what the Rust core already did.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["Model", "decode", "plain"]


class Model(dict[str, Any]):
    """A JSON object whose members are also attributes (missing ones read as ``None``)."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | {k for k in self if k.isidentifier()})

    def model_dump(self) -> dict[str, Any]:
        """The object as plain dicts and lists (a deep copy)."""
        result: dict[str, Any] = json.loads(json.dumps(self))
        return result


def decode(text: str) -> Any:
    """JSON text as :class:`Model` objects (objects) and lists."""
    return json.loads(text, object_hook=Model)


def plain(value: Any) -> Any:
    """What a callback returned, made JSON-ready: mappings and sequences as they are, objects
    with ``model_dump`` (pydantic models, such as the official SDK's types) dumped by alias."""
    dump = getattr(value, "model_dump", None)
    if dump is not None and not isinstance(value, dict):
        return dump(by_alias=True, exclude_none=True, mode="json")
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
