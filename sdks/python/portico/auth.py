"""How HTTP requests are authorized: a fixed :class:`BearerAuth` token, or :class:`OAuth`, the
MCP authorization spec's OAuth 2.1 client of the Rust core (discovery, PKCE, pre-registration,
Client ID Metadata Documents, dynamic registration, client credentials, refresh, step-up).

``Client(url, auth="TOKEN")`` is short for ``auth=BearerAuth("TOKEN")``.

The authorization code flow runs with the core's headless user agent: it fetches the
authorization URL and reads the redirect back, so it suits authorization servers that approve
without a login page (machine setups, test servers). For machine-to-machine access use
:meth:`OAuth.client_credentials`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Auth", "BearerAuth", "OAuth"]


@dataclass(frozen=True)
class BearerAuth:
    """``Authorization: Bearer <token>`` on every request."""

    token: str

    def _options(self) -> dict[str, Any]:
        return {"type": "bearer", "token": self.token}


@dataclass(frozen=True)
class OAuth:
    """The OAuth 2.1 client; tokens are kept in memory for the client's life."""

    client_name: str = "portico-python"
    grant: Literal["authorization_code", "client_credentials"] = "authorization_code"
    redirect_uri: str = "http://localhost:3000/callback"
    #: Pre-registered credentials (used first when given).
    client_id: str | None = None
    client_secret: str | None = None
    #: This client's Client ID Metadata Document URL, used where the server supports it.
    client_metadata_url: str | None = None
    dynamic_registration: bool = True
    offline_access: bool = True
    #: The 2025-03-26 discovery rules for servers without protected resource metadata.
    legacy_discovery: bool = False

    @classmethod
    def client_credentials(cls, client_id: str, client_secret: str | None = None, **options: Any) -> OAuth:
        """The client credentials grant (machine to machine) with pre-registered credentials."""
        return cls(grant="client_credentials", client_id=client_id, client_secret=client_secret, **options)

    def _options(self) -> dict[str, Any]:
        return {
            "type": "oauth",
            "client_name": self.client_name,
            "grant": self.grant,
            "redirect_uri": self.redirect_uri,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "client_metadata_url": self.client_metadata_url,
            "dynamic_registration": self.dynamic_registration,
            "offline_access": self.offline_access,
            "legacy_discovery": self.legacy_discovery,
        }


Auth = BearerAuth | OAuth
