"""The authenticated client behind a request, and what it may see.

The API sets ``current_principal`` (and ``store.access.current_access``) for each request
with a valid access token; the checks below and the audit trail read it.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from gateway.auth.scopes import Scopes
from gateway.errors import Forbidden
from gateway.store.access import ADMIN_ONLY_TYPES, Access
from gateway.store.clients import CLIENT_SYSTEM


@dataclass(frozen=True)
class Principal:
    """A client acting with a token: its granted scopes, organizations and role."""

    client_id: str
    scopes: Scopes
    organizations: tuple[str, ...]
    admin: bool

    def access(self) -> Access:
        """What this client may read; admins see every patient and every Subscription."""
        if self.admin:
            return Access(readable_types=self.scopes.readable_types())
        return Access(readable_types=self.scopes.readable_types(),
                      organizations=self.organizations,
                      owner=(CLIENT_SYSTEM, self.client_id), hidden_types=ADMIN_ONLY_TYPES)

    def require(self, resource_type: str, permission: str, where: str | None = None) -> None:
        """403 unless a granted scope allows ``permission`` on ``resource_type``."""
        if self.scopes.allows(resource_type, permission):
            return
        wanted = f"system/{resource_type}.{permission}"
        raise Forbidden(f"The access token's scopes do not allow this ({wanted} needed).",
                        expression=[where] if where else None)

    def require_admin(self) -> None:
        if not self.admin:
            raise Forbidden("Only administrator clients may do this.")


current_principal: ContextVar[Principal | None] = ContextVar("gateway_principal",
                                                             default=None)
