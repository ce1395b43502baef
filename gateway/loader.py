"""Load FHIR JSON files (resources or Bundles) through the same write path as the API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from gateway.config import Settings
from gateway.errors import GatewayError
from gateway.rest import bundles
from gateway.rest.interactions import FhirService
from gateway.store.db import Database
from gateway.store.migrate import upgrade
from gateway.sync.criteria import check_bundle, check_write


@dataclass
class LoadSummary:
    files: int = 0
    resources: int = 0
    failed: int = 0


def load_files(settings: Settings, paths: list[Path],
               echo: Callable[[str], Any] = print) -> LoadSummary:
    database = Database(settings.database_url)
    upgrade(database)
    service = FhirService(database)
    base = (settings.base_url or "").rstrip("/")
    summary = LoadSummary()
    try:
        for path in paths:
            summary.files += 1
            try:
                summary.resources += _load_one(service, base, orjson.loads(path.read_bytes()))
                echo(f"{path}: ok")
            except (GatewayError, orjson.JSONDecodeError, OSError) as error:
                summary.failed += 1
                echo(f"{path}: failed: {_describe(error)}")
    finally:
        database.dispose()
    return summary


def _load_one(service: FhirService, base: str, data: Any) -> int:
    if not isinstance(data, dict):
        raise GatewayError("not a FHIR resource", status=400)
    if data.get("resourceType") == "Bundle" and data.get("type") in ("transaction", "batch"):
        check_bundle(data, base)  # Subscriptions and Endpoints are checked as the API does
        bundles.process(service, base, data)
        return len(data.get("entry") or [])
    if data.get("resourceType") == "Bundle" and data.get("type") == "collection":
        as_transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": e.get("fullUrl"), "resource": e["resource"],
             "request": {"method": "PUT" if e["resource"].get("id") else "POST",
                         "url": _url(e["resource"])}}
            for e in data.get("entry") or [] if isinstance(e.get("resource"), dict)]}
        check_bundle(as_transaction, base)
        bundles.process(service, base, as_transaction)
        return len(as_transaction["entry"])
    check_write(str(data.get("resourceType")), data, creating=not data.get("id"), base_url=base)
    if data.get("id"):
        service.update(base, data["resourceType"], data["id"], data)
    else:
        service.create(base, data["resourceType"], data)
    return 1


def _describe(error: Exception) -> str:
    """The error as one line, naming the element at fault where the error knows it."""
    if not isinstance(error, GatewayError):
        return str(error)
    where = ", ".join(error.expression)
    return f"{error.message} (at {where})" if where else error.message


def _url(resource: dict[str, Any]) -> str:
    if resource.get("id"):
        return f"{resource['resourceType']}/{resource['id']}"
    return str(resource["resourceType"])
