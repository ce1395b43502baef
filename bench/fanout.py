"""Notification fan-out of the gateway against a bare HTTP baseline: ``python -m bench.fanout``.

What it does, and why each step is there:

1. Starts the receiver (``bench.fanout_receiver``, a bare ASGI app recording when each request
   arrives) and the gateway, each as its own uvicorn process on 127.0.0.1 (uvloop +
   httptools), the gateway on a fresh database (a temporary SQLite file, or with
   ``--database postgresql`` a throwaway ``bench_<random>`` database) with its in-process
   delivery worker, plus ``--extra-workers`` ``gateway worker`` processes.
2. Registers ``--endpoints`` criteria Subscriptions (``Encounter``, rest-hook), each with its
   own endpoint URL on the receiver, and waits for every handshake and until every
   Subscription is ``active``.
3. **One event to N endpoints**: ``--events`` times, creates one Encounter and waits until all
   endpoints have received it; latency = receipt time - the Encounter's ``meta.lastUpdated``
   (stamped in the committing transaction), so it runs from commit to receipt.
4. **Sustained stream**: creates ``--stream`` Encounters (one patient each, so no per-patient
   ordering holds deliveries back) in transactions of ``--batch``, as fast as the gateway
   takes them; rate = notifications received / (last receipt - first commit).
5. **Baseline**, in the same run: the same requests sent straight to the same receiver by an
   httpx client in this process - N concurrent POSTs per event, and the stream's request
   count at the same concurrency - so the figures say what the gateway adds to the cost of
   sending the HTTP requests at all on this machine.
6. Prints the table against the targets (p99 < 1 s at 100 endpoints; >= 1,000
   notifications/s on PostgreSQL, 2 cores), writes ``bench/results/fanout-<database>.json``.

Everything it starts and creates is removed on exit, on errors and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import shutil
import ssl
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvloop

from bench.servers import (
    BenchError,
    Cleanup,
    Server,
    busy_cores,
    create_pg_database,
    free_port,
    run_checked,
    run_with_cleanup,
    spawn,
    start_server,
    start_tcp_server,
    stop_group,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TARGET_P99_S = 1.0
TARGET_RATE = 1000.0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fanout",
        description="Benchmark notification fan-out: one event to many endpoints, and a "
                    "sustained stream, against a bare HTTP client baseline.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    parser.add_argument("--endpoints", type=int, default=100,
                        help="Subscriptions, each with its own endpoint URL")
    parser.add_argument("--events", type=int, default=20,
                        help="single events sent to every endpoint, one after the other")
    parser.add_argument("--stream", type=int, default=100,
                        help="Encounters of the sustained stream (x endpoints notifications)")
    parser.add_argument("--batch", type=int, default=10,
                        help="Encounters per transaction in the stream")
    parser.add_argument("--extra-workers", type=int, default=0,
                        help="`gateway worker` processes beside the server's own worker")
    parser.add_argument("--env", action="append", default=[], metavar="GATEWAY_X=V",
                        help="extra gateway settings (recorded with the results)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds to wait for the deliveries of one phase")
    parser.add_argument("--output", type=Path, default=None)
    return parser.parse_args(argv)


# -- servers -------------------------------------------------------------------------------

def _gateway_env(database_url: str, port: int, settings: Sequence[str]) -> dict[str, str]:
    """Our environment minus stray GATEWAY_* settings, plus the benchmark's and ``--env``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(GATEWAY_LOG_LEVEL="warning", GATEWAY_FREEZE_GC="true")
    env.update(item.split("=", 1) for item in settings)
    env.update(GATEWAY_DATABASE_URL=database_url,
               GATEWAY_BASE_URL=f"http://127.0.0.1:{port}/fhir")
    return env


def start(args: argparse.Namespace, tmp: Path, cleanup: Cleanup) -> tuple[Server, Server]:
    if args.database == "postgresql":
        database_url, _name = create_pg_database(args.pg_admin_url, cleanup)
    else:
        database_url = f"sqlite:///{tmp / 'fanout.db'}"
    port = free_port()
    env = _gateway_env(database_url, port, args.env)
    run_checked([sys.executable, "-m", "gateway", "migrate"], env=env, cwd=tmp)
    receiver_port = free_port()
    receiver = start_tcp_server(
        "receiver", [sys.executable, "-m", "bench.fanout_receiver", "--port", str(receiver_port)],
        port=receiver_port, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp,
        cleanup=cleanup)
    gateway = start_server("gateway", "gateway.app:create_app", port=port, workers=1,
                           env=env, cwd=tmp, app_dir=ROOT, ready_path="/fhir/metadata",
                           cleanup=cleanup)
    for number in range(args.extra_workers):
        with (tmp / f"worker{number}.log").open("wb") as log:
            worker = spawn([sys.executable, "-m", "gateway", "worker"], env=env, cwd=tmp,
                           stdout=log, stderr=log)
        cleanup.push(f"stop worker {number}", lambda w=worker: stop_group(w))
    return gateway, receiver


# -- the receiver's records ----------------------------------------------------------------

