"""CRUD throughput of the gateway against a bare FastAPI baseline: ``python -m bench.crud``.

What it does, and why each step is there:

1. Starts the gateway as its own uvicorn process (uvloop + httptools, ``--workers N``) on a
   fresh database - a temporary SQLite file, or with ``--database postgresql`` a throwaway
   ``bench_<random>`` database on the local PostgreSQL - after running ``gateway migrate``
   once, so workers never race on a fresh schema. A fresh database per run keeps runs
   comparable; separate processes keep the generator's CPU out of the server's.
2. Loads ``--patients`` Patients (setup, not measured; CarePlans need existing subjects
   because referential integrity is enforced), then ``--plans`` CarePlans as the measured
   create phase.
3. Measures read-by-id, search by patient and 20-entry transactions with wrk
   (``bench.wrkscript``), each bounded by ``--duration`` and ``--max-requests``.
4. Serves ``bench.baseline`` - a bare FastAPI endpoint returning a stored CarePlan body -
   with the same uvicorn settings and measures it with the same wrk script as the read
   phase, so read/baseline and search/baseline say what the gateway costs beyond FastAPI.
5. Prints a table against the targets, the generator's CPU use (to show wrk was not the
   bottleneck) and the command, and writes ``bench/results/crud-<database>-<N>w.json``.

Everything it starts (servers, wrk, py-spy) and creates (temp files, the PostgreSQL database)
is removed on exit, on errors and on Ctrl-C. Only 127.0.0.1 is ever targeted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

from bench import fhirdata, profiling, wrkscript
from bench.servers import (
    BenchError,
    Cleanup,
    Server,
    busy_cores,
    create_pg_database,
    free_port,
    pg_sessions,
    postgres_backend_pids,
    run_checked,
    run_with_cleanup,
    start_server,
    stop_group,
)
from bench.wrkscript import WrkResult

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# The acceptance targets (SQLite with 1 worker; PostgreSQL with 2 workers).
TARGET_READ_RATIO = 0.50
TARGET_SEARCH_RATIO = 0.30
TARGET_CREATE_RPS = 1000.0
TARGET_P99_MS = 50.0
TARGET_CONFIGS = {("sqlite", 1), ("postgresql", 2)}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.crud",
        description="Benchmark the gateway's create, read, search and transaction "
                    "throughput against a bare FastAPI baseline, with wrk on loopback. "
                    "Needs wrk (apt-get install wrk; installed automatically when root).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite",
                        help="backend: a temporary SQLite file, or a throwaway bench_<random> "
                             "database on the local PostgreSQL (dropped at the end)")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL,
                        help="PostgreSQL URL used to create and drop the throwaway database "
                             "(must be on 127.0.0.1)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes "
                        "(gateway and baseline alike)")
    parser.add_argument("--patients", type=int, default=1000, help="Patients loaded first")
    parser.add_argument("--plans", type=int, default=10_000,
                        help="CarePlans created in the measured create phase")
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds per measured read/search/transaction/baseline phase")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="seconds of unmeasured load before read, search and baseline")
    parser.add_argument("--create-timeout", type=float, default=180.0,
                        help="time bound of the create phase (it ends earlier, at --plans)")
    parser.add_argument("--max-requests", type=int, default=1_000_000,
                        help="count bound per phase (transactions: this / --tx-entries)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--threads", type=int, default=1,
                        help="wrk threads (one is plenty on 2 cores and leaves CPU to the "
                             "server)")
    parser.add_argument("--tx-entries", type=int, default=20,
                        help="CarePlan creates per transaction Bundle")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="wrk request timeout in seconds (slower answers count as errors)")
    parser.add_argument("--seed", type=int, default=20250101,
                        help="seed for ids and request order, for repeatable runs")
    parser.add_argument("--output", type=Path, default=None,
                        help="JSON results file (default bench/results/"
                             "crud-<database>-<workers>w.json)")
    parser.add_argument("--env", action="append", default=[], metavar="GATEWAY_X=VALUE",
                        help="a gateway setting for this run (repeatable), e.g. "
                             "GATEWAY_DB_POOL_SIZE=40; by default the gateway runs with its "
                             "defaults, whatever GATEWAY_* the caller has set")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="record gateway phases with py-spy into DIR and print the top "
                             "functions (slows the gateway: figures are then not comparable)")
    parser.add_argument("--profile-mode", choices=["gil", "threads"], default="gil",
                        help="py-spy: sample the GIL holder (where a worker's CPU goes) or all "
                             "busy threads (also shows waits inside SQLite/libpq calls)")
    parser.add_argument("--keep-temp", action="store_true",
                        help="keep the temporary directory (server logs, wrk scripts)")
    args = parser.parse_args(argv)
    for name in ("workers", "patients", "plans", "connections", "threads", "tx_entries",
                 "max_requests"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    for item in args.env:
        key, sep, _ = item.partition("=")
        if not sep or not key.startswith("GATEWAY_") or key in ("GATEWAY_DATABASE_URL",
                                                                 "GATEWAY_BASE_URL"):
            parser.error(f"--env {item!r}: expected GATEWAY_<SETTING>=VALUE (the database "
                         "and base URL are the benchmark's)")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")
    if args.duration < 1 or args.create_timeout < 1:
        parser.error("--duration and --create-timeout must be at least 1 second")
    return args


@dataclass
class Context:
    """What the phases share: settings, the generator, the scratch directory."""

    args: argparse.Namespace
    wrk: str
    tmp: Path
    cleanup: Cleanup
    rng: random.Random
    profiles: dict[str, dict[str, object]] = field(default_factory=dict)
    database_pids: Callable[[], list[int]] | None = None
    sessions: Callable[[], int] | None = None

    def per_thread(self, total: int) -> int:
        return max(1, math.ceil(total / self.args.threads))

    def script(self, name: str, text: str) -> Path:
        path = self.tmp / f"{name}.lua"
        path.write_text(text)
        return path


def _server_env(database_url: str, port: int, settings: Sequence[str]) -> dict[str, str]:
    """The environment of the gateway processes: ours, minus any GATEWAY_* the caller had
    set (a stray setting would silently change what is measured), plus the benchmark's and
    the ``--env`` settings asked for explicitly (recorded with the results)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(GATEWAY_LOG_LEVEL="warning")
    env.update(item.split("=", 1) for item in settings)
    env.update(GATEWAY_DATABASE_URL=database_url,
               GATEWAY_BASE_URL=f"http://127.0.0.1:{port}/fhir")
    return env


