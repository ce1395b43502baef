"""HL7 v2 ADT throughput over MLLP against a bare MLLP baseline: ``python -m bench.adt``.

What it does, and why each step is there:

1. Builds ``--messages`` A01+A03 pairs from the North sample messages in
   ``tests/data/hl7v2`` (the integration tests' ADT^A01 and ADT^A03, HL7 2.5), each pair a
   visit and a patient of its own - MSH-10, PID-3 (MRN and SSN), PID-18 and PV1-19 vary - so
   the gateway finds no existing Patient or Encounter to shortcut through: every A01 creates
   a Patient and an Encounter, every A03 finishes that Encounter. The pairs are dealt
   round-robin to ``--senders`` connections; each connection sends its A01 then its A03 and
   waits for each ACK before the next message (MLLP original mode). The framed bytes are
   written once and sent unchanged to both servers.
2. Serves ``bench.mllp_baseline`` - a bare asyncio MLLP server answering every frame with a
   fixed AA - and measures it, so gateway/baseline isolates what the gateway costs beyond
   framing, the event loop and loopback. It answers the measured messages in a fraction of a
   second, so its senders repeat the same bytes for ``--baseline-seconds`` to be timed.
3. Runs ``gateway migrate`` on a fresh database (a temporary SQLite file, or with
   ``--database postgresql`` a throwaway ``bench_<random>`` database on the local PostgreSQL,
   dropped at the end), then ``gateway mllp`` as its own process, and measures it with the
   same senders and bytes. Every message must be answered AA with its own control id in
   MSA-2; AE, AR, timeouts and dropped connections are errors and are printed.
4. Both phases get ``--warmup`` pairs of their own first (distinct visits, not measured) so
   connections, caches and the database's first pages are warm.
5. Prints a table against the issue's target (SQLite, 2 cores: >= 500 messages/s and p99 <
   50 ms), where the CPU went, the exact command, and writes
   ``bench/results/adt-<database>.json``.

The senders run in their own process (``bench.mllp_sender``), so the server's CPU and the
generator's are measured apart; the benchmark paces it over stdin/stdout so only the measured
window is timed. Everything it starts and creates is removed on exit, on errors and on
Ctrl-C. Only 127.0.0.1 is ever targeted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench import profiling
from bench.crud import PG_ADMIN_URL, RESULTS, ROOT, write_json
from bench.servers import (
    BenchError,
    Cleanup,
    Server,
    busy_cores,
    cpu_by_pid,
    create_pg_database,
    free_port,
    machine_cpu_seconds,
    pg_sessions,
    postgres_backend_pids,
    process_cpu_seconds,
    run_checked,
    run_with_cleanup,
    spawn,
    start_tcp_server,
    stop_group,
)

SAMPLES = ROOT / "tests" / "data" / "hl7v2"
VT, END = b"\x0b", b"\x1c\x0d"

# The acceptance target (SQLite on a 2-core machine).
TARGET_RATE = 500.0
TARGET_P99_MS = 50.0
TARGET_DATABASE = "sqlite"
TARGET_CPUS = 2


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.adt",
        description="Benchmark HL7 v2 ADT A01+A03 ingest over MLLP (`gateway mllp`) with "
                    "concurrent original-mode senders, against a bare asyncio MLLP server "
                    "answering a fixed ACK to the same bytes. Reports messages/s and the "
                    "p50/p99 time from a message's last byte sent to its ACK received.",
        epilog="Target (issue 4): SQLite, 2 cores: >= 500 messages/s, p99 < 50 ms, no errors. "
               "Example quick try-out: python -m bench.adt --messages 100 --senders 4",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite",
                        help="backend: a temporary SQLite file, or a throwaway bench_<random> "
                             "database on the local PostgreSQL (dropped at the end)")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL,
                        help="PostgreSQL URL used to create and drop the throwaway database "
                             "(must be on 127.0.0.1)")
    parser.add_argument("--messages", type=int, default=2000,
                        help="A01+A03 pairs measured (each a distinct patient and visit; "
                             "twice as many messages)")
    parser.add_argument("--senders", type=int, default=8,
                        help="concurrent MLLP connections, each sending one message at a time "
                             "and waiting for its ACK")
    parser.add_argument("--warmup", type=int, default=50,
                        help="A01+A03 pairs sent first to each server, not measured")
    parser.add_argument("--duration", type=float, default=120.0,
                        help="time bound of each measured phase in seconds (it normally ends "
                             "earlier, when every message is acknowledged)")
    parser.add_argument("--baseline-seconds", type=float, default=3.0,
                        help="the baseline answers the measured messages in a fraction of a "
                             "second, too short to time its CPU; its senders repeat the same "
                             "bytes until this many seconds have passed")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds a sender waits for an ACK before counting a timeout "
                             "and reconnecting")
    parser.add_argument("--sender-loop", choices=["uvloop", "asyncio"], default="uvloop",
                        help="event loop of the sender process (uvloop costs the generator "
                             "less CPU, leaving more to the server on 2 cores)")
    parser.add_argument("--output", type=Path, default=None,
                        help="JSON results file (default bench/results/adt-<database>.json)")
    parser.add_argument("--env", action="append", default=[], metavar="GATEWAY_X=VALUE",
                        help="a gateway setting for this run (repeatable), e.g. "
                             "GATEWAY_DB_POOL_SIZE=10; by default the gateway runs with its "
                             "defaults, whatever GATEWAY_* the caller has set")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="record the gateway's measured phase with py-spy (GIL holder) "
                             "into DIR/adt-<database>.txt and print the top functions (slows "
                             "the gateway: figures are then not comparable)")
    parser.add_argument("--keep-temp", action="store_true",
                        help="keep the temporary directory (server logs, message files, "
                             "SQLite database)")
    args = parser.parse_args(argv)
    for name in ("messages", "senders"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    if args.duration < 1 or args.timeout <= 0 or args.baseline_seconds < 0:
        parser.error("--duration must be at least 1 second, --timeout positive and "
                     "--baseline-seconds not negative")
    for item in args.env:
        key, sep, _ = item.partition("=")
        if not sep or not key.startswith("GATEWAY_") or key == "GATEWAY_DATABASE_URL":
            parser.error(f"--env {item!r}: expected GATEWAY_<SETTING>=VALUE (the database "
                         "is the benchmark's)")
    return args


# -- messages ---------------------------------------------------------------------------------

def _sample(name: str, replace: dict[str, str]) -> bytes:
    """A sample as sent on the wire: CR segment terminators, framed, text replaced."""
    text = (SAMPLES / f"{name}.hl7").read_text(encoding="utf-8")
    for old, new in replace.items():
        if old not in text:
            raise BenchError(f"{name}.hl7 no longer contains {old!r}; update bench/adt.py")
        text = text.replace(old, new)
    return VT + "\r".join(line for line in text.splitlines() if line).encode() + b"\r" + END


def adt_pair(number: int) -> tuple[bytes, bytes]:
    """The A01 and A03 of visit ``number``: own control ids, MRN, SSN, account and visit
    number. The SSN must vary too - a shared identifier makes two MRNs one Patient."""
    ssn = f"{900 + number // 1_000_000:03d}-{number // 10_000 % 100:02d}-{number % 10_000:04d}"
    person = {"N100234": f"BM{number}", "123-45-6789": ssn, "ACC-99812": f"BA{number}",
              "V20240001": f"BV{number}"}
    return (_sample("north_a01_v25", {**person, "N-0001": f"B{number}-A01"}),
            _sample("north_a03_v25", {**person, "N-0003": f"B{number}-A03"}))


def write_messages(directory: Path, senders: int, warmup: int, pairs: int) -> list[dict[str, str]]:
    """Per connection, a warm-up file and a measured file of framed messages: pair k goes to
    connection k mod ``senders``, its A01 right before its A03. Warm-up pairs are numbered
    before the measured ones, so no visit is sent twice."""
    files = []
    for index in range(senders):
        paths = {}
        for phase, first, count in (("warmup", 0, warmup), ("measured", warmup, pairs)):
            chunks = [b"".join(adt_pair(first + k))
                      for k in range(index, count, senders)]
            path = directory / f"sender-{index:02d}-{phase}.mllp"
            path.write_bytes(b"".join(chunks))
            paths[phase] = str(path)
        files.append(paths)
    return files


# -- one measured phase -----------------------------------------------------------------------

@dataclass
class PhaseResult:
    """One server measured: throughput, latency (ms), errors and where the CPU went."""

    phase: str
    sent: int
    acks: dict[str, int]
    errors: dict[str, int]
    error_samples: list[str]
    rate: float
    latency_ms: dict[str, float]
    stopped_by: str
    wall_s: float
    sender_cpu_s: float
    server_cpu_s: float
    database_cpu_s: float
    machine_busy_cores: float
    warmup: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    def cores(self, cpu_s: float) -> float:
        return cpu_s / self.wall_s if self.wall_s else 0.0

    @property
    def other_cores(self) -> float:
        """Everything else on the machine - other people's work makes figures noisy."""
        return max(0.0, self.machine_busy_cores - self.cores(self.server_cpu_s)
                   - self.cores(self.sender_cpu_s) - self.cores(self.database_cpu_s))

    def as_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase, "sent": self.sent, "acks": self.acks, "errors": self.errors,
            "error_samples": self.error_samples, "aa_per_s": round(self.rate, 1),
            "latency_ms": {k: round(v, 3) for k, v in self.latency_ms.items()},
            "stopped_by": self.stopped_by, "wall_s": round(self.wall_s, 3),
            "cpu": {"server_cores": round(self.cores(self.server_cpu_s), 3),
                    "database_cores": round(self.cores(self.database_cpu_s), 3),
                    "sender_cores": round(self.cores(self.sender_cpu_s), 3),
                    "other_cores": round(self.other_cores, 3),
                    "machine_busy_cores": round(self.machine_busy_cores, 3)},
            "warmup": self.warmup, **self.extra,
        }


