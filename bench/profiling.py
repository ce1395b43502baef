"""Optional sampling profiles of the gateway's workers during the measured phases (py-spy).

``--profile DIR`` records each gateway phase with ``py-spy record --subprocesses`` into
``DIR/<phase>.txt`` (collapsed stacks, loadable in speedscope or flamegraph.pl) and prints
where the busy samples went: gateway functions (inclusive), leaf functions and packages.
py-spy samples from outside the process, so the gateway runs unmodified; it does cost some CPU
on a 2-core machine, so figures of a profiled run are for finding hot spots, not for comparing
against the targets.

py-spy is not a project dependency: ``.venv/bin/pip install py-spy`` (it needs ptrace, i.e.
root or ``kernel.yama.ptrace_scope=0``).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.servers import BenchError, spawn, stop_group

_LINE = re.compile(r"^(.*) (\d+)$")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]*)(?::\d+)?\)$")


def find_py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise BenchError("--profile needs py-spy: .venv/bin/pip install py-spy")
    return found


@dataclass
class Recording:
    """A running py-spy; ``stop()`` makes it write its file."""

    process: subprocess.Popen[bytes]
    output: Path

    def stop(self) -> Path:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stop_group(self.process, grace=2.0)
        return self.output


def record(py_spy: str, pid: int, output: Path, *, mode: str = "gil",
           rate: int = 100) -> Recording:
    """Sample ``pid`` and its children (the uvicorn workers) until stopped.

    ``gil`` samples only the thread holding the GIL: a worker runs Python on one core at a
    time, so this is where its CPU goes. ``threads`` samples every thread py-spy thinks is
    busy, which also shows threads blocked inside C calls - e.g. waiting in SQLite for the
    write lock - that the GIL view cannot see.
    """
    argv = [py_spy, "record", "--pid", str(pid), "--subprocesses", "--full-filenames",
            "--format", "raw", "--rate", str(rate), "--output", str(output)]
    if mode == "gil":
        argv.append("--gil")
    log = output.with_suffix(".log").open("wb")
    process = spawn(argv, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return Recording(process, output)


def _short(frame: str) -> str:
    """``func (path/to/module.py:12)`` -> ``func (module.py)``, so lines of one function add
    up and long site-packages paths stay readable."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match.group("file")
    parts = Path(path).parts
    stdlib = [i for i, p in enumerate(parts) if re.fullmatch(r"python3\.\d+", p)]
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1:]
    elif "gateway" in parts:
        parts = parts[parts.index("gateway"):]
    elif "bench" in parts:
        parts = parts[parts.index("bench"):]
    elif stdlib:
        parts = parts[stdlib[-1] + 1:]
    else:
        parts = parts[-1:]
    return f"{match.group('func')} ({'/'.join(parts)})"


# Leaves where a thread waits rather than works (py-spy sometimes reports such threads as
# active when the CPU is contended); their stacks are left out of the shares.
_IDLE_LEAVES = {"Condition.wait (threading.py)", "Queue.get (queue.py)",
                "Event.wait (threading.py)", "Thread.join (threading.py)"}


_STDLIB_PACKAGES = {"asyncio", "email", "json", "urllib", "concurrent", "http", "importlib",
                    "logging", "collections"}


def _package(frame: str) -> str:
    """The top-level package of a shortened frame, e.g. ``sqlalchemy`` or ``gateway``."""
    where = frame.rsplit("(", 1)[-1].rstrip(")")
    head = where.split("/", 1)[0]
    if head.endswith(".py") or head.startswith("<") or head in _STDLIB_PACKAGES:
        return "stdlib"
    return head


def summarize(path: Path, top: int = 15) -> dict[str, object]:
    """Shares of on-CPU samples: gateway functions inclusive, leaf functions (self), and
    self time grouped by package - the last says at a glance whether time goes to the
    database driver, SQLAlchemy, validation or the web framework."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return {"samples": 0, "gateway_inclusive": [], "self": [], "self_by_package": []}
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if not match:
            continue
        frames = [_short(f) for f in match.group(1).split(";")
                  if f and not f.startswith("process ")]
        count = int(match.group(2))
        if not frames or frames[-1] in _IDLE_LEAVES:
            continue
        total += count
        own[frames[-1]] += count
        packages[_package(frames[-1])] += count
        for frame in set(frames):
            if _package(frame) == "gateway":
                inclusive[frame] += count

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100.0 * n / total, 1)) for name, n in counter.most_common(top)]

    return {"samples": total, "gateway_inclusive": share(inclusive), "self": share(own),
            "self_by_package": share(packages)}


def print_summary(phase: str, summary: dict[str, object]) -> None:
    print(f"\nprofile of {phase}: {summary['samples']} samples")
    for title in ("gateway_inclusive", "self", "self_by_package"):
        rows = summary[title]
        assert isinstance(rows, list)
        print(f"  top {title}:")
        for name, percent in rows:
            print(f"    {percent:5.1f}%  {name}")