def load_patients(server: Server, ids: list[str], rng: random.Random, batch: int = 100) -> None:
    """PUT the Patients in transaction Bundles (setup only; ids chosen up front)."""
    with httpx.Client(base_url=server.base, timeout=120.0,
                      headers={"Content-Type": "application/fhir+json"}) as client:
        for start in range(0, len(ids), batch):
            chunk = [fhirdata.patient(pid, start + i, rng)
                     for i, pid in enumerate(ids[start:start + batch])]
            answer = client.post("/fhir", json=fhirdata.patient_transaction(chunk))
            if answer.status_code != 200:
                raise BenchError(f"loading Patients failed: {answer.status_code} "
                                 f"{answer.text[:500]}")


def measure(ctx: Context, phase: str, script: Path, server: Server, *, duration: float,
            warmup: bool, profile_pid: int | None = None) -> WrkResult:
    """One phase: optional unmeasured warm-up, then the measured wrk run (with py-spy
    attached when profiling)."""
    args = ctx.args
    pids = server.pids()
    common: dict[str, Any] = {"script": script, "url": server.base, "threads": args.threads,
                              "connections": args.connections, "timeout_s": args.timeout,
                              "server_pids": pids, "database_pids": ctx.database_pids}
    if warmup and args.warmup > 0:
        warm = wrkscript.run_wrk(ctx.wrk, phase=f"{phase}-warmup", duration=args.warmup,
                                 **common)
        if warm.failed:
            print(f"  warning: {warm.failed} errors during the {phase} warm-up: "
                  f"{warm.errors} {warm.error_samples[:1]}", flush=True)
    recording = None
    if args.profile is not None and profile_pid is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        recording = profiling.record(profiling.find_py_spy(), profile_pid,
                                     args.profile.resolve() / f"{phase}.txt",
                                     mode=args.profile_mode)
        ctx.cleanup.push(f"stop py-spy ({phase})", recording.stop)
        time.sleep(1.0)  # let py-spy attach before the load starts
    sessions_before = ctx.sessions() if ctx.sessions else None
    try:
        result = wrkscript.run_wrk(ctx.wrk, phase=phase, duration=duration, **common)
    finally:
        if recording is not None:
            recording.stop()
    if ctx.sessions is not None and sessions_before is not None:
        opened = ctx.sessions() - sessions_before
        result.extra["pg_sessions_opened"] = opened
        result.extra["pg_sessions_per_s"] = round(opened / max(result.wall_s, 1e-9), 1)
    print(f"  {phase:<11} {result.rps:>9,.1f} req/s  p50 {result.latency_ms['p50']:.2f} ms  "
          f"p99 {result.latency_ms['p99']:.2f} ms  ({result.requests:,} requests, "
          f"{result.failed} errors, stopped by {result.stopped_by}"
          + (f", {result.extra['pg_sessions_opened']} new PostgreSQL sessions"
             if "pg_sessions_opened" in result.extra else "") + ")", flush=True)
    if result.failed:
        print(f"    errors: {result.errors} statuses: {result.statuses} "
              f"{result.error_samples[:2]}", flush=True)
    if recording is not None:
        summary = profiling.summarize(recording.output)
        profiling.print_summary(phase, summary)
        ctx.profiles[phase] = summary
    return result