def _expect(process: subprocess.Popen[bytes], word: str, timeout: float, log: Path) -> None:
    """Wait for the sender to print ``word`` on its own line, or fail with its stderr."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + timeout
    line = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BenchError(f"the sender did not say {word!r} within {timeout:.0f} s")
        ready, _, _ = select.select([fd], [], [], min(remaining, 1.0))
        if not ready:
            continue
        byte = os.read(fd, 1)
        if not byte:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise BenchError(f"the sender exited before saying {word!r}:\n{tail}")
        if byte != b"\n":
            line += byte
            continue
        if line.decode().strip() == word:
            return
        line = b""


def measure(phase: str, server: Server, ctx: Context, *, check_ids: bool,
            database_pids: Callable[[], list[int]] | None = None,
            profile: Path | None = None, min_seconds: float = 0.0) -> PhaseResult:
    """Warm up, then time the measured messages, with the CPU of the server, the database
    backends, the sender and the whole machine taken over exactly that window."""
    args = ctx.args
    manifest = ctx.tmp / f"{phase}-manifest.json"
    output = ctx.tmp / f"{phase}-result.json"
    manifest.write_text(json.dumps({
        "host": "127.0.0.1", "port": server.port, "timeout": args.timeout,
        "duration": args.duration, "check_ids": check_ids, "loop": args.sender_loop,
        "min_seconds": min_seconds,
        "connections": ctx.files, "output": str(output)}))
    log = ctx.tmp / f"{phase}-sender.log"
    with log.open("wb") as stderr:
        sender = spawn([sys.executable, "-m", "bench.mllp_sender", str(manifest)],
                       env=ctx.sender_env, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr,
                       stdin=subprocess.PIPE)
    ctx.cleanup.push(f"stop {phase} sender", lambda: stop_group(sender, grace=2.0))
    try:
        warm_bound = 60.0 + args.timeout * max(1, args.warmup)
        _expect(sender, "ready", warm_bound, log)
        recording = None
        if profile is not None:
            profile.parent.mkdir(parents=True, exist_ok=True)
            recording = profiling.record(profiling.find_py_spy(), server.process.pid,
                                         profile.resolve())
            ctx.cleanup.push("stop py-spy", recording.stop)
            time.sleep(1.0)  # let py-spy attach before the load starts
        pids = server.pids()
        server_before = process_cpu_seconds(pids)
        db_before = cpu_by_pid(database_pids()) if database_pids else {}
        sessions_before = ctx.sessions() if ctx.sessions and database_pids else None
        busy_before, _ = machine_cpu_seconds()
        started = time.monotonic()
        assert sender.stdin is not None
        sender.stdin.write(b"go\n")
        sender.stdin.flush()
        _expect(sender, "done", args.duration + args.timeout + 60.0, log)
        wall = time.monotonic() - started
        server_cpu = process_cpu_seconds(pids) - server_before
        db_after = cpu_by_pid(database_pids()) if database_pids else {}
        busy_after, _ = machine_cpu_seconds()
        if recording is not None:
            recording.stop()
        sender.wait(timeout=30)
    except BaseException:
        stop_group(sender, grace=2.0)
        raise
    if sender.returncode != 0 or not output.exists():
        raise BenchError(f"the sender failed ({sender.returncode}):\n"
                         f"{log.read_text(errors='replace')[-3000:]}")
    data = json.loads(output.read_text())
    measured = data["measured"]
    extra: dict[str, Any] = {}
    if sessions_before is not None and ctx.sessions is not None:
        extra["pg_sessions_opened"] = ctx.sessions() - sessions_before
    result = PhaseResult(
        phase=phase, sent=measured["sent"], acks=measured["acks"], errors=measured["errors"],
        error_samples=measured["error_samples"], rate=measured["aa_per_s"],
        latency_ms=measured["latency_ms"], stopped_by=measured["stopped_by"],
        wall_s=measured["wall_s"], sender_cpu_s=measured["sender_cpu_s"],
        server_cpu_s=server_cpu,
        database_cpu_s=sum(cpu - db_before.get(pid, 0.0) for pid, cpu in db_after.items()),
        machine_busy_cores=(busy_after - busy_before) / wall,
        warmup={k: data["warmup"][k] for k in ("sent", "acks", "errors", "error_samples")},
        extra=extra)
    print(f"  {phase:<9} {result.rate:>9,.1f} AA/s  p50 {result.latency_ms['p50']:.2f} ms  "
          f"p99 {result.latency_ms['p99']:.2f} ms  ({result.sent:,} sent, ACKs {result.acks}, "
          f"{result.failed} errors, stopped by {result.stopped_by}"
          + (f", {extra['pg_sessions_opened']} new PostgreSQL sessions"
             if "pg_sessions_opened" in extra else "") + ")", flush=True)
    warm_errors = sum(result.warmup["errors"].values())
    if warm_errors:
        print(f"    warning: {warm_errors} errors during the warm-up: "
              f"{result.warmup['errors']} {result.warmup['error_samples'][:2]}", flush=True)
    if result.failed:
        print(f"    errors: {result.errors}", flush=True)
        for sample in result.error_samples:
            print(f"      {sample}", flush=True)
    if profile is not None:
        result.extra["profile"] = profiling.summarize(profile)
        profiling.print_summary(phase, result.extra["profile"])
    return result


# -- the two servers --------------------------------------------------------------------------

@dataclass
class Context:
    args: argparse.Namespace
    tmp: Path
    cleanup: Cleanup
    files: list[dict[str, str]]
    sender_env: dict[str, str]
    sessions: Callable[[], int] | None = None


def _gateway_env(database_url: str, settings: Sequence[str]) -> dict[str, str]:
    """Our environment minus any GATEWAY_* the caller had set (a stray setting would silently
    change what is measured), plus the ``--env`` settings asked for and the database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(GATEWAY_LOG_LEVEL="warning")
    env.update(item.split("=", 1) for item in settings)
    env.update(GATEWAY_DATABASE_URL=database_url)
    return env