def receipts(receiver: Server) -> list[tuple[float, str, str, str]]:
    answer = httpx.get(receiver.base + "/receipts", timeout=60.0)
    return [tuple(r) for r in answer.json()]  # type: ignore[misc]


def reset(receiver: Server) -> None:
    httpx.post(receiver.base + "/reset", timeout=10.0)


def wait_receipts(receiver: Server, count: int, timeout: float, what: str) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = receipts(receiver)
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: {len(found)} of {count} received in {timeout:.0f} s")
        time.sleep(0.05)


# -- the gateway phases --------------------------------------------------------------------

def subscribe(client: httpx.Client, receiver: Server, count: int, timeout: float) -> None:
    for number in range(count):
        created = client.post("/fhir/Subscription", json={
            "resourceType": "Subscription", "status": "requested", "reason": "bench",
            "criteria": "Encounter",
            "channel": {"type": "rest-hook", "endpoint": f"{receiver.base}/hook/{number}"}})
        if created.status_code != 201:
            raise BenchError(f"Subscription refused: {created.status_code} {created.text}")
    wait_receipts(receiver, count, timeout, "handshakes")
    wait_active(client, count, timeout)
    reset(receiver)


def wait_active(client: httpx.Client, count: int, timeout: float) -> None:
    """Until every Subscription is active: the gateway records each handshake (and routes
    the Subscription's new version) after the receiver has answered it, and the measured
    events must not queue behind that setup work."""
    deadline = time.monotonic() + timeout
    while True:
        bundle = client.get("/fhir/Subscription",
                            params={"status": "active", "_summary": "count"}).json()
        if bundle.get("total", 0) >= count:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"{bundle.get('total')} of {count} Subscriptions active "
                             f"in {timeout:.0f} s")
        time.sleep(0.1)


def encounter(patient: str) -> dict[str, Any]:
    return {"resourceType": "Encounter", "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                      "code": "IMP"}, "subject": {"reference": f"Patient/{patient}"}}


def epoch(instant: str) -> float:
    return datetime.fromisoformat(instant.replace("Z", "+00:00")).timestamp()


def one_event_phase(client: httpx.Client, receiver: Server, args: argparse.Namespace,
                    patient: str) -> list[float]:
    """Latencies (s) from commit to receipt of every endpoint's copy of each event."""
    latencies: list[float] = []
    for _ in range(args.events):
        created = client.post("/fhir/Encounter", json=encounter(patient)).json()
        committed = epoch(created["meta"]["lastUpdated"])
        found = wait_receipts(receiver, args.endpoints, args.timeout, "one event")
        latencies += [arrived - committed for arrived, *_ in found]
        reset(receiver)
        time.sleep(0.1)
    return latencies


def stream_phase(client: httpx.Client, receiver: Server, args: argparse.Namespace,
                 patients: list[str]) -> dict[str, Any]:
    """Encounters in transactions as fast as they are taken; notifications/s delivered."""
    commits: list[float] = []
    for start in range(0, args.stream, args.batch):
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"request": {"method": "POST", "url": "Encounter"}, "resource": encounter(p)}
            for p in patients[start:start + args.batch]]}
        answer = client.post("/fhir", json=bundle, headers={"Prefer": "return=representation"})
        if answer.status_code != 200:
            raise BenchError(f"transaction refused: {answer.status_code} {answer.text[:300]}")
        commits += [epoch(e["resource"]["meta"]["lastUpdated"]) for e in answer.json()["entry"]]
    expected = args.stream * args.endpoints
    found = wait_receipts(receiver, expected, args.timeout, "stream")
    last = max(arrived for arrived, *_ in found)
    reset(receiver)
    return {"notifications": len(found), "seconds": last - min(commits),
            "rate": len(found) / max(last - min(commits), 1e-9),
            "write_seconds": max(commits) - min(commits)}


def make_patients(client: httpx.Client, count: int) -> list[str]:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "POST", "url": "Patient"}, "resource": {"resourceType": "Patient"}}
        for _ in range(count)]}
    answer = client.post("/fhir", json=bundle, headers={"Prefer": "return=representation"})
    return [e["resource"]["id"] for e in answer.json()["entry"]]


# -- the baseline: the same requests from a bare client -----------------------------------

async def baseline(receiver: Server, args: argparse.Namespace) -> dict[str, Any]:
    """A fair bare sender: one keep-alive httpx client per endpoint (as a sender that keeps a
    connection pool per destination would; one client shared by 100 busy connections spends
    its CPU scanning its own pool), on uvloop like the gateway."""
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
    context = ssl.create_default_context()
    clients = [httpx.AsyncClient(limits=limits, timeout=30.0, verify=context)
               for _ in range(args.endpoints)]
    try:
        async def post(number: int) -> None:
            await clients[number].post(f"{receiver.base}/hook/{number}",
                                       headers={"X-Bench-Sent": repr(time.time())})

        latencies: list[float] = []
        for _ in range(args.events):
            sent = time.time()
            await asyncio.gather(*(post(n) for n in range(args.endpoints)))
            found = await asyncio.to_thread(receipts, receiver)
            latencies += [arrived - sent for arrived, *_ in found]
            await asyncio.to_thread(reset, receiver)
        total = args.stream * args.endpoints
        queue = iter(range(total))

        async def sender() -> None:
            for number in queue:
                await post(number % args.endpoints)

        first = time.time()
        await asyncio.gather(*(sender() for _ in range(args.endpoints)))
        found = await asyncio.to_thread(receipts, receiver)
        await asyncio.to_thread(reset, receiver)
    finally:
        for client in clients:
            await client.aclose()
    last = max(arrived for arrived, *_ in found)
    return {"latencies": latencies, "stream": {"notifications": len(found),
                                               "seconds": last - first,
                                               "rate": len(found) / max(last - first, 1e-9)}}


