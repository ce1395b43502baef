"""Authorization checks that need the request body or the target resource.

The middleware (api/security.py) checks what the URL says; these run in the handlers once
the body is read: each entry of a transaction or batch Bundle needs the scope of its own
interaction (R4 http.html#transaction: every entry is an interaction of its own); a
Subscription needs read access to what it subscribes to and is stamped with the client that
made it, so only that client sees it and it is only notified of what that client may read;
reads, updates and deletes of a resource the client may not see answer 404 like an unknown
id, in the repository, whichever entry or condition names it. Without a principal
(GATEWAY_AUTH=off) they do nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from gateway.api.interactions import ADMIN_TYPES
from gateway.auth.principal import Principal, current_principal
from gateway.errors import Forbidden
from gateway.store.access import access_as
from gateway.store.clients import CLIENT_SYSTEM
from gateway.sync.criteria import parse_subscription

T = TypeVar("T")
_ENTRY_PERMISSIONS = {"POST": "c", "PUT": "u", "PATCH": "u", "DELETE": "d"}


def check_resource(resource_type: str, resource: Any, *, creating: bool, base: str,
                   where: str = "") -> bool:
    """Checks on a resource about to be written by the current client; True when the
    resource was changed (a Subscription stamped with its owner), so whatever was derived
    from the body before must be derived again."""
    principal = current_principal.get()
    if principal is None or resource_type != "Subscription" or not isinstance(resource, dict):
        return False
    spec = parse_subscription(resource, creating=creating, base_url=base)
    principal.require(spec.resource_type, "r", f"{where}Subscription.criteria")
    principal.require(spec.resource_type, "s", f"{where}Subscription.criteria")
    stamp_owner(resource, principal)
    return True


def stamp_owner(resource: dict[str, Any], principal: Principal) -> None:
    """Tag a Subscription with the client that wrote it (``meta.tag``), replacing any tag
    of that system the body carried."""
    meta = resource.setdefault("meta", {})
    tags = [t for t in meta.get("tag", []) if isinstance(t, dict)
            and t.get("system") != CLIENT_SYSTEM]
    meta["tag"] = [*tags, {"system": CLIENT_SYSTEM, "code": principal.client_id}]


def check_bundle(bundle: Any, base: str) -> None:
    """Each transaction/batch entry needs the scope of the interaction it stands for, and
    may not change a resource the client cannot see."""
    principal = current_principal.get()
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    if principal is None or not isinstance(entries, list):
        return
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        where = f"Bundle.entry[{index}]"
        request = entry.get("request") if isinstance(entry.get("request"), dict) else {}
        method = str(request.get("method", "")).upper()
        url = str(request.get("url", "")).split("?")[0].strip("/")
        resource_type = url.split("/")[0] if url else ""
        resource = entry.get("resource")
        if not resource_type and isinstance(resource, dict):
            resource_type = str(resource.get("resourceType", ""))
        if not resource_type:
            continue
        if resource_type in ADMIN_TYPES:
            if method != "GET":
                raise Forbidden(f"{resource_type} resources are written by the gateway only.",
                                expression=[f"{where}.request"])
            principal.require_admin()
        principal.require(resource_type, _entry_permission(method, url, request),
                          f"{where}.request")
        if isinstance(resource, dict):
            check_resource(resource_type, resource, creating=method == "POST", base=base,
                           where=f"{where}.resource.")


def _entry_permission(method: str, url: str, request: dict[str, Any]) -> str:
    if method == "GET":
        return "r" if "/" in url and "?" not in str(request.get("url", "")) else "s"
    return _ENTRY_PERMISSIONS.get(method, "r")


def as_feed(receive: Callable[..., T], *args: Any) -> T:
    """Map and store an inbound message (HL7 v2, Da Vinci notification, plan, roster) with
    the whole store in view, whoever sent it: identity resolution must find the patient
    the feed means, not create a second one because the sender cannot see the first. The
    message is the clinical event itself (an admission at the sender's facility, a plan
    naming its care team), so the care relationship it records is what then opens the
    patient to the sender's organization. Answers (ACKs, summaries) carry no other
    patient's data."""
    with access_as(None):
        return receive(*args)


AUDIT_ENTRIES = "gateway.audit_entries"  # request scope key: the entries' own accesses
_ENTRY_INTERACTIONS = {"POST": "create", "PUT": "update", "PATCH": "patch",
                       "DELETE": "delete"}


def note_entries(scope: dict[str, Any], bundle: Any, response: bytes | None) -> None:
    """Leave each transaction or batch entry's access (interaction, status, type, id, query) in
    the request scope for the audit trail (api/security.py): every entry is a read,
    search or write of its own and gets an AuditEvent of its own, beside the one for the
    Bundle. Only for a client's request (auth on) that was answered with a Bundle."""
    if current_principal.get() is None or not isinstance(response, bytes) \
            or not isinstance(bundle, dict) or not isinstance(bundle.get("entry"), list):
        return
    answered = orjson.loads(response).get("entry", [])
    accesses = []
    for entry, answer in zip(bundle["entry"], answered, strict=False):
        request = entry.get("request") if isinstance(entry, dict) else None
        outcome = answer.get("response") or {}
        if not isinstance(request, dict):
            continue
        method = str(request.get("method", "")).upper()
        url = str(request.get("url", ""))
        target = str(outcome.get("location") or url).split("/_history")[0]
        parts = [p for p in target.split("?")[0].split("/") if p][-2:]
        resource_type = parts[0] if parts else None
        resource_id = parts[1] if len(parts) == 2 else None
        if method == "GET":
            interaction = "read" if resource_id and "?" not in url else "search"
        else:
            interaction = _ENTRY_INTERACTIONS.get(method, "operation")
        status = str(outcome.get("status", "0")).split(" ")[0]
        query = url.split("?", 1)[1] if interaction == "search" and "?" in url else None
        accesses.append((interaction, int(status) if status.isdigit() else 0,
                         resource_type, resource_id, query))
    scope[AUDIT_ENTRIES] = accesses