def run_baseline(ctx: Context) -> PhaseResult:
    port = free_port()
    argv = [sys.executable, "-m", "bench.mllp_baseline", "--host", "127.0.0.1",
            "--port", str(port)]
    server = start_tcp_server("baseline", argv, port=port, env=ctx.sender_env, cwd=ctx.tmp,
                              cleanup=ctx.cleanup)
    print(f"baseline: {shlex.join(argv)}", flush=True)
    result = measure("baseline", server, ctx, check_ids=False,
                     min_seconds=min(ctx.args.baseline_seconds, ctx.args.duration))
    stop_group(server.process)
    return result


def stored_counts(database_url: str) -> dict[str, dict[str, int]]:
    """What the run left in the database: inbound messages by status (every message sent,
    warm-up included, should be there ``processed``) and current resources by type (one
    Patient and one Encounter per pair, shared Organization/Practitioners/Locations), to
    show the gateway did the whole job. Read from the store's tables, so a schema change
    only loses this line, never the run."""
    from sqlalchemy import create_engine, text

    queries = {"inbound_message": "SELECT status, count(*) FROM inbound_message GROUP BY 1",
               "resources": "SELECT type, count(*) FROM resource WHERE NOT deleted GROUP BY 1"}
    found: dict[str, dict[str, int]] = {}
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            for name, query in queries.items():
                try:
                    rows = connection.execute(text(query)).all()
                except Exception as error:  # the store's schema is not the benchmark's
                    print(f"  note: could not count {name}: {error}", flush=True)
                    connection.rollback()
                    continue
                found[name] = {str(key): int(count) for key, count in rows}
    finally:
        engine.dispose()
    return found


