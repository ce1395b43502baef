"""Latency of a patient's timeline with 1,000 events: ``python -m bench.timeline``.

1. Runs ``gateway migrate`` on a fresh temporary SQLite file and starts the gateway as its own
   uvicorn process (uvloop + httptools, one worker), as ``bench.crud`` does.
2. Writes, through the FHIR API, one patient with ``--events`` timeline events (Encounters
   admitted, transferred and discharged, a CarePlan changed version after version, a CareTeam
   whose members join and leave, follow-up Tasks created and completed) and ``--others``
   other patients with a few events each, so the index holds more than the one patient.
3. Measures ``GET /patients/{id}/timeline?limit=1000`` from one keep-alive client, one request
   at a time (latency, not throughput), after a warm-up; and in the same run, on the same
   server, ``GET /fhir/Patient/{id}`` (a read by id) as the server's floor.
4. Stops the gateway and serves ``bench.baseline`` (a bare FastAPI endpoint) answering with
   the timeline JSON the gateway produced, measured the same way: what any FastAPI service
   pays to send that many bytes.
5. Prints p50 / p99 / mean per phase against the target (p50 < 100 ms on SQLite).

Everything it starts and creates is removed on exit, on errors and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.servers import (
    BenchError,
    Cleanup,
    Server,
    busy_cores,
    free_port,
    run_checked,
    run_with_cleanup,
    start_server,
    stop_group,
)

ROOT = Path(__file__).resolve().parent.parent
TARGET_P50_MS = 100.0
PATIENT = "bench-tl"
IMP = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.timeline",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000,
                        help="timeline events of the measured patient (default 1000)")
    parser.add_argument("--others", type=int, default=200,
                        help="other patients, with a few events each (default 200)")
    parser.add_argument("--requests", type=int, default=300,
                        help="measured requests per phase (default 300)")
    parser.add_argument("--warmup", type=int, default=30, help="unmeasured requests first")
    return parser.parse_args(argv)


# -- data -----------------------------------------------------------------------------------

def _put(resource: dict[str, Any]) -> dict[str, Any]:
    return {"resource": resource, "request": {
        "method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}}


def _encounter(patient: str, n: int, status: str, ward: int) -> dict[str, Any]:
    day = f"2026-{1 + n % 12:02d}-{1 + n % 27:02d}"
    body: dict[str, Any] = {
        "resourceType": "Encounter", "id": f"{patient}-enc-{n}", "status": status,
        "class": IMP, "subject": {"reference": f"Patient/{patient}"},
        "serviceProvider": {"reference": "Organization/bench-hosp"},
        "period": {"start": f"{day}T08:00:00Z"},
        "location": [{"location": {"reference": f"Location/bench-ward-{ward}"},
                      "status": "active", "period": {"start": f"{day}T09:00:00Z"}}]}
    if status == "finished":
        body["period"]["end"] = f"{day}T18:00:00Z"
    return body


def _task(patient: str, n: int, status: str) -> dict[str, Any]:
    return {"resourceType": "Task", "id": f"{patient}-task-{n}", "status": status,
            "intent": "order", "description": f"Follow-up {n}",
            "for": {"reference": f"Patient/{patient}"},
            "owner": {"reference": "Practitioner/bench-cm"},
            "restriction": {"period": {"end": "2030-01-01"}}}


def _plan(patient: str, n: int) -> dict[str, Any]:
    return {"resourceType": "CarePlan", "id": f"{patient}-plan", "status": "active",
            "intent": "plan", "title": "Care plan", "subject": {"reference": f"Patient/{patient}"},
            "activity": [{"detail": {"status": "scheduled", "description": f"Activity {i}"}}
                         for i in range(max(0, n - 8), n + 1)]}


def _team(patient: str, n: int) -> dict[str, Any]:
    return {"resourceType": "CareTeam", "id": f"{patient}-team", "status": "active",
            "subject": {"reference": f"Patient/{patient}"},
            "participant": [{"role": [{"text": "member"}],
                             "member": {"reference": f"Practitioner/bench-p{i}"}}
                            for i in range(max(0, n - 5), n + 1)]}


def rounds(patient: str, events: int) -> list[list[dict[str, Any]]]:
    """Transaction Bundles' entries, in order, giving ``patient`` about ``events`` entries:
    each round adds an Encounter (admit, transfer, discharge: 3), a CarePlan version with
    one activity more and, past eight, one fewer (1), a CareTeam version where one member
    joins and, past six, one leaves (2) and a Task created then completed (2): 8 events per
    round. Plans and teams keep a realistic size (up to 9 activities, 6 members)."""
    out: list[list[dict[str, Any]]] = []
    for n in range(max(1, events // 8)):
        out.append([_put(_encounter(patient, n, "in-progress", 1)), _put(_plan(patient, n)),
                    _put(_team(patient, n)), _put(_task(patient, n, "requested"))])
        out.append([_put(_encounter(patient, n, "in-progress", 2)),
                    _put(_task(patient, n, "completed"))])
        out.append([_put(_encounter(patient, n, "finished", 2))])
    return out


def shared() -> list[dict[str, Any]]:
    people = [{"resourceType": "Practitioner", "id": f"bench-p{i}",
               "name": [{"family": f"Member{i}"}]} for i in range(200)]
    return [_put(r) for r in (
        {"resourceType": "Organization", "id": "bench-hosp", "name": "Bench General"},
        {"resourceType": "Location", "id": "bench-ward-1", "name": "Ward 1"},
        {"resourceType": "Location", "id": "bench-ward-2", "name": "Ward 2"},
        {"resourceType": "Practitioner", "id": "bench-cm", "name": [{"family": "Manager"}]},
        *people)]


def load(client: httpx.Client, args: argparse.Namespace) -> None:
    def post(entries: list[dict[str, Any]]) -> None:
        answer = client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction",
                                            "entry": entries})
        if answer.status_code != 200:
            raise BenchError(f"loading failed: {answer.status_code} {answer.text[:300]}")

    post(shared())
    patients = [_put({"resourceType": "Patient", "id": f"other-{i}"})
                for i in range(args.others)] + [_put({"resourceType": "Patient", "id": PATIENT})]
    post(patients)
    for entries in rounds(PATIENT, args.events):
        post(entries)
    for i in range(args.others):
        for entries in rounds(f"other-{i}", 8):
            post(entries)


# -- measuring ------------------------------------------------------------------------------

def measure(client: httpx.Client, path: str, args: argparse.Namespace) -> list[float]:
    for _ in range(args.warmup):
        client.get(path).raise_for_status()
    times = []
    for _ in range(args.requests):
        started = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    return times


def row(name: str, times: list[float], target: str = "", met: str = "") -> str:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return (f"{name:<24} {statistics.median(ordered):>8.2f} {p99:>8.2f} "
            f"{statistics.fmean(ordered):>8.2f}  {target:<10} {met}")


def run(args: argparse.Namespace, cleanup: Cleanup) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench-timeline-"))
    cleanup.push("remove temporary directory", lambda: shutil.rmtree(tmp, ignore_errors=True))
    print(f"{os.cpu_count()} CPUs; python {platform.python_version()}; "
          f"machine load before starting: {busy_cores(2.0):.2f} busy cores", flush=True)
    url = f"sqlite:///{tmp / 'gateway.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(GATEWAY_DATABASE_URL=url, GATEWAY_LOG_LEVEL="warning",
               GATEWAY_DELIVERY_IN_PROCESS="false")
    run_checked([sys.executable, "-m", "gateway", "migrate"], env=env, cwd=tmp)
    gateway = start_server("gateway", "gateway.app:create_app", port=free_port(), workers=1,
                           env=env, cwd=tmp, app_dir=ROOT, ready_path="/fhir/metadata",
                           cleanup=cleanup)
    path = f"/patients/{PATIENT}/timeline?limit=1000"
    with httpx.Client(base_url=gateway.base, timeout=60.0) as client:
        started = time.monotonic()
        load(client, args)
        print(f"loaded in {time.monotonic() - started:.0f} s", flush=True)
        body = client.get(path)
        body.raise_for_status()
        entries = body.json()["total"]
        timeline = measure(client, path, args)
        read = measure(client, f"/fhir/Patient/{PATIENT}", args)
    stop_group(gateway.process)
    (tmp / "timeline.json").write_bytes(body.content)
    baseline = _baseline(tmp, env, cleanup)
    with httpx.Client(base_url=baseline.base, timeout=60.0) as client:
        bare = measure(client, "/fhir/CarePlan/x", args)
    met = "met" if statistics.median(timeline) < TARGET_P50_MS else "not met"
    print(f"\npatient with {entries} timeline entries ({len(body.content):,} bytes of JSON); "
          f"{args.requests} sequential requests per phase\n")
    print(f"{'phase':<24} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}  {'target':<10} result")
    print(row("baseline (same bytes)", bare))
    print(row("read Patient by id", read))
    print(row("timeline (1000 entries)", timeline, f"p50 < {TARGET_P50_MS:.0f}", met))
    print(f"\ncommand: {shlex.join(sys.orig_argv)}")
    return 0


def _baseline(tmp: Path, env: dict[str, str], cleanup: Cleanup) -> Server:
    env = {**env, "BENCH_BASELINE_BODY": str(tmp / "timeline.json")}
    return start_server("baseline", "bench.baseline:create_app", port=free_port(), workers=1,
                        env=env, cwd=tmp, app_dir=ROOT, ready_path="/fhir/CarePlan/x",
                        cleanup=cleanup)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_with_cleanup(lambda cleanup: run(args, cleanup))


if __name__ == "__main__":
    sys.exit(main())
