"""``gateway import``: plans and rosters from files through ``PlanIngest``, each record in a
savepoint of its own, many to a transaction (group commit), with a progress bar and a
summary of created / updated / unchanged / failed. Each failed record is reported with its
``file:line`` (or ``file:#n`` in a JSON array) and the JSON pointer of the fault; the others
are imported."""

from __future__ import annotations

import logging
import os
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from alembic.script import ScriptDirectory
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gateway.config import Settings
from gateway.errors import GatewayError
from gateway.ingest.planfiles import Record, read_records
from gateway.ingest.plans import CARETEAM, PlanIngest, PlanReply, answer, map_document
from gateway.ingest.setup import mappings_dir
from gateway.mapping.plancommon import MappedDocument
from gateway.mapping.planrules import PlanMappings
from gateway.rest.interactions import FhirService
from gateway.store.db import Database
from gateway.store.migrate import alembic_config, current, upgrade

FAILED = "failed"
log = logging.getLogger("gateway.ingest.planimport")
# Documents queued on the writer ahead of the one being counted: enough to fill its batches
# (store/writer.py, 64 a transaction) while the next ones are mapped.
WINDOW = 256
# Fewer records are mapped inline: starting a worker process costs about a second.
POOL_MIN = 500


@dataclass
class ImportSummary:
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def line(self) -> str:
        return ", ".join(f"{self.counts[k]} {k}"
                         for k in ("created", "updated", "unchanged", FAILED))


def import_files(ingest: PlanIngest, paths: list[Path], *, progress: bool = True,
                 echo: Callable[[str], None] = print,
                 processes: int | None = None) -> ImportSummary:
    """Import every record of ``paths``; failures are echoed as they happen, in file order.

    Records are mapped (schema, mapping, R4B models: pure work) in a worker process when
    there are ``processes`` (by default one when the machine has a core to spare and the
    files hold at least ``POOL_MIN`` records), while this process writes; they are queued
    on the store's writer ``WINDOW`` at a time, so many documents share one transaction and
    one commit, each in a savepoint of its own (a failed one is kept with its reason and the
    others stay); a record is counted only once the commit that stored it is done."""
    # Rosters first: a plan's CarePlan.careTeam can only name a roster already stored.
    records = sorted(read_records(paths), key=lambda r: r.kind != CARETEAM)
    summary = ImportSummary()
    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not progress, transient=False) as bar, \
            _Mapper(ingest, _processes(processes, len(records))) as mapper:
        task = bar.add_task("import", total=len(records))
        queued: deque[tuple[Record, Future[PlanReply | GatewayError] | None]] = deque()

        def settle_oldest() -> None:
            record, future = queued.popleft()
            if _count(record, future, summary) == FAILED:
                (bar.console.print if progress else echo)(summary.failures[-1])
            bar.advance(task)

        for record, mapped in zip(records, mapper.map(records), strict=True):
            queued.append((record, _submit(ingest, record, mapped)))
            if len(queued) >= WINDOW:
                settle_oldest()
        while queued:
            settle_oldest()
    return summary


def _processes(asked: int | None, records: int) -> int:
    if asked is not None:
        return asked
    return 1 if (os.cpu_count() or 1) > 1 and records >= POOL_MIN else 0


class _Mapper:
    """Maps records inline, or in worker processes (spawned: this process has threads)."""

    def __init__(self, ingest: PlanIngest, processes: int) -> None:
        self.pool = (ProcessPoolExecutor(processes, mp_context=get_context("spawn"),
                                         initializer=_load_rules,
                                         initargs=(ingest.mappings_dir,))
                     if processes > 0 else None)
        self.inline = self.pool is None

    def __enter__(self) -> _Mapper:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def map(self, records: list[Record]) -> Iterator[MappedDocument | None]:
        """Each record's mapped document, in order; None where it is to be mapped at
        submission (inline, or a failure whose error is to be built in this process)."""
        wanted = [r for r in records if not r.error and r.kind is not None]
        if self.pool is None or not wanted:
            yield from (None for _ in records)
            return
        mapped = self.pool.map(_map_in_worker, [r.raw for r in wanted],
                               [r.kind for r in wanted], chunksize=16)
        for record in records:
            yield self.next(mapped) if not record.error and record.kind is not None else None

    def next(self, mapped: Iterator[MappedDocument | None]) -> MappedDocument | None:
        """The next document from the workers; None (map inline) once they have died."""
        if self.inline:
            return None
        try:
            return next(mapped)
        except BrokenProcessPool:
            log.error("the mapping process died; mapping in this process from now on")
            self.inline = True
            return None


_RULES: PlanMappings | None = None


def _load_rules(folder: Path) -> None:
    global _RULES
    _RULES = PlanMappings.load(folder)


def _map_in_worker(raw: bytes, kind: str) -> MappedDocument | None:
    """A mapped document; None when it cannot be mapped (this process maps it again and
    builds the error, which need not cross processes)."""
    assert _RULES is not None
    outcome = map_document(_RULES, raw, kind)
    return outcome if isinstance(outcome, MappedDocument) else None


def _submit(ingest: PlanIngest, record: Record,
            mapped: MappedDocument | None) -> Future[PlanReply | GatewayError] | None:
    if record.error or record.kind is None:
        return None
    if mapped is not None:
        return ingest.submit_mapped(record.raw, record.kind, mapped)
    return ingest.submit(record.raw, record.kind)


def _count(record: Record, future: Future[PlanReply | GatewayError] | None,
           summary: ImportSummary) -> str:
    if future is None:
        return _failed(summary, f"{record.where}: {record.error}")
    try:
        reply = answer(future.result())
    except GatewayError as error:
        return _failed(summary, _describe(record, error))
    summary.counts[reply.outcome] += 1
    return reply.outcome


def _describe(record: Record, error: GatewayError) -> str:
    faults = error.details or [(error.message, error.expression)]
    where = record.locate(faults[0][1][0] if faults[0][1] else None)
    return f"{where}: " + "; ".join(message for message, _ in faults)


def _failed(summary: ImportSummary, message: str) -> str:
    summary.counts[FAILED] += 1
    summary.failures.append(message)
    return FAILED


def run_import(settings: Settings, paths: list[Path], *, progress: bool = True,
               echo: Callable[[str], None] = print) -> ImportSummary:
    """``gateway import``: migrate, then import ``paths`` into the configured database."""
    database = Database(settings.database_url)
    try:
        _migrate(database)
        service = FhirService(database)
        ingest = PlanIngest(database, service, mappings_dir(),
                            (settings.base_url or "").rstrip("/"))
        try:
            return import_files(ingest, paths, progress=progress, echo=echo)
        finally:
            service.writer.stop()
    finally:
        database.dispose()


def _migrate(database: Database) -> None:
    """Upgrade the schema only when it is behind: beside a running server on SQLite an
    upgrade would take the write lock (it rewrites the planner statistics) for nothing."""
    head = ScriptDirectory.from_config(alembic_config(database)).get_current_head()
    if current(database) != head:
        upgrade(database)