def run_gateway(ctx: Context) -> tuple[PhaseResult, dict[str, dict[str, int]], list[str]]:
    """The gateway's MLLP listener on a fresh database; returns the measured phase, the
    stored messages by status and the warnings the gateway logged."""
    args = ctx.args
    database_pids = None
    if args.database == "postgresql":
        database_url, name = create_pg_database(args.pg_admin_url, ctx.cleanup)
        database_pids = lambda: postgres_backend_pids(name)  # noqa: E731
        ctx.sessions = lambda: pg_sessions(args.pg_admin_url, name)
    else:
        database_url = f"sqlite:///{ctx.tmp / 'gateway.db'}"
    env = _gateway_env(database_url, args.env)
    print(f"database: {database_url}", flush=True)
    run_checked([sys.executable, "-m", "gateway", "migrate"], env=env, cwd=ctx.tmp)
    port = free_port()
    argv = [sys.executable, "-m", "gateway", "mllp", "--host", "127.0.0.1", "--port", str(port)]
    server = start_tcp_server("gateway", argv, port=port, env=env, cwd=ctx.tmp,
                              cleanup=ctx.cleanup)
    print(f"gateway: {shlex.join(argv)}", flush=True)
    profile = args.profile / f"adt-{args.database}.txt" if args.profile else None
    result = measure("gateway", server, ctx, check_ids=True, database_pids=database_pids,
                     profile=profile)
    stop_group(server.process)
    if server.process.returncode not in (0, None, -signal.SIGTERM, 130):
        print(f"  note: gateway exited with {server.process.returncode}", flush=True)
    log_lines = [line for line in server.log_tail(200).splitlines()
                 if line.strip() and "listening on" not in line]
    return result, stored_counts(database_url), log_lines