# -- report --------------------------------------------------------------------------------

def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def report(args: argparse.Namespace, gateway: dict[str, Any], base: dict[str, Any]
           ) -> dict[str, Any]:
    p99 = percentile(gateway["latencies"], 0.99)
    rate = gateway["stream"]["rate"]
    rate_applies = args.database == "postgresql"
    targets = {
        "one_event_p99": {"target": f"< {TARGET_P99_S:g} s at 100 endpoints",
                          "met": p99 < TARGET_P99_S, "applies": args.endpoints >= 100},
        "sustained_rate": {"target": f">= {TARGET_RATE:,.0f}/s on PostgreSQL",
                           "met": rate >= TARGET_RATE, "applies": rate_applies},
    }
    print(f"\n{'phase':<26}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}{'notif/s':>12}  target")
    for name, data, target in (("baseline one event", base, None),
                               ("gateway one event", gateway, targets["one_event_p99"])):
        lat = data["latencies"]
        print(f"{name:<26}{percentile(lat, .5) * 1000:>10.1f}{percentile(lat, .99) * 1000:>10.1f}"
              f"{max(lat) * 1000:>10.1f}{'':>12}  {_verdict(target)}")
    for name, data, target in (("baseline stream", base["stream"], None),
                               ("gateway stream", gateway["stream"],
                                targets["sustained_rate"])):
        print(f"{name:<26}{'':>10}{'':>10}{'':>10}{data['rate']:>12,.0f}  {_verdict(target)}")
    return targets


def _verdict(target: dict[str, Any] | None) -> str:
    if target is None:
        return "(reference)"
    result = "met" if target["met"] else "NOT MET"
    return f"{target['target']}: {result}" + ("" if target["applies"] else " (n/a here)")


def run(args: argparse.Namespace, cleanup: Cleanup) -> int:
    command = shlex.join(sys.orig_argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    cleanup.push("remove temporary directory", lambda: shutil.rmtree(tmp, ignore_errors=True))
    idle_load = busy_cores(2.0)
    print(f"{os.cpu_count()} CPUs; python {platform.python_version()}; machine load before "
          f"starting: {idle_load:.2f} busy cores", flush=True)
    if idle_load > 0.25:
        print("  warning: other processes are using the CPU; figures will be lower and "
              "noisier than on a quiet machine", flush=True)
    started = datetime.now(UTC)
    gateway_server, receiver = start(args, tmp, cleanup)
    with httpx.Client(base_url=gateway_server.base, timeout=120.0) as client:
        patients = make_patients(client, max(args.stream, 1))
        print(f"subscribing {args.endpoints} endpoints...", flush=True)
        subscribe(client, receiver, args.endpoints, args.timeout)
        print(f"one event to {args.endpoints} endpoints, {args.events} times...", flush=True)
        measured: dict[str, Any] = {
            "latencies": one_event_phase(client, receiver, args, patients[0])}
        print(f"stream of {args.stream} events x {args.endpoints} endpoints...", flush=True)
        measured["stream"] = stream_phase(client, receiver, args, patients)
    stop_group(gateway_server.process)  # the baseline gets the machine to itself too
    print("baseline: the same requests from a bare httpx client...", flush=True)
    base = uvloop.run(baseline(receiver, args))
    targets = report(args, measured, base)
    output = args.output or RESULTS / f"fanout-{args.database}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({
        "command": command, "started": started.isoformat(timespec="seconds"),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "environment": {"python": platform.python_version(), "cpus": os.cpu_count(),
                        "platform": platform.platform()},
        "machine_busy_cores_before": round(idle_load, 3),
        "gateway": _summary(measured), "baseline": _summary(base), "targets": targets,
    }, indent=2) + "\n")
    print(f"results: {output}\ncommand: {command}")
    return 0


def _summary(data: dict[str, Any]) -> dict[str, Any]:
    lat = data["latencies"]
    return {"one_event": {"samples": len(lat), "p50_ms": round(percentile(lat, .5) * 1000, 2),
                          "p99_ms": round(percentile(lat, .99) * 1000, 2),
                          "max_ms": round(max(lat) * 1000, 2)},
            "stream": {k: round(v, 3) for k, v in data["stream"].items()}}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_with_cleanup(lambda cleanup: run(args, cleanup))


if __name__ == "__main__":
    sys.exit(main())
