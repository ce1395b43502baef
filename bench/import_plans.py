"""``python -m bench.import_plans``: ``gateway import`` of N case-management plans with their
care-team rosters (NDJSON), progress bar on, against a baseline measured in the same run:
``gateway load`` of the very FHIR resources that import produced (one transaction Bundle
per plan and per team, people and organizations first), on a fresh database.

    .venv/bin/python -m bench.import_plans                 # 10,000 plans, SQLite
    .venv/bin/python -m bench.import_plans --plans 200     # a quick try-out

Each plan: 3 risk factors (Conditions), 2 Goals, 4 interventions (Tasks); each roster:
4 members drawn from a shared pool of practitioners, plus a family caregiver for one
patient in three. Not a test: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text

from gateway.config import Settings
from gateway.ingest.planimport import run_import
from gateway.loader import load_files
from gateway.store.db import Database

RISKS = ["uncontrolled-diabetes", "heart-failure", "hypertension", "copd", "depression",
         "housing-instability", "polypharmacy", "missed-appointments"]
INTERVENTIONS = ["medication-review", "referral", "education", "outreach-call",
                 "appointment-scheduling", "barriers-to-care-follow-up"]
ROLES = ["pcp", "specialist", "hospitalist", "snf-nurse", "pharmacist", "social-worker"]
PARTIES = ["Organization", "Practitioner", "Patient", "RelatedPerson", "PractitionerRole"]


def _npi(n: int) -> str:
    return f"{1000000000 + n:010d}"


def generate(count: int, seed: int = 7) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``count`` plans and as many rosters, one patient each."""
    rng = random.Random(seed)
    plans, rosters = [], []
    for n in range(count):
        mrn = f"B{n:07d}"
        patient = {"identifiers": [{"authority": "NORTH", "value": mrn}]}
        risks = rng.sample(RISKS, 3)
        plans.append({
            "planId": f"BP-{n}", "source": "bench", "status": "active",
            "patient": {**patient, "family": f"Family{n}", "given": ["Pat"]},
            "enrolmentDate": "2026-01-05",
            "outreachWindow": {"start": "2026-01-05", "end": "2026-03-06"},
            "coordinator": {"id": f"cm-{n % 20}"}, "careTeamId": f"BT-{n}",
            "riskFactors": [
                {"id": f"rf-{i}", "code": code, "text": code.replace("-", " "),
                 "goals": [{"id": f"g-{n}-{i}", "description": f"Goal {i}",
                            "dueDate": "2026-03-01"}] if i < 2 else []}
                for i, code in enumerate(risks)],
            "interventions": [
                {"id": f"i-{j}", "type": rng.choice(INTERVENTIONS), "status": "planned",
                 "owner": {"npi": _npi(rng.randrange(500))}, "dueDate": "2026-01-20",
                 "riskFactors": [f"rf-{j % 3}"]} for j in range(4)]})
        members: list[dict[str, Any]] = [
            {"id": f"cm-{n % 20}", "role": "care-manager", "lead": True,
             "organization": {"id": "bench-cm"}}]
        members += [{"npi": _npi(rng.randrange(500)), "role": role,
                     "organization": {"npi": _npi(10_000 + rng.randrange(50))}}
                    for role in rng.sample(ROLES, 3)]
        if n % 3 == 0:
            members.append({"id": f"fam-{n}", "role": "family-caregiver", "family": "Kin"})
        rosters.append({"rosterId": f"BT-{n}", "source": "bench", "asOf": "2026-01-05",
                        "patient": patient, "members": _unique(members)})
    return plans, rosters


def _unique(members: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen, out = set(), []
    for member in members:
        key = member.get("npi") or member.get("id")
        if key not in seen:
            seen.add(key)
            out.append(member)
    return out


def _ndjson(path: Path, documents: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"\n".join(orjson.dumps(d) for d in documents) + b"\n")
    return path


def export_bundles(url: str, folder: Path) -> list[Path]:
    """The resources the import wrote, as transaction Bundles for ``gateway load``: people
    and organizations first (in chunks), then one Bundle per team and per plan."""
    database = Database(url)
    with database.engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT r.type, v.body FROM resource r JOIN resource_version v "
            "ON v.rid = r.rid AND v.version_id = r.version_id WHERE NOT r.deleted")).all()
    database.dispose()
    resources: dict[str, dict[str, Any]] = {}
    for kind, body in rows:
        resource = orjson.loads(body)
        resource.pop("meta", None)
        resources[f"{kind}/{resource['id']}"] = resource
    groups = [[r for r in resources.values() if r["resourceType"] == kind]
              for kind in PARTIES]
    chunks = [group[i:i + 100] for group in groups for i in range(0, len(group), 100)]
    chunks += [[r] for r in resources.values() if r["resourceType"] == "CareTeam"]
    chunks += [[plan, *(resources[ref] for ref in _owned(plan))]
               for plan in resources.values() if plan["resourceType"] == "CarePlan"]
    paths = []
    for number, chunk in enumerate(chunks):
        path = folder / f"bundle-{number:06d}.json"
        path.write_bytes(orjson.dumps({"resourceType": "Bundle", "type": "transaction",
                                       "entry": [_put(r) for r in chunk]}))
        paths.append(path)
    return paths


def _owned(plan: dict[str, Any]) -> list[str]:
    refs = [r["reference"] for r in plan.get("addresses", []) + plan.get("goal", [])]
    return refs + [a["reference"]["reference"] for a in plan.get("activity", [])]


def _put(resource: dict[str, Any]) -> dict[str, Any]:
    url = f"{resource['resourceType']}/{resource['id']}"
    return {"fullUrl": url, "resource": resource, "request": {"method": "PUT", "url": url}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plans", type=int, default=10_000)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        folder = Path(tmp)
        plans, rosters = generate(args.plans)
        files = [_ndjson(folder / "rosters.ndjson", rosters),
                 _ndjson(folder / "plans.ndjson", plans)]
        url = f"sqlite:///{folder / 'import.db'}"
        started = time.perf_counter()
        summary = run_import(Settings(database_url=url), files,
                             progress=not args.no_progress)
        imported = time.perf_counter() - started
        (folder / "bundles").mkdir()
        bundles = export_bundles(url, folder / "bundles")
        base_url = f"sqlite:///{folder / 'load.db'}"
        started = time.perf_counter()
        loaded = load_files(Settings(database_url=base_url), bundles, echo=lambda _m: None)
        baseline = time.perf_counter() - started
    report = {
        "plans": args.plans, "documents": summary.total, "outcomes": dict(summary.counts),
        "import_seconds": round(imported, 2),
        "import_plans_per_s": round(args.plans / imported, 1),
        "baseline_load_seconds": round(baseline, 2),
        "baseline_plans_per_s": round(args.plans / baseline, 1),
        "baseline_resources": loaded.resources, "baseline_failed": loaded.failed,
        "target_plans_per_s": 300}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