# -- report -----------------------------------------------------------------------------------

def evaluate(args: argparse.Namespace, gateway: PhaseResult) -> dict[str, Any]:
    rate_ok = gateway.rate >= TARGET_RATE
    p99_ok = gateway.latency_ms["p99"] < TARGET_P99_MS
    return {"target": f">= {TARGET_RATE:,.0f}/s, p99 < {TARGET_P99_MS:.0f} ms",
            "pass": bool(rate_ok and p99_ok and not gateway.failed),
            "rate_ok": rate_ok, "p99_ok": p99_ok, "errors_ok": not gateway.failed,
            "applies": args.database == TARGET_DATABASE and os.cpu_count() == TARGET_CPUS}


def print_table(args: argparse.Namespace, baseline: PhaseResult, gateway: PhaseResult,
                target: dict[str, Any]) -> None:
    print()
    print(f"== {args.database}, {args.senders} senders, {args.messages:,} A01+A03 pairs "
          f"({2 * args.messages:,} messages), {args.warmup} warm-up pairs, "
          f"{os.cpu_count()} CPUs" + (f", {' '.join(args.env)}" if args.env else "") + " ==")
    header = (f"{'phase':<10}{'msg/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'vs base':>9}"
              f"{'errors':>8}  {'target':<30}{'result':<7}  {'cores: srv/db/snd/other':<24}")
    print(header)
    print("-" * len(header))
    for result in (baseline, gateway):
        is_gateway = result is gateway
        ratio = f"{result.rate / baseline.rate:.0%}" if is_gateway and baseline.rate else ""
        verdict = ("PASS" if target["pass"] else "FAIL") if is_gateway else ""
        cores = (f"{result.cores(result.server_cpu_s):.2f}/"
                 f"{result.cores(result.database_cpu_s):.2f}/"
                 f"{result.cores(result.sender_cpu_s):.2f}/{result.other_cores:.2f}")
        print(f"{result.phase:<10}{result.rate:>10,.1f}{result.latency_ms['p50']:>9.2f}"
              f"{result.latency_ms['p99']:>9.2f}{ratio:>9}{result.failed:>8}  "
              f"{target['target'] if is_gateway else '(reference)':<30}{verdict:<7}  "
              f"{cores:<24}")
    print("msg/s: messages acknowledged AA per second; latency: last byte of a message sent "
          "to its ACK received, at the sender")
    print("cores: average CPU cores used during the phase by the server process, the "
          "PostgreSQL backends, the sender process, and everything else on the machine")
    if gateway.rate:
        print(f"server CPU per message: gateway "
              f"{1000 * gateway.server_cpu_s / max(1, sum(gateway.acks.values())):.2f} ms, "
              f"baseline "
              f"{1000 * baseline.server_cpu_s / max(1, sum(baseline.acks.values())):.3f} ms")
    if not target["applies"]:
        print(f"(the target is set for {TARGET_DATABASE} on {TARGET_CPUS} cores; shown here "
              "for information)")


