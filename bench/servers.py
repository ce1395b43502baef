"""Servers and throwaway databases for the benchmark, always cleaned up.

Every process is started in its own session (process group) so stopping it stops the uvicorn
master and its workers together, and with ``PR_SET_PDEATHSIG`` so that even if the benchmark
itself is killed with SIGKILL, nothing it started outlives it. Everything registered with a
``Cleanup`` is undone in reverse order on normal exit, on errors and on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

import httpx

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_PR_SET_PDEATHSIG = 1


class BenchError(RuntimeError):
    """A failure the benchmark reports in one line instead of a traceback."""


@dataclass
class Cleanup:
    """Undo actions, run last-in first-out exactly once; failures are reported, not raised,
    so one broken step cannot leave a server or database behind."""

    actions: list[tuple[str, Callable[[], None]]] = field(default_factory=list)

    def push(self, name: str, action: Callable[[], None]) -> None:
        self.actions.append((name, action))

    def run(self) -> None:
        while self.actions:
            name, action = self.actions.pop()
            try:
                action()
            except Exception as error:  # keep cleaning up the rest
                print(f"cleanup: {name} failed: {error}", file=sys.stderr)


def run_with_cleanup(run: Callable[[Cleanup], int]) -> int:
    """Run a benchmark so that whatever ends it (success, a BenchError, Ctrl-C, SIGTERM,
    SIGHUP) runs its cleanup exactly once and leaves no server or database behind."""
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in signals}
    cleanup = Cleanup()
    try:
        return run(cleanup)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        for sig in signals:  # a second Ctrl-C must not cut the cleanup short
            signal.signal(sig, signal.SIG_IGN)
        cleanup.run()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    """SIGINT, SIGTERM and SIGHUP all end the run through the same cleanup - SIGINT too,
    since a shell starting us in the background (``&``) would have it ignored."""
    raise KeyboardInterrupt(f"signal {signum}")


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the benchmark dies (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
          cwd: Path | None = None, stdout: IO[bytes] | int | None = None,
          stderr: IO[bytes] | int | None = None,
          stdin: IO[bytes] | int | None = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """Start a process in its own process group that dies with the benchmark (``stdin`` is
    only for generators the benchmark paces, e.g. ``subprocess.PIPE``)."""
    return subprocess.Popen(list(argv), env=dict(env) if env is not None else None, cwd=cwd,
                            stdout=stdout, stderr=stderr, stdin=stdin,
                            start_new_session=True, preexec_fn=_die_with_parent)


def stop_group(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process group (uvicorn shuts its workers down), SIGKILL after ``grace``."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=grace)
    # Workers that ignored the master's shutdown are still in the group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (the OS picks it, so runs never collide)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A uvicorn server started by the benchmark."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    argv: list[str]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def pids(self) -> list[int]:
        """The master and all its descendants (the workers)."""
        return [self.process.pid, *descendants(self.process.pid)]


def uvicorn_argv(app: str, port: int, workers: int, app_dir: Path) -> list[str]:
    """The one uvicorn command line used for the gateway and the baseline alike, so both are
    served identically: uvloop, httptools, no access log, same workers."""
    return [sys.executable, "-m", "uvicorn", "--factory", app,
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--loop", "uvloop", "--http", "httptools",
            "--no-access-log", "--log-level", "warning", "--app-dir", str(app_dir)]


def start_server(name: str, app: str, *, port: int, workers: int, env: Mapping[str, str],
                 cwd: Path, app_dir: Path, ready_path: str, cleanup: Cleanup,
                 timeout: float = 90.0) -> Server:
    """Start uvicorn on 127.0.0.1:``port`` and wait until ``ready_path`` answers 2xx and,
    with several workers, until every worker process exists and has had time to start."""
    argv = uvicorn_argv(app, port, workers, app_dir)
    log_path = cwd / f"{name}.log"
    log = log_path.open("wb")
    process = spawn(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    server = Server(name, process, port, log_path, argv)
    cleanup.push(f"stop {name}", lambda: stop_group(process))
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=5.0) as client:
        while True:
            if process.poll() is not None:
                raise BenchError(f"{name} exited with {process.returncode}:\n"
                                 f"{server.log_tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"{name} did not answer {ready_path} within {timeout:.0f} s:"
                                 f"\n{server.log_tail()}")
            try:
                answer = client.get(server.base + ready_path)
                if answer.is_success and (workers == 1 or len(server.pids()) > workers):
                    if workers > 1:
                        _reach_workers(server, ready_path, workers)
                    return server
            except httpx.TransportError:
                pass
            time.sleep(0.2)


def start_tcp_server(name: str, argv: Sequence[str], *, port: int, env: Mapping[str, str],
                     cwd: Path, cleanup: Cleanup, timeout: float = 90.0) -> Server:
    """Start a server that is not HTTP (e.g. an MLLP listener) and wait until 127.0.0.1:
    ``port`` accepts a connection. The probe connects and closes without sending a byte, which
    a listener must take as an empty session, not as a message."""
    log_path = cwd / f"{name}.log"
    log = log_path.open("wb")
    process = spawn(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    server = Server(name, process, port, log_path, list(argv))
    cleanup.push(f"stop {name}", lambda: stop_group(process))
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise BenchError(f"{name} exited with {process.returncode}:\n{server.log_tail()}")
        if time.monotonic() > deadline:
            raise BenchError(f"{name} did not accept connections on port {port} within "
                             f"{timeout:.0f} s:\n{server.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2.0):
                return server
        except OSError:
            time.sleep(0.2)


def _reach_workers(server: Server, ready_path: str, workers: int) -> None:
    """Answering once proves only one worker is up. New connections are spread over the
    workers sharing the socket, so probes on fresh connections (each waiting for an answer)
    reach the others once they have imported the app; then give stragglers a second."""
    for _ in range(10 * workers):
        with httpx.Client(timeout=30.0) as fresh:
            fresh.get(server.base + ready_path)
    time.sleep(1.0)


def run_checked(argv: Sequence[str], *, env: Mapping[str, str], cwd: Path,
                timeout: float = 300.0) -> str:
    """Run a short command (e.g. ``gateway migrate``) and return its output, or fail."""
    process = spawn(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output, _ = process.communicate(timeout=timeout)
    except BaseException:
        stop_group(process)
        raise
    text = output.decode(errors="replace")
    if process.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed ({process.returncode}):\n{text}")
    return text


# -- PostgreSQL ------------------------------------------------------------------------------

def check_loopback_url(url: str) -> None:
    """Refuse any database that is not on this machine: the benchmark only targets loopback."""
    from sqlalchemy import make_url

    host = make_url(url).host or "127.0.0.1"
    if host not in LOOPBACK_HOSTS:
        raise BenchError(f"refusing non-loopback database host {host!r}; only 127.0.0.1")


def create_pg_database(admin_url: str, cleanup: Cleanup) -> tuple[str, str]:
    """Create ``bench_<random>`` next to ``admin_url``'s database; returns the gateway URL
    and the database name.

    The drop is registered before anything else can fail, and uses ``WITH (FORCE)`` so
    connections left by killed workers cannot keep it alive.
    """
    import psycopg
    from sqlalchemy import make_url

    check_loopback_url(admin_url)
    url = make_url(admin_url)
    name = f"bench_{secrets.token_hex(4)}"
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')  # name is ours: bench_ + hex

    def drop() -> None:
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    cleanup.push(f"drop database {name}", drop)
    gateway_url = url.set(drivername="postgresql+psycopg", database=name)
    return gateway_url.render_as_string(hide_password=False), name


def pg_sessions(admin_url: str, database: str) -> int:
    """Sessions ever opened on ``database`` (pg_stat_database.sessions, PostgreSQL 14+).

    Backends that connect and exit within a phase escape per-process CPU accounting; this
    counter shows such connection churn (e.g. a pool smaller than the thread pool).
    """
    import psycopg
    from sqlalchemy import make_url

    conninfo = make_url(admin_url).set(drivername="postgresql").render_as_string(
        hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        row = connection.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s",
                                 (database,)).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


# -- CPU accounting --------------------------------------------------------------------------

_TICK = float(os.sysconf("SC_CLK_TCK"))


def descendants(pid: int) -> list[int]:
    """All live descendants of ``pid`` (from /proc; cheap enough at phase boundaries)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def process_cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds consumed so far by the given processes."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    return total


def cpu_by_pid(pids: Sequence[int]) -> dict[int, float]:
    """CPU seconds per live process, for processes that may start or end during a phase."""
    return {pid: process_cpu_seconds([pid]) for pid in pids}


def postgres_backend_pids(database: str) -> list[int]:
    """The PostgreSQL processes working for ``database`` - backends and autovacuum workers,
    whose titles name it (the name is random, so a substring match is exact enough) - so the
    database's CPU can be told apart from everything else on the machine."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            title = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if title.startswith(b"postgres: ") and database.encode() in title:
            found.append(int(entry))
    return found


def busy_cores(seconds: float) -> float:
    """How many cores the machine kept busy over the next ``seconds`` (a quietness check)."""
    busy_before, _ = machine_cpu_seconds()
    time.sleep(seconds)
    busy_after, _ = machine_cpu_seconds()
    return (busy_after - busy_before) / seconds


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # exclude guest time, already counted in user
    return (total - idle) / _TICK, total / _TICK