def run_gateway(ctx: Context) -> tuple[dict[str, WrkResult], bytes, int]:
    """Everything measured against the gateway; returns the phases, a stored CarePlan body
    (the baseline serves one of the same size) and how many CarePlans were created."""
    args = ctx.args
    if args.database == "postgresql":
        database_url, name = create_pg_database(args.pg_admin_url, ctx.cleanup)
        ctx.database_pids = lambda: postgres_backend_pids(name)
        ctx.sessions = lambda: pg_sessions(args.pg_admin_url, name)
    else:
        database_url = f"sqlite:///{ctx.tmp / 'gateway.db'}"
    port = free_port()
    env = _server_env(database_url, port, args.env)
    print(f"database: {database_url}", flush=True)
    run_checked([sys.executable, "-m", "gateway", "migrate"], env=env, cwd=ctx.tmp)
    server = start_server("gateway", "gateway.app:create_app", port=port,
                          workers=args.workers, env=env, cwd=ctx.tmp, app_dir=ROOT,
                          ready_path="/fhir/metadata", cleanup=ctx.cleanup)
    print(f"gateway: {shlex.join(server.argv)}", flush=True)

    patients = fhirdata.patient_ids(args.patients, ctx.rng)
    started = time.monotonic()
    load_patients(server, patients, ctx.rng)
    print(f"loaded {len(patients):,} Patients in {time.monotonic() - started:.1f} s",
          flush=True)

    phases: dict[str, WrkResult] = {}
    profile_pid = server.process.pid
    ids_file = ctx.tmp / "careplan-ids.txt"
    create = ctx.script("create", wrkscript.create_script(
        patients, ids_file, seed=args.seed, threads=args.threads,
        max_per_thread=ctx.per_thread(args.plans)))
    phases["create"] = measure(ctx, "create", create, server, duration=args.create_timeout,
                               warmup=False, profile_pid=profile_pid)
    plan_ids = ids_file.read_text().split() if ids_file.exists() else []
    if not plan_ids:
        raise BenchError("the create phase created no CarePlan; see the errors above and "
                         f"{server.log_path}")
    print(f"created {len(plan_ids):,} CarePlans", flush=True)

    with httpx.Client(base_url=server.base, timeout=30.0) as client:
        sample = client.get(f"/fhir/CarePlan/{plan_ids[0]}")
        sample.raise_for_status()
        body = sample.content

    many = args.max_requests
    read = ctx.script("read", wrkscript.read_script(
        plan_ids, seed=args.seed, threads=args.threads, max_per_thread=ctx.per_thread(many)))
    phases["read"] = measure(ctx, "read", read, server, duration=args.duration, warmup=True,
                             profile_pid=profile_pid)
    search = ctx.script("search", wrkscript.search_script(
        patients, seed=args.seed, threads=args.threads, max_per_thread=ctx.per_thread(many)))
    phases["search"] = measure(ctx, "search", search, server, duration=args.duration,
                               warmup=True, profile_pid=profile_pid)
    transaction = ctx.script("transaction", wrkscript.transaction_script(
        patients, entries=args.tx_entries, seed=args.seed, threads=args.threads,
        max_per_thread=ctx.per_thread(max(1, many // args.tx_entries))))
    phases["transaction"] = measure(ctx, "transaction", transaction, server,
                                    duration=args.duration, warmup=False,
                                    profile_pid=profile_pid)
    stop_group(server.process)
    if server.process.returncode not in (0, None, -signal.SIGTERM):
        print(f"  note: gateway exited with {server.process.returncode}", flush=True)
    return phases, body, len(plan_ids)


def run_baseline(ctx: Context, body: bytes, plan_ids_file: Path) -> WrkResult:
    """The bare FastAPI app, same uvicorn settings, same read script as the gateway."""
    args = ctx.args
    body_file = ctx.tmp / "baseline-body.json"
    body_file.write_bytes(body)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "BENCH_"))}
    env["BENCH_BASELINE_BODY"] = str(body_file)
    port = free_port()
    server = start_server("baseline", "bench.baseline:create_app", port=port,
                          workers=args.workers, env=env, cwd=ctx.tmp, app_dir=ROOT,
                          ready_path="/fhir/CarePlan/probe", cleanup=ctx.cleanup)
    print(f"baseline: {shlex.join(server.argv)} ({len(body)} byte body)", flush=True)
    plan_ids = plan_ids_file.read_text().split()
    script = ctx.script("baseline", wrkscript.read_script(
        plan_ids, seed=args.seed, threads=args.threads,
        max_per_thread=ctx.per_thread(args.max_requests)))
    saved = ctx.database_pids, ctx.sessions
    ctx.database_pids = ctx.sessions = None
    result = measure(ctx, "baseline", script, server, duration=args.duration, warmup=True)
    ctx.database_pids, ctx.sessions = saved
    stop_group(server.process)
    return result


# -- report -----------------------------------------------------------------------------------

def evaluate(phases: dict[str, WrkResult], baseline: WrkResult) -> dict[str, dict[str, Any]]:
    """Each phase's figures against its target (None where the issue sets none)."""
    base = baseline.rps or float("nan")

    def check(phase: str, ok_rate: bool | None, target: str) -> dict[str, Any]:
        result = phases[phase]
        p99_ok = result.latency_ms["p99"] < TARGET_P99_MS
        ok = None if ok_rate is None else bool(ok_rate and p99_ok and not result.failed)
        return {"target": target, "pass": ok, "p99_ok": p99_ok}

    read, search, create = phases["read"], phases["search"], phases["create"]
    return {
        "create": check("create", create.rps >= TARGET_CREATE_RPS,
                        f">= {TARGET_CREATE_RPS:,.0f}/s, p99 < {TARGET_P99_MS:.0f} ms"),
        "read": check("read", read.rps / base >= TARGET_READ_RATIO,
                      f">= {TARGET_READ_RATIO:.0%} of baseline, p99 < {TARGET_P99_MS:.0f} ms"),
        "search": check("search", search.rps / base >= TARGET_SEARCH_RATIO,
                        f">= {TARGET_SEARCH_RATIO:.0%} of baseline, "
                        f"p99 < {TARGET_P99_MS:.0f} ms"),
        "transaction": check("transaction", None, "(none)"),
    }


def generator_verdict(results: Sequence[WrkResult], threads: int) -> dict[str, Any]:
    """Was wrk the bottleneck? It was not if it spent most of its time waiting: each wrk
    thread is one event loop, so a thread near 100% of a core could not have gone faster.
    On a saturated 2-core machine wrk's CPU is still CPU the server did not get, which
    understates the busiest phase (the baseline) a little; the note says by how much."""
    busiest = max(results, key=lambda r: r.wrk_cpu_share / threads)
    share = busiest.wrk_cpu_share / threads
    bottleneck = share > 0.85
    cpus = os.cpu_count() or 1
    saturated = busiest.machine_busy_cores > 0.9 * cpus
    text = (f"wrk {'WAS' if bottleneck else 'was not'} the bottleneck: in its busiest phase "
            f"({busiest.phase}, {busiest.rps:,.0f} req/s) it used {share:.0%} of a core per "
            f"thread, i.e. about {busiest.generator_capacity * threads:,.0f} req/s per fully "
            f"used core ({busiest.generator_capacity * threads / max(busiest.rps, 1):.1f}x "
            f"the measured rate); the server used {busiest.server_cores:.2f} cores, other "
            f"processes {busiest.other_cores:.2f}, the machine "
            f"{busiest.machine_busy_cores:.2f} of {cpus} cores.")
    if saturated and not bottleneck:
        text += (f" The machine was saturated, so the {busiest.wrk_cpu_share:.2f} core wrk "
                 f"used was not available to the server: with the generator on another host "
                 f"the {busiest.phase} could be up to "
                 f"~{busiest.wrk_cpu_share / max(busiest.server_cores, 0.01):.0%} faster.")
    return {
        "bottleneck": bottleneck,
        "machine_saturated": saturated,
        "busiest_phase": busiest.phase,
        "wrk_cores_per_thread": round(share, 3),
        "capacity_rps": round(busiest.generator_capacity * threads, 0),
        "measured_rps": round(busiest.rps, 1),
        "text": text,
    }


def print_table(args: argparse.Namespace, phases: dict[str, WrkResult], baseline: WrkResult,
                targets: dict[str, dict[str, Any]], plans: int) -> None:
    base = baseline.rps or float("nan")
    in_scope = (args.database, args.workers) in TARGET_CONFIGS
    print()
    print(f"== {args.database}, {args.workers} worker(s), {args.connections} connections, "
          f"{args.threads} wrk thread(s), {args.duration:g} s per phase, "
          f"{plans:,} CarePlans over {args.patients:,} Patients"
          + (f", {' '.join(args.env)}" if args.env else "") + " ==")
    header = (f"{'phase':<12}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'vs base':>9}"
              f"{'errors':>8}  {'target':<36}{'result':<7}  {'cores: srv/db/wrk/other':<24}")
    print(header)
    print("-" * len(header))
    rows: list[tuple[str, WrkResult]] = [("baseline", baseline)]
    rows += [(name, phases[name]) for name in ("create", "read", "search", "transaction")]
    for name, result in rows:
        ratio = f"{result.rps / base:.0%}" if name in ("read", "search") else ""
        target = targets.get(name, {"target": "(reference)", "pass": None})
        verdict = {True: "PASS", False: "FAIL", None: ""}[target["pass"]]
        cores = (f"{result.server_cores:.2f}/{result.database_cores:.2f}/"
                 f"{result.wrk_cpu_share:.2f}/{result.other_cores:.2f}")
        print(f"{name:<12}{result.rps:>10,.1f}{result.latency_ms['p50']:>9.2f}"
              f"{result.latency_ms['p99']:>9.2f}{ratio:>9}{result.failed:>8}  "
              f"{target['target']:<36}{verdict:<7}  {cores:<24}")
    tx = phases["transaction"]
    print(f"(transaction: {args.tx_entries} CarePlan creates per Bundle = "
          f"{tx.rps * args.tx_entries:,.0f} CarePlans/s)")
    print(f"read/baseline = {phases['read'].rps / base:.1%}   "
          f"search/baseline = {phases['search'].rps / base:.1%}")
    print("cores: average CPU cores used during the phase by the server's processes, the "
          "PostgreSQL backends, wrk, and everything else on the machine")
    if not in_scope:
        print("(targets are set for SQLite with 1 worker and PostgreSQL with 2 workers; "
              "shown here for information)")


def _versions() -> dict[str, str]:
    names = ["fastapi", "uvicorn", "uvloop", "httptools", "sqlalchemy", "psycopg",
             "fhir.resources", "orjson"]
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except Exception:  # a missing optional package is just not listed
            continue
    return found


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def run(args: argparse.Namespace, cleanup: Cleanup) -> int:
    command = shlex.join(sys.orig_argv)
    ctx = Context(args, wrkscript.find_wrk(), Path(tempfile.mkdtemp(prefix="bench-crud-")),
                  cleanup, random.Random(args.seed))
    if args.keep_temp:
        print(f"temporary files kept in {ctx.tmp}")
    else:
        cleanup.push("remove temporary directory",
                     lambda: shutil.rmtree(ctx.tmp, ignore_errors=True))
    print(f"{wrkscript.wrk_version(ctx.wrk)}; {os.cpu_count()} CPUs; python "
          f"{platform.python_version()}", flush=True)
    idle_load = busy_cores(2.0)
    print(f"machine load before starting: {idle_load:.2f} busy cores", flush=True)
    if idle_load > 0.25:
        print("  warning: other processes are using the CPU; figures will be lower and "
              "noisier than on a quiet machine (see the 'other' cores column)", flush=True)
    started = datetime.now(UTC)
    phases, body, plans = run_gateway(ctx)
    baseline = run_baseline(ctx, body, ctx.tmp / "careplan-ids.txt")
    targets = evaluate(phases, baseline)
    verdict = generator_verdict([baseline, *phases.values()], args.threads)
    print_table(args, phases, baseline, targets, plans)
    print(verdict["text"])
    if args.profile is not None:
        print("(profiled run: py-spy was sampling the gateway, so its figures are lower than "
              "an unprofiled run's)")

    output = args.output or RESULTS / f"crud-{args.database}-{args.workers}w.json"
    base = baseline.rps or float("nan")
    write_json(output, {
        "command": command,
        "started": started.isoformat(timespec="seconds"),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "environment": {"python": platform.python_version(), "cpus": os.cpu_count(),
                        "platform": platform.platform(),
                        "wrk": wrkscript.wrk_version(ctx.wrk), "packages": _versions()},
        "machine_busy_cores_before": round(idle_load, 3),
        "careplans_created": plans,
        "careplan_body_bytes": len(body),
        "baseline": baseline.as_dict(),
        "phases": {name: result.as_dict() for name, result in phases.items()},
        "ratios": {"read_over_baseline": round(phases["read"].rps / base, 4),
                   "search_over_baseline": round(phases["search"].rps / base, 4)},
        "targets": targets,
        "targets_apply": (args.database, args.workers) in TARGET_CONFIGS,
        "generator": verdict,
        "profiles": ctx.profiles,
    })
    print(f"results: {output}")
    print(f"command: {command}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_with_cleanup(lambda cleanup: run(args, cleanup))


if __name__ == "__main__":
    sys.exit(main())