def _versions() -> dict[str, str]:
    found = {}
    for name in ("hl7", "sqlalchemy", "psycopg", "uvloop", "fhir.resources"):
        try:
            found[name] = version(name)
        except Exception:  # a missing optional package is just not listed
            continue
    return found


def run(args: argparse.Namespace, cleanup: Cleanup) -> int:
    command = shlex.join(sys.orig_argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-adt-"))
    if args.keep_temp:
        print(f"temporary files kept in {tmp}")
    else:
        cleanup.push("remove temporary directory", lambda: shutil.rmtree(tmp, ignore_errors=True))
    files = write_messages(tmp, args.senders, args.warmup, args.messages)
    sender_env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    sender_env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    ctx = Context(args, tmp, cleanup, files, sender_env)
    print(f"{os.cpu_count()} CPUs; python {platform.python_version()}; "
          f"sender loop {args.sender_loop}", flush=True)
    idle_load = busy_cores(2.0)
    print(f"machine load before starting: {idle_load:.2f} busy cores", flush=True)
    if idle_load > 0.25:
        print("  warning: other processes are using the CPU; figures will be lower and "
              "noisier than on a quiet machine (see the 'other' cores column)", flush=True)
    started = datetime.now(UTC)
    baseline = run_baseline(ctx)
    gateway, stored, gateway_log = run_gateway(ctx)
    target = evaluate(args, gateway)
    print_table(args, baseline, gateway, target)
    expected = 2 * (args.warmup + args.messages)
    print(f"stored: inbound messages by status {stored.get('inbound_message')} (sent "
          f"{expected:,} incl. warm-up; expected all processed), current resources "
          f"{stored.get('resources')} (expected {args.warmup + args.messages:,} Patients and "
          "Encounters)")
    if gateway_log:
        print(f"gateway log ({len(gateway_log)} lines, last 10):")
        for line in gateway_log[-10:]:
            print(f"  {line}")

    output = args.output or RESULTS / f"adt-{args.database}.json"
    write_json(output, {
        "command": command,
        "started": started.isoformat(timespec="seconds"),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "environment": {"python": platform.python_version(), "cpus": os.cpu_count(),
                        "platform": platform.platform(), "packages": _versions()},
        "machine_busy_cores_before": round(idle_load, 3),
        "baseline": baseline.as_dict(),
        "gateway": gateway.as_dict(),
        "gateway_over_baseline": round(gateway.rate / baseline.rate, 4) if baseline.rate else None,
        "target": target,
        "stored": stored,
        "gateway_log_tail": gateway_log[-50:],
    })
    if args.profile is not None:
        print("(profiled run: py-spy was sampling the gateway, so its figures are lower than "
              "an unprofiled run's)")
    print(f"results: {output}")
    print(f"command: {command}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_with_cleanup(lambda cleanup: run(args, cleanup))


if __name__ == "__main__":
    sys.exit(main())
