"""SMART scopes for systems: parse, grant, check (pure).

SMART App Launch 2.x, "Scopes and Launch Context" (hl7.org/fhir/smart-app-launch/scopes-and-
launch-context.html): a v2 scope is ``system/<Type|*>.<cruds>`` (create, read, update,
delete, search; letters in that order); a v1 scope is ``system/<Type|*>.<read|write|*>``
(read = ``rs``, write = ``cud``, ``*`` = ``cruds``). Backend services only hold ``system/``
scopes; ``patient/`` and ``user/`` scopes, and anything else, grant nothing here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PERMISSIONS = "cruds"
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_SCOPE = re.compile(r"^system/(\*|[A-Z][A-Za-z]{0,63})\.([a-z*]+)$")


@dataclass(frozen=True)
class Grant:
    """Permissions on one resource type (``*`` for all types)."""

    resource_type: str
    permissions: frozenset[str]


def parse_scope(scope: str) -> Grant | None:
    """The grant a scope string stands for, or None when it is not a system scope."""
    match = _SCOPE.match(scope)
    if match is None:
        return None
    resource_type, action = match.groups()
    letters = _V1.get(action, action)
    if not letters or any(c not in PERMISSIONS for c in letters) or not _ordered(letters):
        return None
    return Grant(resource_type, frozenset(letters))


def _ordered(letters: str) -> bool:
    """v2 permissions appear at most once each, in the order c, r, u, d, s."""
    positions = [PERMISSIONS.index(c) for c in letters]
    return positions == sorted(set(positions))


def format_grant(grant: Grant) -> str:
    letters = "".join(c for c in PERMISSIONS if c in grant.permissions)
    return f"system/{grant.resource_type}.{letters}"


class Scopes:
    """A set of grants, answering whether a permission on a type is held."""

    def __init__(self, grants: list[Grant]) -> None:
        self.grants = grants

    @classmethod
    def parse(cls, text: str | list[str] | tuple[str, ...]) -> Scopes:
        words = text.split() if isinstance(text, str) else list(text)
        return cls([g for g in (parse_scope(w) for w in words) if g is not None])

    def permissions(self, resource_type: str) -> frozenset[str]:
        held: set[str] = set()
        for grant in self.grants:
            if grant.resource_type in ("*", resource_type):
                held |= grant.permissions
        return frozenset(held)

    def allows(self, resource_type: str, permission: str) -> bool:
        return permission in self.permissions(resource_type)

    def readable_types(self) -> frozenset[str] | None:
        """Types this holder may read (``r``); None when it may read every type."""
        types = {g.resource_type for g in self.grants if "r" in g.permissions}
        return None if "*" in types else frozenset(types)

    def granted(self, requested: Scopes) -> Scopes:
        """What of ``requested`` these (allowed) scopes permit: each requested grant cut
        down to the permissions allowed on its type; a requested ``*`` grant against
        allowed grants on named types yields those named grants."""
        out: list[Grant] = []
        for want in requested.grants:
            if want.resource_type != "*":
                held = want.permissions & self.permissions(want.resource_type)
                if held:
                    out.append(Grant(want.resource_type, held))
                continue
            for have in self.grants:
                held = want.permissions & have.permissions
                if held:
                    out.append(Grant(have.resource_type, held))
        return Scopes(_merged(out))

    def __str__(self) -> str:
        return " ".join(format_grant(g) for g in self.grants)

    def __bool__(self) -> bool:
        return bool(self.grants)


def _merged(grants: list[Grant]) -> list[Grant]:
    by_type: dict[str, set[str]] = {}
    for grant in grants:
        by_type.setdefault(grant.resource_type, set()).update(grant.permissions)
    return [Grant(t, frozenset(p)) for t, p in by_type.items()]
